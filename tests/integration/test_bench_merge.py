"""sockit bench merge: real bench runs against a real `sockit serve`, merged.

The percentiles of a merge are checked against a histogram rebuilt here from
the runs' own buckets (the union of their samples), computed the way
lib/hist.c does; counts against the sum and against the server's own count.
Every run is bounded by -n or -d and a subprocess timeout; the server is
stopped by PID (the serve fixture)."""
import json
import math
import re
import subprocess
from fractions import Fraction

from conftest import SOCKIT, run_sockit

SUB_BITS = 11
PCTS = {"p50": 50, "p90": 90, "p99": 99, "p99_9": 99.9, "p99_99": 99.99}


def bucket_high(low):
    """The highest value of the bucket starting at low (lib/hist.c's layout)."""
    if low < (1 << SUB_BITS):
        return low
    shift = low.bit_length() - SUB_BITS
    return low + (1 << shift) - 1


def percentile_ns(buckets, total, hmax, p):
    """lib/hist.c's sk_hist_percentile over [[low, count], ...]."""
    # ceil(p/100 * total) with p as the double the C code has (99.9 is a bit above)
    rank = max(1, math.ceil(Fraction(p) * total / 100))
    seen = 0
    for low, count in buckets:
        seen += count
        if seen >= rank:
            return min(bucket_high(low), hmax)
    return hmax


def union(*results):
    """The union of the runs' samples: their buckets added up."""
    counts = {}
    for r in results:
        for low, count in r["latency_us"]["histogram"]["buckets"]:
            counts[low] = counts.get(low, 0) + count
    return sorted(counts.items())


