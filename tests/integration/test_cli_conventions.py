"""One command-line convention for every subcommand (issue 8): one-line
errors "sockit: SUB: ..." with exit 2, one exit-status table (the same
failure, the same status, in client, bench and fetch), durations with
units, `sockit help SUB`, `SUB --version`, --help on stdout with exit 0, a
framing mismatch named at once (exit 7), and man/sockit.1 agreeing with
--help. Every server is stopped by PID (the serve fixture, or closed here);
every run has a subprocess timeout."""
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import SOCKIT, run_sockit

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
MAN = os.path.join(ROOT, "man", "sockit.1")
SUBS = ["serve", "client", "fetch", "bench"]

# The table of src/cli.h, `sockit --help` and man/sockit.1.
EXIT_RESOLVE, EXIT_CONNECT, EXIT_PROTO, EXIT_TIMEOUT = 3, 4, 7, 9


def one_line(r, sub):
    """The run failed with exactly one line "sockit: SUB: ..." on stderr."""
    err = r.stderr.decode("utf-8", "replace")
    assert err.count("\n") == 1 and err.endswith("\n"), err
    prefix = f"sockit: {sub}: " if sub else "sockit: "
    assert err.startswith(prefix), err
    return err


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # bound, then closed: nobody listens there
    return port


class Silent:
    """A listener that never accepts: the kernel completes the handshakes,
    nothing is ever sent (a greeting, a reply, an HTTP response)."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        return self

    def __exit__(self, *exc):
        self.sock.close()


# ---- usage errors: one line, exit 2, in every subcommand ----

USAGE = [
    # (argv, subcommand named in the message, what the message says)
    (["serve", "--bogus"], "serve", "unknown option --bogus"),
    (["serve", "--workers"], "serve", "option --workers needs a value"),
    (["serve", "-w"], "serve", "option -w needs a value"),
    (["serve", "--workers", "x"], "serve", "--workers is not a decimal number"),
    (["serve", "--idle-timeout", "5x"], "serve", "--idle-timeout is not a duration"),
    (["serve", "--delay", "5q"], "serve", "--delay is not a duration"),
    (["serve", "extra"], "serve", "unexpected argument"),
    (["client", "--bogus", "127.0.0.1:9"], "client", "unknown option --bogus"),
    (["client", "127.0.0.1:9", "--timeout"], "client", "option --timeout needs a value"),
    (["client", "--timeout", "5x", "127.0.0.1:9"], "client", "--timeout is not a duration"),
    (["client", "--timeout", "-1", "127.0.0.1:9"], "client", "--timeout must not be negative"),
    (["client"], "client", "missing HOST:PORT"),
    (["client", "127.0.0.1:x"], "client", "HOST:PORT"),
    (["fetch", "--bogus", "http://127.0.0.1:9/"], "fetch", "unknown option --bogus"),
    (["fetch", "http://127.0.0.1:9/", "--max-redirs"], "fetch",
     "option --max-redirs needs a value"),
    (["fetch", "--max-redirs", "x", "http://127.0.0.1:9/"], "fetch",
     "--max-redirs is not a decimal number"),
    (["fetch", "--max-time", "5x", "http://127.0.0.1:9/"], "fetch",
     "--max-time is not a duration"),
    (["fetch", "--connect-timeout", "1e3", "http://127.0.0.1:9/"], "fetch",
     "--connect-timeout is not a duration"),
    (["fetch"], "fetch", "missing URL"),
    (["bench", "--bogus", "127.0.0.1:9"], "bench", "unknown option --bogus"),
    (["bench", "127.0.0.1:9", "-c"], "bench", "option -c needs a value"),
    (["bench", "127.0.0.1:9", "-c", "x"], "bench", "-c is not a decimal number"),
    (["bench", "127.0.0.1:9", "-d", "5x"], "bench", "-d is not a duration"),
    (["bench", "127.0.0.1:9", "--timeout", "1q"], "bench", "--timeout is not a duration"),
    (["bench", "127.0.0.1:9", "--rate", "5s"], "bench", "--rate is not a decimal number"),
    (["bench"], "bench", "missing HOST:PORT"),
    ([], None, "missing command"),
    (["nope"], None, "unknown command nope"),
    (["--bogus"], None, "unknown option --bogus"),
    (["help", "nope"], "help", "unknown command nope"),
]


@pytest.mark.parametrize("argv,sub,msg", USAGE, ids=[" ".join(a[0]) or "-" for a in USAGE])
def test_usage_error_is_one_line_and_exit_2(argv, sub, msg):
    r = run_sockit(*argv, timeout=10)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stdout == b""
    assert msg in one_line(r, sub)


def test_getopt_messages_are_ours():
    # getopt's own "sockit: unrecognized option" and "invalid option -- 'z'"
    # never appear: every subcommand runs it silently (opterr = 0).
    for sub in SUBS:
        r = run_sockit(sub, "-z", "127.0.0.1:9", timeout=10)
        assert r.returncode == 2, (sub, r.stderr)
        err = one_line(r, sub)
        assert "unknown option -z" in err and "invalid option" not in err, err


# ---- the same failure, the same status ----

def test_unresolvable_host_is_3_everywhere():
    host = "no-such-host.invalid"
    for argv in (["client", "--timeout", "5", f"{host}:80", "hi"],
                 ["client", "--udp", "--timeout", "5", f"{host}:80", "hi"],
                 ["bench", f"{host}:80", "-n", "1"],
                 ["fetch", "--max-time", "10", f"http://{host}/"]):
        r = run_sockit(*argv, timeout=30)
        assert r.returncode == EXIT_RESOLVE, (argv, r.returncode, r.stderr)
        assert r.stderr.count(b"\n") == 1, r.stderr


def test_refused_port_is_4_everywhere():
    port = closed_port()
    for argv in (["client", "--timeout", "5", f"127.0.0.1:{port}", "hi"],
                 ["client", "--udp", "--timeout", "5", f"127.0.0.1:{port}", "hi"],
                 ["bench", f"127.0.0.1:{port}", "-n", "1"],
                 ["bench", f"127.0.0.1:{port}", "--connect", "-n", "1"],
                 ["fetch", "--max-time", "10", f"http://127.0.0.1:{port}/"]):
        r = run_sockit(*argv, timeout=30)
        assert r.returncode == EXIT_CONNECT, (argv, r.returncode, r.stderr)
        assert b"refused" in r.stderr.lower(), r.stderr


def test_timeout_is_9_everywhere():
    # Connected, and then nothing: the greeting (client, bench) or the
    # response (fetch) never comes.
    with Silent() as s:
        for argv in (["client", "--timeout", "300ms", f"127.0.0.1:{s.port}", "hi"],
                     ["bench", f"127.0.0.1:{s.port}", "-n", "1", "-c", "1",
                      "--timeout", "300ms", "-q"],
                     ["fetch", "--max-time", "500ms", f"http://127.0.0.1:{s.port}/"]):
            r = run_sockit(*argv, timeout=60)
            assert r.returncode == EXIT_TIMEOUT, (argv, r.returncode, r.stderr)
            assert re.search(rb"timed out|--max-time of", r.stderr), r.stderr


# ---- durations: NUMBER[ms|s|m|h] wherever a duration is taken ----

def test_client_and_bench_take_units(serve):
    srv = serve("--quiet")
    r = run_sockit("client", "--timeout", "2500ms", f"127.0.0.1:{srv.port}", "hi", timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"Welcome!\nHello, hi!\n"
    r = run_sockit("client", "-t", "1m", f"127.0.0.1:{srv.port}", "hi", timeout=20)
    assert r.returncode == 0, r.stderr
    r = run_sockit("bench", f"127.0.0.1:{srv.port}", "-d", "300ms", "-c", "2", "--warmup",
                   "100ms", "--timeout", "1m", "--json", timeout=30)
    assert r.returncode == 0, r.stderr
    assert b'"replies":' in r.stdout


def test_fetch_takes_units():
    # Parsed (not exit 2): the run goes on to the refused connect.
    port = closed_port()
    for opt, val in (("--max-time", "2m"), ("--connect-timeout", "1500ms"),
                     ("--max-time", "0.5h")):
        r = run_sockit("fetch", opt, val, f"http://127.0.0.1:{port}/", timeout=20)
        assert r.returncode == EXIT_CONNECT, (opt, val, r.stderr)


def test_serve_idle_timeout_takes_units(serve):
    srv = serve("--idle-timeout", "500ms")  # whole seconds for the engine: 1 s
    with srv.connect() as c:
        c.settimeout(10)
        assert c.recv(100) == b"Welcome!"
        srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=idle-timeout", timeout=10)
        assert c.recv(100) == b""


@pytest.mark.parametrize("delay", ["300", "300ms", "0.3s"])
def test_serve_delay_plain_number_stays_milliseconds(serve, delay):
    # --delay has always taken milliseconds: "300" is 300 ms, as "300ms" and
    # "0.3s" are (and not 300 s: the reply comes well within the deadline).
    srv = serve("--quiet", "--delay", delay)
    t0 = time.monotonic()
    r = run_sockit("client", "--timeout", "20", f"127.0.0.1:{srv.port}", "hi", timeout=30)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert took >= 0.29, took


# ---- help and version ----

def test_every_help_is_stdout_and_exit_0():
    for sub in SUBS:
        r = run_sockit(sub, "--help", timeout=10)
        assert r.returncode == 0 and r.stderr == b"", (sub, r.stderr)
        assert r.stdout.startswith(f"usage: sockit {sub}".encode()), r.stdout[:80]
        h = run_sockit(sub, "-h", timeout=10)
        assert h.returncode == 0 and h.stdout == r.stdout


def test_help_sub_prints_the_subcommands_manual():
    for sub in SUBS:
        r = run_sockit("help", sub, timeout=10)
        assert r.returncode == 0 and r.stderr == b"", (sub, r.stderr)
        assert r.stdout == run_sockit(sub, "--help", timeout=10).stdout
    top = run_sockit("help", timeout=10)
    assert top.returncode == 0 and top.stdout == run_sockit("--help", timeout=10).stdout


def test_version_everywhere():
    want = run_sockit("--version", timeout=10)
    assert want.returncode == 0 and re.fullmatch(rb"sockit \d+\.\d+\.\d+\n", want.stdout)
    for argv in [["-V"], ["version"]] + [[s, "--version"] for s in SUBS] + \
            [[s, "-V"] for s in SUBS]:
        r = run_sockit(*argv, timeout=10)
        assert r.returncode == 0 and r.stderr == b"", (argv, r.stderr)
        assert r.stdout == want.stdout, argv


def test_top_help_has_the_exit_table():
    out = run_sockit("--help", timeout=10).stdout.decode()
    codes = [int(m.group(1)) for m in re.finditer(r"^\s+(\d+)  \S", out, re.M)]
    assert codes == list(range(14)), out


# ---- framing mismatch: named at once, exit 7 ----

@pytest.mark.parametrize("server,ours", [("chunk", "line"), ("line", "chunk")])
def test_client_framing_mismatch_exits_7(serve, server, ours):
    srv = serve("--quiet", "--framing", server)
    # --timeout is far away: only the detection can end this run in time
    # for the subprocess deadline.
    r = run_sockit("client", "--framing", ours, "--timeout", "60", f"127.0.0.1:{srv.port}",
                   "hi", timeout=30)
    assert r.returncode == EXIT_PROTO, r.stderr
    assert r.stdout == b""
    err = one_line(r, "client")
    assert f"the server uses {server} framing" in err and f"--framing {server}" in err, err


def test_a_line_greeting_arriving_in_pieces_is_still_fine():
    # A line server whose "\n" comes in a later segment, soon after: not a
    # mismatch (only a "Welcome!" left alone for 200 ms is).
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    p = subprocess.Popen([SOCKIT, "client", "-f", "line", "--timeout", "10",
                          f"127.0.0.1:{port}", "hi"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        srv.settimeout(10)
        c, _ = srv.accept()
        with c:
            c.sendall(b"Welcome!")
            time.sleep(0.05)  # the server's pacing (two segments), not a synchronisation
            c.sendall(b"\n")
            c.settimeout(10)
            got = b""
            while not got.endswith(b"\n"):
                chunk = c.recv(100)
                assert chunk, got
                got += chunk
            c.sendall(b"Hello, hi!\n")
            out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        srv.close()
    assert p.returncode == 0, err
    assert out == b"Welcome!\nHello, hi!\n"


# ---- the man page says what --help says ----

def long_options(text):
    return set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*)", text)) - {"help", "version"}


@pytest.mark.skipif(not os.path.exists(MAN), reason="no man page")
def test_man_page_has_every_option_and_status():
    man = open(MAN, encoding="utf-8").read()
    # roff writes "-" as "\-": read the page as its words.
    plain = man.replace("\\-", "-").replace("\\&", "")
    for sub in SUBS:
        assert re.search(rf"^\.Ss .*{sub}|^\.Nm {sub}|^\.It Nm {sub}|{sub}", plain, re.M), sub
        helptext = run_sockit(sub, "--help", timeout=10).stdout.decode()
        for opt in long_options(helptext):
            assert re.search(rf"(Fl |--)-?{re.escape(opt)}\b", plain), (sub, opt)
    section = plain[plain.index(".Sh EXIT STATUS"):]
    section = section[:section.index(".Sh ", 4)]
    for code in range(13):
        assert re.search(rf"^\.It {code}\b", section, re.M), code


@pytest.mark.skipif(not os.path.exists(MAN), reason="no man page")
def test_man_page_renders_clean():
    # groff with every warning on (-ww) says nothing about the page; mandoc's
    # lint too where it is installed (apt-get install mandoc).
    r = subprocess.run(["groff", "-mandoc", "-Tutf8", "-ww", "-z", MAN], capture_output=True,
                       timeout=30)
    assert r.returncode == 0 and r.stderr == b"", r.stderr
    if os.path.exists("/usr/bin/mandoc"):
        r = subprocess.run(["mandoc", "-Tlint", "-W", "warning", MAN], capture_output=True,
                           timeout=30)
        assert r.returncode == 0 and r.stdout + r.stderr == b"", r.stdout + r.stderr
