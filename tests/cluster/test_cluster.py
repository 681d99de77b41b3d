"""Several hosts behind HAProxy (make test-cluster; root: network namespaces).

Hosts are network namespaces on one bridge (cluster.py): three `sockit serve
--proxy-protocol` instances (s1-s3), HAProxy on lb (send-proxy-v2, a layer-7
check every 500 ms), generators on g1 and g2. Every process is stopped by
PID and every namespace removed by the fixture, whatever happens; every wait
has a deadline. Figures go to stdout (run with -s) and, when
SOCKIT_CLUSTER_OUT is set, to that file."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from cluster import CHECK_INTER_MS, SOCKIT, Cluster

SERVERS = ["s1", "s2", "s3"]
OPEN_RE = re.compile(r" open (\S+):\d+ proxied_from=(\S+):\d+$")
CLOSE_RE = re.compile(r" close (\S+):\d+ reason=(\S+) messages=(\d+)")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


def report(title, text):
    block = f"\n==== {title} ====\n{text.rstrip()}\n"
    print(block)
    out = os.environ.get("SOCKIT_CLUSTER_OUT")
    if out:
        with open(out, "a") as f:
            f.write(block)


@pytest.fixture
def hosts():
    """The hosts, the three instances running; no balancer yet."""
    c = Cluster()
    try:
        for i, role in enumerate(SERVERS):
            c.add_host(role, 11 + i)
        c.add_host("lb", 2)
        c.add_host("g1", 21)
        c.add_host("g2", 22)
        for role in SERVERS:
            c.start_server(role)
        yield c
    finally:
        c.close()


@pytest.fixture
def cluster(hosts):
    hosts.start_haproxy(SERVERS)
    return hosts


def opens(srv):
    """(client ip, balancer ip) of every relayed session a server opened."""
    with srv.cond:
        return [m.groups() for line in srv.lines for m in [OPEN_RE.search(line)] if m]


def closes(srv, peers):
    """(reason, messages) of every session of these client ips that closed."""
    with srv.cond:
        return [(m.group(2), int(m.group(3))) for line in srv.lines
                for m in [CLOSE_RE.search(line)] if m and m.group(1) in peers]


def summary_messages(srv):
    line = [x for x in srv.lines if "summary:" in x][-1]
    return int(re.search(r"messages=(\d+)", line).group(1))


def finish(p, path, timeout=60):
    try:
        _, err = p.communicate(timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    with open(path) as f:
        text = f.read()
    assert text, err
    return json.loads(text), err.decode()


def merge_text(*paths):
    out = subprocess.run([SOCKIT, "bench", "merge", *paths], capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.decode()


def stop_server(c, role):
    srv = c.servers[role]
    assert srv.stop(signal.SIGTERM, timeout=10) == 0, srv.lines[-10:]
    return srv


def test_balanced_real_addresses_spread_and_merged(cluster):
    c = cluster
    gens = {c.addr("g1"), c.addr("g2")}
    # Both generators at once, open loop at a fixed rate, so that the
    # messages each instance gets follow the sessions HAProxy gave it (in
    # a closed loop they would follow how the shared cores are scheduled).
    runs = [c.bench(g, "-c", "30", "-d", "3", "--rate", "1500") for g in ("g1", "g2")]
    results = [finish(p, path) for p, path in runs]
    for d, err in results:
        assert d["errors"] == 0 and d["replies"] == d["sent"] > 0, err
    # Every relayed session shows a generator's own address, via the balancer.
    for role in SERVERS:
        seen = opens(c.servers[role])
        assert {ip for ip, _ in seen} <= gens, (role, seen)
        assert {via for _, via in seen} == {c.addr("lb")}, (role, seen)
        assert 15 <= len(seen) <= 25, (role, len(seen))  # round robin: 20 of 60 each
    assert {ip for role in SERVERS for ip, _ in opens(c.servers[role])} == gens
    # Load spread: each instance answered about a third of the messages.
    for role in SERVERS:
        srv = c.servers[role]
        srv.wait_for(lambda s=srv: len(closes(s, gens)) == len(opens(s)), 10, "sessions closed")
    per = {role: sum(n for _, n in closes(c.servers[role], gens)) for role in SERVERS}
    total = sum(per.values())
    assert total == sum(d["sent"] for d, _ in results)
    for role, n in per.items():
        assert 0.25 * total <= n <= 0.42 * total, per
    rate_runs = [path for _, path in runs]
    # The same two generators flat out (closed loop): the merged figures.
    runs = [c.bench(g, "-c", "30", "-d", "3") for g in ("g1", "g2")]
    flat = [finish(p, path) for p, path in runs]
    for d, err in flat:
        assert d["errors"] == 0 and d["replies"] == d["sent"] > 0, err
    merged = json.loads(subprocess.run([SOCKIT, "bench", "merge", "--json", runs[0][1], runs[1][1]],
                                       capture_output=True, timeout=30, check=True).stdout)
    assert merged["replies"] == sum(d["replies"] for d, _ in flat)
    assert merged["common_end_unix_us"] > merged["common_start_unix_us"]  # they overlapped
    # A reply through the balancer is the server's, byte for byte.
    out = subprocess.run(c.exec_argv("g1", SOCKIT, "client", f"{c.addr('lb')}:8888", "cluster"),
                         capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"Welcome!\nHello, cluster!\n"
    # The servers counted every message: both runs' and the client's one.
    counted = sum(summary_messages(stop_server(c, role)) for role in SERVERS)
    assert counted == total + merged["sent"] + 1
    report("two generators at 1,500 requests/s each (bench -c 30 -d 3 --rate 1500; merged)",
           merge_text(*rate_runs) +
           "  per instance: " + ", ".join(f"{r} {n} messages ({100 * n / total:.1f} %)"
                                          for r, n in per.items()))
    report("two generators flat out (bench -c 30 -d 3 on g1 and g2; sockit bench merge "
           "g1.json g2.json)", merge_text(runs[0][1], runs[1][1]))


def down_within(c, role, since, limit):
    """Polls HAProxy until it shows role DOWN; returns how long that took."""
    c.wait(lambda: c.backend_status().get(role, "").startswith("DOWN"), limit + 5,
           f"HAProxy to mark {role} down")
    took = time.monotonic() - since
    assert took <= limit, f"{role} marked down after {took:.3f} s (limit {limit} s)"
    return took


def test_kill_9_mid_run(cluster):
    c = cluster
    g1 = {c.addr("g1")}
    p, path = c.bench("g1", "-c", "30", "-d", "4", "--timeout", "2")
    for role in SERVERS:  # every connection is up and carrying load
        c.servers[role].wait_for(lambda r=role: len(opens(c.servers[r])) >= 10, 15,
                                 "10 sessions")
    victim = c.servers["s2"]
    victim.wait_for(lambda: len(opens(victim)) - len(closes(victim, g1)) == 10, 10,
                    "10 sessions open on s2")
    in_flight = len(opens(victim)) - len(closes(victim, g1))
    before = {r: len(opens(c.servers[r])) for r in ("s1", "s3")}
    t = time.monotonic()
    victim.proc.kill()
    took = down_within(c, "s2", t, CHECK_INTER_MS / 1000 + 0.5)
    d, err = finish(p, path)
    assert p.returncode == 1, err  # errors were counted
    # Only the sessions on the killed instance failed, each once, and
    # each lost at most its one request in flight (-P 1).
    assert d["sessions_failed"] == in_flight, (d, in_flight)
    assert 1 <= d["errors"] == d["error_classes"]["reset"] <= in_flight, d
    assert d["replies"] + d["errors"] == d["sent"]
    # The run went on: the failed sessions reconnected to the others, which
    # answered them until the end.
    after = {r: len(opens(c.servers[r])) - before[r] for r in ("s1", "s3")}
    assert sum(after.values()) == in_flight, after
    for r in ("s1", "s3"):
        srv = c.servers[r]
        srv.wait_for(lambda s=srv: len(closes(s, g1)) == len(opens(s)), 10, "sessions closed")
        assert all(n > 0 for _, n in closes(srv, g1)), closes(srv, g1)
    report("kill -9 of s2 mid-run (bench -c 30 -d 4 from g1)",
           f"HAProxy marked s2 DOWN {took * 1000:.0f} ms after the kill (check inter "
           f"{CHECK_INTER_MS} ms)\nsessions on s2 at the kill: {in_flight}; bench: "
           f"sessions_failed {d['sessions_failed']}, errors {d['errors']} (reset), "
           f"replies {d['replies']} of {d['sent']}; reconnected to s1/s3: {after}")


def test_sigterm_mid_run_loses_nothing(cluster):
    """A plain SIGTERM (HAProxy not told first) under kept-alive load: the instance stops
    accepting, answers what it has read, says `Error: server shutting down` to each of its
    sessions and exits 0 within its grace; HAProxy's check marks it down. bench sends each
    session's unanswered request again on a new connection, which HAProxy gives to another
    instance: no request and no session fails."""
    c = cluster
    g1 = {c.addr("g1")}
    p, path = c.bench("g1", "-c", "30", "-d", "4", "--timeout", "2")
    victim = c.servers["s2"]
    victim.wait_for(lambda: len(opens(victim)) == 10, 15, "10 sessions open on s2")
    for role in SERVERS:
        c.servers[role].wait_for(lambda r=role: len(opens(c.servers[r])) >= 10, 15, "sessions")
    before = {r: len(opens(c.servers[r])) for r in ("s1", "s3")}
    t = time.monotonic()
    victim.proc.send_signal(signal.SIGTERM)
    took = down_within(c, "s2", t, CHECK_INTER_MS / 1000 + 0.5)
    assert victim.proc.wait(10) == 0
    cut = [reason for reason, _ in closes(victim, g1)]
    assert cut == ["shutdown"] * 10, cut
    d, err = finish(p, path)
    assert p.returncode == 0, err
    assert d["errors"] == 0 and d["sessions_failed"] == 0, d
    assert d["reconnects"] == 10, d
    assert d["replies"] == d["sent"] > 0, d
    after = {r: len(opens(c.servers[r])) - before[r] for r in ("s1", "s3")}
    assert sum(after.values()) == 10, after  # the ten went to the other two
    report("SIGTERM of s2 mid-run, HAProxy not told first (bench -c 30 -d 4 from g1)",
           f"HAProxy marked s2 DOWN {took * 1000:.0f} ms after the signal; s2 exited 0; its 10 "
           f"kept-alive sessions closed reason=shutdown after the drain's line; bench: "
           f"errors {d['errors']}, sessions_failed {d['sessions_failed']}, reconnects "
           f"{d['reconnects']} (to s1/s3: {after}), replies {d['replies']} of {d['sent']}")


def test_rolling_restart_by_sigterm_loses_nothing(cluster):
    """Each instance in turn gets a plain SIGTERM under kept-alive load (HAProxy not told),
    exits 0, is started again and waited for until HAProxy has it UP: the sessions each stop
    ends reconnect elsewhere with their requests, and not one fails."""
    c = cluster
    p, path = c.bench("g1", "-c", "30", "-d", "14", "--timeout", "2")
    for role in SERVERS:
        c.servers[role].wait_for(lambda r=role: len(opens(c.servers[r])) >= 10, 15, "sessions")
    steps, ended = [], 0
    for role in SERVERS:
        t = time.monotonic()
        srv = stop_server(c, role)
        n = srv.log_count(r" close \S+ reason=shutdown ")
        ended += n
        c.start_server(role)
        c.wait(lambda: c.backend_status().get(role) == "UP", 15, f"{role} back UP")
        steps.append(f"{role}: SIGTERM ended {n} sessions, exited 0, restarted, UP again after "
                     f"{(time.monotonic() - t) * 1000:.0f} ms")
    assert p.poll() is None, "the run must outlast the restart"
    d, err = finish(p, path)
    assert p.returncode == 0, err
    assert d["errors"] == 0 and d["sessions_failed"] == 0, d
    assert d["reconnects"] == ended > 0, (d, ended)
    assert d["replies"] == d["sent"] > 0
    report("rolling restart of s1, s2, s3 by plain SIGTERM (HAProxy not told) under kept-alive "
           "bench -c 30 -d 14 from g1",
           "\n".join(steps) + f"\nbench: {d['replies']} of {d['sent']} replies, errors "
           f"{d['errors']}, sessions_failed {d['sessions_failed']}, reconnects {d['reconnects']}, "
           f"{d['throughput']:.0f} replies/s")


def scur(c, role):
    text = c.haproxy_cmd("show stat")
    lines = text.splitlines()
    cols = lines[0][2:].split(",")
    for line in lines[1:]:
        f = line.split(",")
        if len(f) == len(cols) and f[cols.index("svname")] == role:
            return int(f[cols.index("scur")] or 0)
    raise AssertionError(f"{role} not in HAProxy's stats")


def test_rolling_restart_drained_first_loses_nothing(cluster):
    """The rolling restart of docs/deploy.md: for each instance in turn,
    HAProxy is told to drain it (no new sessions), its sessions end, it gets
    SIGTERM and exits 0, a new one starts and HAProxy takes it back once its
    check passes. Short sessions (bench --connect: connect, greeting, close)
    keep arriving all along; not one may fail."""
    c = cluster
    p, path = c.bench("g1", "--connect", "-c", "20", "-d", "12", "--timeout", "2")
    c.servers["s1"].wait_log(r" open \S+ proxied_from=", 20, timeout=15)
    steps = []
    for role in SERVERS:
        t = time.monotonic()
        c.haproxy_cmd(f"set server sockit_servers/{role} state drain")
        c.wait(lambda: scur(c, role) == 0, 10, f"{role}'s sessions to end")
        drained = time.monotonic() - t
        srv = stop_server(c, role)
        assert any("summary:" in line for line in srv.lines)
        c.start_server(role)
        c.haproxy_cmd(f"set server sockit_servers/{role} state ready")
        c.wait(lambda: c.backend_status().get(role) == "UP", 15, f"{role} back UP")
        new = c.servers[role]
        new.wait_log(r" open \S+ proxied_from=", 1, timeout=15)  # it takes load again
        steps.append(f"{role}: drained in {drained * 1000:.0f} ms, restarted, UP again "
                     f"after {(time.monotonic() - t) * 1000:.0f} ms")
    assert p.poll() is None, "the run must outlast the restart"
    d, err = finish(p, path)
    assert p.returncode == 0, err
    assert d["errors"] == 0 and d["sessions_failed"] == 0, d
    assert d["replies"] == d["sent"] > 0
    report("rolling restart of s1, s2, s3 (drain in HAProxy, SIGTERM, start, ready) under "
           "bench --connect -c 20 -d 12 from g1",
           "\n".join(steps) + f"\nbench: {d['replies']} of {d['sent']} sessions completed, "
           f"errors {d['errors']}, sessions_failed {d['sessions_failed']}, "
           f"{d['throughput']:.0f} connects/s")


def test_nginx_stream(hosts):
    """docs/deploy.md's nginx stream configuration (proxy_protocol on: v1)."""
    c = hosts
    c.start_nginx()
    gens = {c.addr("g1"), c.addr("g2")}
    runs = [c.bench(g, "-c", "6", "-n", "3000") for g in ("g1", "g2")]
    results = [finish(p, path) for p, path in runs]
    for (d, err), (p, _) in zip(results, runs):
        assert p.returncode == 0 and d["errors"] == 0 and d["replies"] == 3000, err
    for role in SERVERS:
        seen = opens(c.servers[role])
        assert seen, f"{role} got no session"
        assert {ip for ip, _ in seen} <= gens and {via for _, via in seen} == {c.addr("lb")}
    per = {role: summary_messages(stop_server(c, role)) for role in SERVERS}
    assert sum(per.values()) == 6000, per
    report("two generators through nginx stream (bench -c 6 -n 3000 each)",
           merge_text(runs[0][1], runs[1][1]) +
           "  per instance: " + ", ".join(f"{r} {n} messages" for r, n in per.items()))
