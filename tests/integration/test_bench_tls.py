"""`sockit bench HOST:PORT --tls [--cacert FILE | --insecure] [--tls-resume]` against `sockit
serve --tls-*`, in every TCP mode: request/reply, -P, --rate, --connect (full handshakes, and
resumed ones with --tls-resume: the JSON's resumed count says each handshake after a
connection's first resumed), --idle with --probe; verification failures in one line; option
misuse. Counts are asserted exactly; runs are bounded by -n or -d and a subprocess timeout."""
import json
import re

import pytest

from conftest import run_sockit
from tls_pki import pki  # noqa: F401 (pki: the fixture)


def bench_json(*args, timeout=60):
    out = run_sockit("bench", *args, "--json", "--quiet", timeout=timeout)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(b"\n") == 1, out.stdout  # exactly one object, one line
    return json.loads(out.stdout)


@pytest.fixture
def tls_server(serve, pki):
    def start(*args):
        return serve("--quiet", *pki.args(), *args)
    return start


def tls_args(pki, *more):
    return ["--tls", "--cacert", pki.path("root.pem"), *more]


def test_request_reply(tls_server, pki):
    srv = tls_server()
    d = bench_json(f"localhost:{srv.port}", *tls_args(pki), "-n", "500", "-c", "5")
    assert d["sent"] == d["replies"] == 500 and d["errors"] == 0
    assert d["settings"]["tls"] == {"verify": True, "resume": False}
    assert d["connects"] == 5 and d["resumed"] == 0
    assert d["bytes_received"] == 5 * len(b"Welcome!") + 500 * len(b"Hello, bench!")


def test_pipeline_and_threads(tls_server, pki):
    srv = tls_server("--framing", "line")
    d = bench_json(f"127.0.0.1:{srv.port}", *tls_args(pki), "--framing", "line", "-P", "8",
                   "-n", "800", "-c", "4", "--threads", "2")
    assert d["sent"] == d["replies"] == 800 and d["errors"] == 0
    assert d["settings"]["pipeline"] == 8 and d["settings"]["threads"] == 2


def test_rate(tls_server, pki):
    srv = tls_server()
    d = bench_json(f"127.0.0.1:{srv.port}", *tls_args(pki), "--rate", "200", "-n", "100",
                   "-c", "2")
    assert d["sent"] == d["replies"] == 100 and d["errors"] == 0
    assert d["settings"]["loop"] == "open"


def test_idle_with_probe(tls_server, pki):
    srv = tls_server()
    d = bench_json(f"127.0.0.1:{srv.port}", *tls_args(pki), "--idle", "0.3", "-c", "20",
                   "--probe", "4")
    assert d["idle"]["open"] == 20 and d["errors"] == 0 and d["replies"] == 4


@pytest.mark.parametrize("resume", [False, True])
def test_connect_full_and_resumed_handshakes(tls_server, pki, resume):
    srv = tls_server()
    conns, cycles = 3, 60
    d = bench_json(f"127.0.0.1:{srv.port}", *tls_args(pki, *(["--tls-resume"] if resume else [])),
                   "--connect", "-n", str(cycles), "-c", str(conns))
    assert d["replies"] == d["connects"] == cycles and d["errors"] == 0
    assert d["settings"]["tls"]["resume"] is resume
    # Each connection slot's first handshake is a full one; every later one resumes.
    assert d["resumed"] == (cycles - conns if resume else 0), d
    assert srv.stop() == 0
    line = [x for x in srv.lines if "summary:" in x][-1]
    assert int(re.search(r"connections=(\d+)", line).group(1)) == cycles


def test_text_report_counts_resumed(tls_server, pki):
    srv = tls_server()
    out = run_sockit("bench", f"127.0.0.1:{srv.port}", *tls_args(pki, "--tls-resume"),
                     "--connect", "-n", "10", "-c", "1", "--quiet", timeout=60)
    assert out.returncode == 0, out.stderr
    assert re.search(rb"\n  tls +10 handshakes, 9 resumed\n", out.stdout), out.stdout


def test_insecure(serve, pki):
    srv = serve("--quiet", *pki.args("expired"))
    d = bench_json(f"127.0.0.1:{srv.port}", "--tls", "--insecure", "-n", "10", "-c", "1")
    assert d["replies"] == 10 and d["settings"]["tls"]["verify"] is False


@pytest.mark.parametrize("cert,args,why", [
    ("ecdsa", [], "unable to get local issuer certificate"),
    ("expired", ["--cacert"], "certificate has expired"),
    ("ecdsa", ["--cacert", "--servername", "other.example"], "host name mismatch"),
])
@pytest.mark.parametrize("mode", [[], ["--connect"]])
def test_verification_failure_is_one_line(serve, pki, cert, args, why, mode):
    srv = serve("--quiet", *pki.args(cert))
    args = [a if not a == "--cacert" else a + "=" + pki.path("root.pem") for a in args]
    out = run_sockit("bench", f"127.0.0.1:{srv.port}", "--tls", *args, *mode, "-n", "10",
                     "-c", "4", "--quiet", timeout=60)
    err = out.stderr.decode()
    assert out.returncode == 5, err
    assert len(err.splitlines()) == 1, err
    assert re.fullmatch(rf"sockit: bench: TLS handshake with 127\.0\.0\.1:{srv.port}: "
                        rf"certificate verification failed: {why}\n", err), err
    assert out.stdout == b""


@pytest.mark.parametrize("args,msg", [
    (["--tls-resume"], b"--tls-resume needs --tls"),
    (["--insecure"], b"--insecure needs --tls"),
    (["--tls", "--udp"], b"--tls does not apply to --udp"),
    (["--tls", "--insecure", "--cacert", "x.pem"], b"exclude each other"),
])
def test_usage_errors(args, msg):
    out = run_sockit("bench", "127.0.0.1:9", *args)
    assert out.returncode == 2
    assert msg in out.stderr, out.stderr


def test_unreadable_cacert(tmp_path):
    out = run_sockit("bench", "127.0.0.1:9", "--tls", "--cacert", str(tmp_path / "nope.pem"),
                     "--quiet")
    err = out.stderr.decode()
    assert out.returncode == 5, err
    assert re.fullmatch(r"sockit: bench: cannot read \S+nope\.pem: No such file or directory\n",
                        err), err


def test_merge_adds_resumed_and_keeps_the_tls_settings(tls_server, pki, tmp_path):
    srv = tls_server()
    files = []
    for name in ("a", "b"):
        out = run_sockit("bench", f"127.0.0.1:{srv.port}", *tls_args(pki, "--tls-resume"),
                         "--connect", "-n", "10", "-c", "2", "--json", "--quiet", timeout=60)
        assert out.returncode == 0, out.stderr
        files.append(tmp_path / f"{name}.json")
        files[-1].write_bytes(out.stdout)
    out = run_sockit("bench", "merge", *map(str, files), "--json")
    assert out.returncode == 0, out.stderr
    m = json.loads(out.stdout)
    assert m["resumed"] == 16 and m["connects"] == 20
    assert m["settings"]["tls"] == {"verify": True, "resume": True}
    plain = json.loads(files[0].read_text())
    plain["settings"]["tls"] = None
    files[1].write_text(json.dumps(plain))
    out = run_sockit("bench", "merge", *map(str, files))
    assert out.returncode != 0 and b"settings differ" in out.stderr and b"(tls)" in out.stderr