def bench_runs(port, tmp_path, names, args):
    """Starts one bench per name at once (so their windows overlap), each
    writing NAME.json; returns the paths after all have ended."""
    procs, paths = [], []
    for name in names:
        path = tmp_path / f"{name}.json"
        f = open(path, "wb")
        procs.append((subprocess.Popen([SOCKIT, "bench", f"127.0.0.1:{port}", *args, "--json"],
                                       stdout=f, stderr=subprocess.PIPE), f))
        paths.append(path)
    for p, f in procs:
        try:
            _, err = p.communicate(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            f.close()
        assert p.returncode == 0, err
    return paths


def merge(*args):
    return run_sockit("bench", "merge", *map(str, args))


def merge_json(*paths):
    out = merge(*paths, "--json")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(b"\n") == 1, out.stdout
    return json.loads(out.stdout)


def load(path):
    return json.loads(path.read_text())


def test_two_runs_merged_equal_the_union_of_their_samples(serve, tmp_path):
    srv = serve("--quiet")
    a, b = bench_runs(srv.port, tmp_path, ["a", "b"], ["-d", "1", "-c", "4"])
    ra, rb = load(a), load(b)
    m = merge_json(a, b)
    assert m["sources"] == 2
    for key in ("sent", "replies", "errors", "connects", "bytes_sent", "bytes_received",
                "sessions_failed"):
        assert m[key] == ra[key] + rb[key], key
    assert m["latency_us"]["count"] == m["replies"] == ra["replies"] + rb["replies"]
    assert m["settings"]["connections"] == 8
    # The server counted every one of them.
    assert srv.stop() == 0
    line = [x for x in srv.lines if "summary:" in x][-1]
    assert int(re.search(r"messages=(\d+)", line).group(1)) == m["sent"]
    # Percentiles of the union of samples, from the merged histogram, exactly.
    buckets = union(ra, rb)
    assert [list(x) for x in buckets] == m["latency_us"]["histogram"]["buckets"]
    total = sum(c for _, c in buckets)
    hmax = max(ra["latency_us"]["histogram"]["max_ns"], rb["latency_us"]["histogram"]["max_ns"])
    for key, p in PCTS.items():
        want = percentile_ns(buckets, total, hmax, p)
        assert round(m["latency_us"][key] * 1000) == want, key
        lo = min(ra["latency_us"][key], rb["latency_us"][key])
        hi = max(ra["latency_us"][key], rb["latency_us"][key])
        assert lo <= m["latency_us"][key] <= hi, key  # what any union's percentile obeys
    assert m["latency_us"]["min"] == min(ra["latency_us"]["min"], rb["latency_us"]["min"])
    assert m["latency_us"]["max"] == max(ra["latency_us"]["max"], rb["latency_us"]["max"])
    # Windows on the wall clock: the union and the common part.
    assert m["start_unix_us"] == min(ra["start_unix_us"], rb["start_unix_us"])
    assert m["end_unix_us"] == max(ra["end_unix_us"], rb["end_unix_us"])
    assert m["common_start_unix_us"] == max(ra["start_unix_us"], rb["start_unix_us"])
    assert m["common_end_unix_us"] == min(ra["end_unix_us"], rb["end_unix_us"])
    assert m["common_end_unix_us"] > m["common_start_unix_us"]  # they ran at once
    assert abs(m["throughput"] - (ra["throughput"] + rb["throughput"])) < 0.01
    assert abs(m["elapsed_s"] - (m["end_unix_us"] - m["start_unix_us"]) / 1e6) < 1e-6
    # The text report: bench's usual format, with the merge's lines.
    out = merge(a, b)
    assert out.returncode == 0, out.stderr
    text = out.stdout.decode()
    assert text.startswith(f"sockit bench merge of 2 results, 127.0.0.1:{srv.port}: request "
                           "mode, chunk, 8 connections"), text
    assert re.search(rf"replies\s+{m['replies']} of {m['sent']} sent", text), text
    assert re.search(r"errors\s+0\n", text), text
    assert "merged        2 results; windows: union" in text, text
    assert f"p99 {m['latency_us']['p99']:.1f}" in text, text


def test_merge_of_a_merge_equals_the_merge_of_all(serve, tmp_path):
    srv = serve("--quiet")
    paths = bench_runs(srv.port, tmp_path, ["a", "b", "c"], ["-n", "3000", "-c", "3"])
    ab = tmp_path / "ab.json"
    ab.write_bytes(merge(paths[0], paths[1], "--json").stdout)
    again = merge_json(ab, paths[2])
    at_once = merge_json(*paths)
    assert again["sources"] == at_once["sources"] == 3
    assert again["replies"] == at_once["replies"] == 9000
    assert again["settings"]["requests"] == 9000
    tput = (again.pop("throughput"), at_once.pop("throughput"))
    assert abs(tput[0] - tput[1]) < 0.01, tput  # sums of 3-decimal figures
    assert again == at_once
    # One result alone merges to itself (but for the figures it derives).
    one = merge_json(paths[0])
    orig = load(paths[0])
    assert one["latency_us"] == orig["latency_us"] and one["replies"] == orig["replies"]


def test_bad_input_one_line_and_exit_status(serve, tmp_path):
    srv = serve("--quiet")
    (good,) = bench_runs(srv.port, tmp_path, ["good"], ["-n", "200", "-c", "2"])
    text = good.read_text()

    def refused(name, content, why, status=1):
        path = tmp_path / name
        if content is not None:
            path.write_text(content)
        out = merge(good, path)
        err = out.stderr.decode()
        assert out.returncode == status, (name, out)
        assert out.stdout == b"", name
        assert err.count("\n") == 1 and err.startswith(f"sockit: bench: merge: {path}: "), err
        assert why in err, (name, err)

    refused("missing.json", None, "No such file or directory")
    refused("text.json", "hello\n", "not a sockit bench result")
    refused("empty.json", "", "empty file")
    refused("other.json", '{"tool":"wrk","version":1}', "not a sockit bench result")
    refused("layout.json", text.replace('"sub_bits":11', '"sub_bits":12'),
            "another bucket layout")
    refused("huge.json", text.replace('"sent":200', '"sent":18446744073709551616'),
            "sent is not a count")
    refused("sum.json", text.replace('"sent":200', '"sent":18446744073709551615'),
            "overflow")
    refused("mode.json", text.replace('"framing":"chunk"', '"framing":"line"'),
            "settings differ from the others' (framing)")
    # Cut between two members: the text ends where a value must follow.
    between = text.index(",", len(text) // 2) + 1
    refused("cut.json", text[:between], "unexpected end")
    # Cut inside a member's name: the string never closes.
    inside = text.rindex('"histogram"') + 4
    refused("cut-string.json", text[:inside], "unterminated string")
    (tmp_path / "dir.json").mkdir()
    refused("dir.json", None, "not a regular file")
    out = merge()
    assert out.returncode == 2 and b"no FILE given" in out.stderr
    out = merge(good, "--frobnicate")
    assert out.returncode == 2 and b"unknown option --frobnicate" in out.stderr
    out = merge("--help")
    assert out.returncode == 0 and b"usage: sockit bench merge" in out.stdout
