#!/usr/bin/python3
"""Fault-injection ("torture") driver for the build/fault-san/sockit build.

For each scenario it counts N, the wrapped calls a fault-free run makes
(SOCKIT_FAULT_COUNT), then runs it again for k = 1..N with SOCKIT_FAULT=k,
so that the k-th call fails once, and checks what every run must do:
no death by signal, no hang, a failure is one "sockit: ..." line with a
documented exit status, success only with correct output, a failed fetch
leaves the folder as it was, a server keeps serving and exits 0 on SIGTERM,
no sanitizer report, no descriptor left open. See docs/testing.md.

    tests/torture/torture.py [--all] [--scenario NAME]... [--cap K --stride S]
"""
import argparse
import concurrent.futures
import gzip
import hashlib
import http.server
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import conftest  # noqa: E402  (the Server helper of the integration tests)
import nginx_util  # noqa: E402  (make_certs)

SOCKIT = os.path.abspath(os.environ.get("SOCKIT_FAULT_BIN")
                         or os.path.join(ROOT, "build", "fault-san", "sockit"))
TIMEOUT = 20.0            # any one run of a command; longer is a hang
SANITIZER = ("Sanitizer", "runtime error:")
BODY = b"".join(b"%05d sockit torture body\n" % i for i in range(1500))  # 37.5 KB
GZ_BODY = gzip.compress(BODY, mtime=0)
OLD = b"the file as it was before the fetch\n"
PAR_BODIES = [b"%d " % i + BODY[:5000 * (i + 1)] for i in range(6)]  # /p0 ... /p5
PART = 10000  # bytes of BODY in the part a resumed fetch starts from


class Run:
    """One run of a scenario with SOCKIT_FAULT=k: what failed, what is wrong."""

    def __init__(self, k):
        self.k = k
        self.calls = 0
        self.by = {}
        self.rc = None
        self.failed = "-"
        self.problems = []

    def bad(self, what):
        self.problems.append(what)

    def read_report(self, path):
        try:
            with open(path) as f:
                # "by" alone: no call of the function counted in this run
                rep = {k: v for k, _, v in (line.partition(" ") for line in f.read().splitlines())}
        except OSError:
            rep = {}
        self.failed = rep.get("failed", "-").strip()
        if "calls" not in rep:
            if not self.problems:  # a signal or a sanitizer says it already
                self.bad("no fault report at exit (did not exit through exit())")
            return
        self.calls = int(rep["calls"])
        self.by = {f: int(n) for f, _, n in
                   (w.partition("=") for w in rep.get("by", "").split())}
        if rep.get("fds", "0").strip() != "0":
            self.bad(f"{rep['fds'].strip()} descriptor(s) left open at exit")


def fault_env(k, report, **extra):
    """k is a number, or (number, function) to count that function only."""
    k, only = k if isinstance(k, tuple) else (k, "")
    env = dict(os.environ, SOCKIT_FAULT=str(k), SOCKIT_FAULT_ONLY=only,
               SOCKIT_FAULT_COUNT=report,
               ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1")
    env.update(extra)
    return env


def check_stderr(run, rc, err_lines, statuses, reported=False, several=False):
    """The checks shared by every command: signal, sanitizer, exit status,
    the one-line message of a failure (unless the output reported it, or
    the command ran several things: a line each, which the scenario checks)."""
    san = [line for line in err_lines if any(s in line for s in SANITIZER)]
    if san:
        run.bad("sanitizer: " + san[0].strip())
    if rc < 0:
        run.bad(f"killed by signal {signal.Signals(-rc).name}")
    elif rc != 0 and not san:
        if rc not in statuses:
            run.bad(f"exit {rc} is not a documented failure status {sorted(statuses)}")
        msgs = [line for line in err_lines if line.startswith("sockit: ")]
        if len(msgs) != 1 and not (reported and not msgs) and not several:
            run.bad(f"failure with {len(msgs)} 'sockit: ' lines: {err_lines[-3:]}")


def run_command(k, args, statuses, cwd=None, reported=None, several=False, **extra_env):
    """Runs one sockit command with the fault at k; returns (Run, rc, out).
    reported(stdout): the failure is in the output, so needs no message;
    several: a line per failed part, checked by the caller (run.stderr)."""
    run = Run(k)
    with tempfile.TemporaryDirectory(prefix="torture-") as tmp:
        report = os.path.join(tmp, "report")
        try:
            p = subprocess.run([SOCKIT] + args, env=fault_env(k, report, **extra_env),
                               stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=TIMEOUT, cwd=cwd)
        except subprocess.TimeoutExpired as e:
            run.bad(f"hang: no exit within {TIMEOUT:.0f} s; stderr "
                    f"{(e.stderr or b'')[-200:]!r}")
            return run, None, b""
        err_lines = p.stderr.decode("utf-8", "replace").splitlines()
        run.rc = p.returncode
        check_stderr(run, p.returncode, err_lines, statuses,
                     bool(reported and reported(p.stdout)), several)
        run.read_report(report)
        run.stderr = err_lines
        return run, p.returncode, p.stdout


# --- servers the scenarios talk to --------------------------------------

def start_plain_server(*args):
    """A fault-free sockit serve (SOCKIT_FAULT unset) for client and bench."""
    env = dict(os.environ)
    env.pop("SOCKIT_FAULT", None)
    return conftest.Server(list(args) + ["--quiet"], env=env, executable=SOCKIT)


class Handler(http.server.BaseHTTPRequestHandler):
    """/start redirects to /body, which is sent chunked in uneven pieces;
    /gz is the body gzipped (Content-Encoding), chunked the same way."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/resume":
            return self.resume()
        if re.fullmatch(r"/p[0-5]", self.path):
            return self.parallel_part(int(self.path[2:]))
        coded = self.path == "/gz"
        if self.path == "/start":
            self.send_response(302)
            self.send_header("Location", "/body")
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        if coded:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Connection", "close")
        self.end_headers()
        data = GZ_BODY if coded else BODY
        off, size = 0, 1000 if not coded else 100
        while off < len(data):
            piece = data[off:off + size]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            off, size = off + len(piece), size * 2 + 7
        self.wfile.write(b"0\r\n\r\n")


    def parallel_part(self, i):
        """PAR_BODIES[i] on a kept connection: with a Content-Length for an
        even i, chunked for an odd one."""
        data = PAR_BODIES[i]
        self.send_response(200)
        if i % 2:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not i % 2:
            self.wfile.write(data)
            return
        for off in range(0, len(data), 3000):
            piece = data[off:off + 3000]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        self.wfile.write(b"0\r\n\r\n")

    def resume(self):
        """Without Range: the body is cut after PART bytes (a download to
        resume); with Range and If-Range "v1": a 206 with the rest."""
        rng = self.headers.get("Range", "")
        start = int(rng[6:-1]) if rng.startswith("bytes=") and rng.endswith("-") else 0
        if start and self.headers.get("If-Range") == '"v1"' and start < len(BODY):
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(BODY) - 1}/{len(BODY)}")
        else:
            start = 0
            self.send_response(200)
        self.send_header("ETag", '"v1"')
        self.send_header("Content-Length", str(len(BODY) - start))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(BODY[start:] if start else BODY[:PART])


class QuietHTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client the fault cut off mid-response: expected


class HttpServer:
    def __init__(self, tls_dir=None):
        self.httpd = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme, self.cafile = "http", None
        if tls_dir:
            certs = nginx_util.make_certs(tls_dir)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(certs["cert"], certs["key"])
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                                do_handshake_on_connect=False)
            self.scheme, self.cafile = "https", certs["ca"]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}/start"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# --- talking to a server under test ---------------------------------------

def session(addr, framing, msgs, timeout=5.0):
    """One greeting session; returns None when every reply was right, else
    what went wrong ('closed ...' when the server ended it early)."""
    term = b"\n" if framing == "line" else b""
    try:
        with socket.create_connection(addr, timeout=timeout) as s:
            buf = [b""]

            def expect(want):
                while len(buf[0]) < len(want):
                    chunk = s.recv(65536)
                    if not chunk:
                        raise EOFError
                    buf[0] += chunk
                got, buf[0] = buf[0][:len(want)], buf[0][len(want):]
                if want.startswith(b"Welcome!") and got.startswith(b"Error: se"):
                    raise ConnectionRefusedError("server full")  # --max-conns
                if got != want:
                    raise ValueError(f"wrong bytes {got!r}, wanted {want!r}")

            expect(b"Welcome!" + term)
            if term:  # line framing: pipelined
                s.sendall(b"".join(m + term for m in msgs))
                for m in msgs:
                    expect(b"Hello, %s!\n" % m)
            else:     # chunk framing: one message per reply
                for m in msgs:
                    s.sendall(m)
                    expect(b"Hello, %s!" % m)
            s.sendall(b"exit" + term)
            return None
    except EOFError:
        return "closed"
    except ValueError as e:
        return str(e)
    except socket.timeout:
        return f"no reply within {timeout:.0f} s"
    except ConnectionRefusedError as e:
        return f"refused ({e})"
    except OSError as e:
        return f"closed ({e.__class__.__name__})"


def serving(addr, framing, tries=3, full_wait=5.0):
    """The server answers a new client: a fault may spoil one try, not all.
    'server full' is retried for full_wait s, while closed sessions drain."""
    last, deadline = None, time.monotonic() + full_wait
    while tries > 0:
        last = session(addr, framing, [b"check"])
        if last is None:
            return None
        if last == "refused (server full)" and time.monotonic() < deadline:
            time.sleep(0.05)
            continue
        tries -= 1
    return last


def listening_port(pid):
    """The TCP port a process listens on, from /proc (0 if none)."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1]
                  for fd in os.listdir(f"/proc/{pid}/fd")
                  if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}
        with open(f"/proc/{pid}/net/tcp") as f:
            for row in f.read().splitlines()[1:]:
                col = row.split()
                if col[3] == "0A" and col[9] in inodes:
                    return int(col[1].split(":")[1], 16)
    except OSError:
        pass
    return 0


def stop_server(run, srv, what):
    """SIGTERM must end the server with 0; then its stderr and report count."""
    try:
        rc = srv.stop(signal.SIGTERM, timeout=10)
    except AssertionError:
        run.bad(f"{what}: did not exit within 10 s of SIGTERM")
        return
    with srv.cond:
        lines = list(srv.lines)
    run.rc = rc
    check_stderr(run, rc, lines, {1})
    if rc != 0 and rc > 0:
        run.bad(f"{what}: exit {rc} after SIGTERM, not 0")


# --- scenarios ---------------------------------------------------------------

class Scenario:
    name = "?"

    def setup(self):
        pass

    def teardown(self):
        pass


class ClientTcp(Scenario):
    name = "client-tcp"
    udp = False

    def setup(self):
        self.srv = start_plain_server(*(["--udp"] if self.udp else []))

    def teardown(self):
        self.srv.stop()

    def run(self, k):
        addr = f"127.0.0.1:{self.srv.port}"
        args = ["client", addr, "hi", "there", "--timeout", "2"]
        want = b"Welcome!\nHello, hi!\nHello, there!\n"
        if self.udp:
            args.insert(1, "--udp")
            want = b"Hello, hi!\nHello, there!\n"
        # 4: the injected connect failure is ECONNREFUSED (the one exit table)
        run, rc, out = run_command(k, args, {1, 4})
        if rc == 0 and out != want:
            run.bad(f"exit 0 with wrong output {out[:80]!r}")
        return run


class ClientUdp(ClientTcp):
    name = "client-udp"
    udp = True


class TlsServer:
    """A fault-free sockit serve --tls-cert on a certificate of nginx_util's CA."""

    def setup(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="torture-tls-")
        certs = nginx_util.make_certs(self.tmp.name)
        self.ca = certs["ca"]
        self.srv = start_plain_server("--tls-cert", certs["cert"], "--tls-key", certs["key"],
                                      *self.serve_args)

    def teardown(self):
        self.srv.stop()
        self.tmp.cleanup()


class ClientTls(TlsServer, Scenario):
    """client --tls: the handshake, SSL_read and SSL_write paths, close_notify."""
    name = "client-tls"
    serve_args = ()

    def run(self, k):
        args = ["client", f"127.0.0.1:{self.srv.port}", "--tls", "--cacert", self.ca, "hi",
                "there", "--timeout", "2"]
        # 1: an epoll_ctl that fails while the handshake re-arms the socket
        # closes the stream (sk_stream_update), which the client reports.
        run, rc, out = run_command(k, args, {1, 4, 5, 9})
        if rc == 0 and out != b"Welcome!\nHello, hi!\nHello, there!\n":
            run.bad(f"exit 0 with wrong output {out[:80]!r}")
        return run


class Fetch(Scenario):
    """fetch over a redirect to a chunked body into DIR/out.bin."""
    statuses = {1, 3, 4, 5, 7, 8, 9, 10}
    extra = []  # more options

    def __init__(self, tls, existing, sync):
        self.tls, self.existing, self.sync = tls, existing, sync
        self.name = "fetch-%s-%s%s" % ("https" if tls else "http",
                                       "existing" if existing else "new",
                                       "-sync" if sync else "")

    def setup(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="torture-fetch-")
        self.http = HttpServer(os.path.join(self.tmp.name, "tls") if self.tls else None)

    def teardown(self):
        self.http.stop()
        self.tmp.cleanup()

    def run(self, k):
        d = tempfile.mkdtemp(dir=self.tmp.name)
        out = os.path.join(d, "out.bin")
        if self.existing:
            with open(out, "wb") as f:
                f.write(OLD)
        args = ["fetch", self.http.url, "-o", out, "--max-time", "10"] + self.extra
        args += ["--cacert", self.http.cafile] if self.tls else []
        args += ["--sync"] if self.sync else []
        run, rc, stdout = run_command(k, args, self.statuses, cwd=d)
        left = sorted(os.listdir(d))
        if rc == 0:
            if left != ["out.bin"] or open(out, "rb").read() != BODY:
                run.bad(f"exit 0 but the folder holds {left} "
                        f"({os.path.getsize(out) if os.path.exists(out) else '-'} bytes)")
        elif rc is not None:
            if self.existing:
                if left != ["out.bin"] or open(out, "rb").read() != OLD:
                    run.bad(f"failed fetch changed the folder: {left}"
                            + ("" if not os.path.exists(out) else
                               f", out.bin {os.path.getsize(out)} bytes"))
            elif left:
                run.bad(f"failed fetch left {left}")
        return run


class FetchCompressed(Fetch):
    """fetch --compressed --max-filesize of a gzip body (the decoder's and
    zlib's allocations, the writes of the decoded bytes)."""
    name = "fetch-http-compressed"
    extra = ["--compressed", "--max-filesize", "1m"]

    def __init__(self):
        super().__init__(False, False, False)
        self.name = FetchCompressed.name

    def setup(self):
        super().setup()
        self.http.url = self.http.url.replace("/start", "/gz")


class FetchRate(Fetch):
    """fetch --limit-rate -Y -y: the rate limit's pause and timer, the speed
    check's tick, under every fault (a body paced after its first read)."""
    name = "fetch-http-rate"
    extra = ["--limit-rate", "16k", "-Y", "1", "-y", "5"]

    def __init__(self):
        super().__init__(False, False, False)
        self.name = FetchRate.name


class FetchResume(Fetch):
    """fetch -C --sha256 resuming a part: a 206 completes it."""
    name = "fetch-http-resume"
    files = ["out.bin.part", "out.bin.part.meta"]

    def __init__(self):
        super().__init__(False, False, False)
        self.name = FetchResume.name

    def setup(self):
        super().setup()
        self.url = self.http.url.replace("/start", "/resume")
        self.part = tempfile.mkdtemp(dir=self.tmp.name)
        subprocess.run([SOCKIT, "fetch", "-C", self.url, "-o", "out.bin", "-s"],
                       cwd=self.part, capture_output=True, timeout=TIMEOUT,
                       env=fault_env(0, os.path.join(self.tmp.name, "r")))
        assert sorted(os.listdir(self.part)) == self.files, os.listdir(self.part)

    def run(self, k):
        d = tempfile.mkdtemp(dir=self.tmp.name)
        for name in self.files:
            with open(os.path.join(self.part, name), "rb") as f, \
                 open(os.path.join(d, name), "wb") as g:
                g.write(f.read())
        args = ["fetch", "-C", self.url, "-o", "out.bin", "--max-time", "10",
                "--sha256", hashlib.sha256(BODY).hexdigest()]
        run, rc, _ = run_command(k, args, self.statuses, cwd=d)
        left = sorted(os.listdir(d))
        if rc == 0:
            if left != ["out.bin"] or open(os.path.join(d, "out.bin"), "rb").read() != BODY:
                run.bad(f"exit 0 but the folder holds {left}")
        elif rc is not None:
            part = os.path.join(d, "out.bin.part")
            if not set(left) <= set(self.files):
                run.bad(f"failed fetch -C left {left}")
            elif os.path.exists(part) and not BODY.startswith(open(part, "rb").read()):
                run.bad("failed fetch -C left a part that is not a prefix of the body")
        return run


class FetchParallel(Fetch):
    """fetch -s --parallel 3 of 6 URLs into an empty folder: three transfers
    at once on one loop (the coroutines, each slot's kept connection serving
    its second URL, the name looked up on a thread), the result lines held
    for URL order. Whatever fails: every file there is whole and byte-exact,
    nothing else (no temporary file); exit 0 only with all six; a failure's
    status is documented and some file is missing; the count line, when it
    could be written, counts the files saved."""
    name = "fetch-http-parallel"
    slots = "3"
    COUNT = re.compile(r"sockit: fetch: (\d+) succeeded, (\d+) failed(, the rest not tried)?$")

    def __init__(self):
        super().__init__(False, False, False)
        self.name = FetchParallel.name

    def run(self, k):
        d = tempfile.mkdtemp(dir=self.tmp.name)
        # By name: the lookup on its thread (pthread_create, the eventfd that
        # hands its result to the loop), once for the run.
        base = self.http.url[:-len("/start")].replace("127.0.0.1", "localhost")
        names = [f"p{i}" for i in range(len(PAR_BODIES))]
        args = ["fetch", "-s", "--parallel", self.slots, "--max-time", "10",
                *[f"{base}/{n}" for n in names]]
        args += ["--cacert", self.http.cafile] if self.http.cafile else []
        # -w from a file: its read, and each URL's report held for its turn;
        # -D -: the heads on standard output, held with it.
        fmt = d + ".write-out"  # the run's own: runs go in parallel
        with open(fmt, "w") as f:
            f.write("%{json}\n")
        run, rc, out = run_command(k, args + ["-D", "-", "-w", "@" + fmt], self.statuses | {2},
                                   cwd=d, several=True)
        if rc is None:
            return run
        if rc == 2 and not (run.stderr and run.stderr[-1].startswith(f"sockit: fetch: -w @{fmt}: ")):
            run.bad(f"exit 2 but not for the format file: {run.stderr[-2:]}")
        try:
            reports = [json.loads(line) for line in out.decode().splitlines()
                       if line.startswith("{")]
        except ValueError as e:
            run.bad(f"-w %{{json}} not JSON ({e}): {out[-200:]!r}")
            return run
        if rc == 0 and sorted(r["urlnum"] for r in reports) != list(range(len(names))):
            run.bad(f"exit 0 with reports of URLs {[r['urlnum'] for r in reports]}")
        left = sorted(os.listdir(d))
        for n in left:
            if n not in names:
                run.bad(f"left {n} (exit {rc})")
            elif open(os.path.join(d, n), "rb").read() != PAR_BODIES[names.index(n)]:
                run.bad(f"{n} saved with wrong bytes (exit {rc})")
        msgs = [line for line in run.stderr if line.startswith("sockit: ")]
        if rc == 0 and (left != names or msgs):
            run.bad(f"exit 0 with {left} saved and lines {msgs[-2:]}")
        # A URL whose report could not be written fails (exit 10), its file saved.
        unreported = len(names) - len(reports) if rc == 10 else 0
        if rc != 0 and left == names and not unreported:
            run.bad(f"exit {rc} though every file was saved: {msgs[-2:]}")
        count = self.COUNT.match(msgs[-1]) if msgs else None
        if count and not len(left) - unreported <= int(count.group(1)) <= len(left):
            run.bad(f"'{msgs[-1]}' but {len(left)} saved, {unreported} unreported")
        if count and not count.group(3) and int(count.group(1)) + int(count.group(2)) != 6:
            run.bad(f"'{msgs[-1]}' counts other than the 6 URLs")
        return run


class NginxH2:
    """nginx offering HTTP/2 over TLS ("listen ... ssl http2"): /start is
    BODY, /p0 ... /p5 are PAR_BODIES (one h2 connection serves them all)."""

    def __init__(self, d, h2c=False):
        """h2c: its plain HTTP/2 port instead (prior knowledge, no TLS)."""
        self.ng = nginx_util.Nginx(os.path.join(d, "ng"), nginx_util.make_certs(
            os.path.join(d, "tls")), http2=True, h2c=h2c)
        self.ng.put("start", BODY)
        for i, body in enumerate(PAR_BODIES):
            self.ng.put(f"p{i}", body)
        self.cafile = self.ng.certs["ca"]
        self.url = self.ng.url("/start", tls=not h2c, h2c=h2c)

    def stop(self):
        self.ng.stop()


class FetchH2(Fetch):
    """fetch of BODY from nginx over HTTP/2 (ALPN h2): the nghttp2 session's
    allocations, its frames through SSL_read/SSL_write, the stream's end."""
    name = "fetch-https-h2"

    def __init__(self):
        super().__init__(True, False, False)
        self.name = FetchH2.name

    def setup(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="torture-fetch-")
        self.http = NginxH2(self.tmp.name)


class FetchH2c(FetchH2):
    """The same over plain http:// with --http2-prior-knowledge (h2c): the
    session from the connect on, its frames through send/recv."""
    name = "fetch-http-h2c"
    extra = ["--http2-prior-knowledge"]

    def __init__(self):
        Fetch.__init__(self, False, False, False)
        self.name = FetchH2c.name

    def setup(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="torture-fetch-")
        self.http = NginxH2(self.tmp.name, h2c=True)


class FetchH2Rate(FetchH2):
    """The same over HTTP/2: the stream's window kept back, the connection's
    given back."""
    name = "fetch-https-h2-rate"
    extra = FetchRate.extra

    def __init__(self):
        super().__init__()
        self.name = FetchH2Rate.name


class FetchH2Parallel(FetchParallel):
    """fetch -s --parallel 3 of 6 URLs from nginx over HTTP/2: the other
    transfers join the first one's connection as streams (multiplexed)."""
    name = "fetch-https-h2-parallel"

    def __init__(self):
        super().__init__()
        self.name = FetchH2Parallel.name

    def setup(self):
        FetchH2.setup(self)


class FetchH2Pool(FetchH2Parallel):
    """fetch -s --parallel 2 of 6 URLs from nginx over HTTP/2: the run's
    pool (lib/fetch_pool.c), each slot's later URLs streams on the one
    connection whose first transfer is over or under way (a holder parked
    with the others' streams on it, a transfer joining an idle holder)."""
    name = "fetch-https-h2-pool"
    slots = "2"

    def __init__(self):
        super().__init__()
        self.name = FetchH2Pool.name


class H2Refusing:
    """A python3-h2 server (h2_hostile.py) serving /p0 ... /p5: on its first
    connection it answers the first stream, then sends GOAWAY (last stream
    1, NO_ERROR) and closes: the streams that joined are refused and sent
    again on connections of their own."""

    def __init__(self, d):
        import h2_hostile
        self.certs = nginx_util.make_certs(os.path.join(d, "tls"))
        self.h2 = h2_hostile

        def script(srv, conn, sid, h, send, n):
            body = PAR_BODIES[int(h[":path"][2:])]
            if n == 1 and sid != 1:
                send(h2_hostile.goaway(1, 0))
                return "close"
            conn.send_headers(sid, [(":status", "200"), ("content-length", str(len(body)))])
            h2_hostile.send_body(conn, sid, body, send)
            return None
        self.srv = h2_hostile.H2Server(self.certs, script=script)
        self.cafile = self.certs["ca"]
        self.url = f"https://127.0.0.1:{self.srv.port}/start"

    def stop(self):
        self.srv.stop()


class FetchH2Goaway(FetchParallel):
    """fetch -s --parallel 3 of 6 URLs over HTTP/2 from a server that refuses
    the streams joining its first connection (GOAWAY): the retry on a new
    connection under every fault."""
    name = "fetch-https-h2-goaway"

    def __init__(self):
        super().__init__()
        self.name = FetchH2Goaway.name

    def setup(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="torture-fetch-")
        self.http = H2Refusing(self.tmp.name)


class FetchSocks(Fetch):
    """fetch of BODY (a redirect, a chunked body) through a real microsocks
    with username/password (socks5h://): the greeting, the authentication
    and the CONNECT reply read under every fault, then the exchange inside
    the tunnel. Exit 12 is the proxy's (a write to it failed mid-way)."""
    name = "fetch-http-socks5h"
    statuses = Fetch.statuses | {12}

    def __init__(self):
        super().__init__(False, False, False)
        self.name = FetchSocks.name

    def setup(self):
        from test_fetch_socks import Microsocks
        super().setup()
        self.socks = Microsocks(auth=("torture", "pw"))
        self.extra = ["-x", f"socks5h://torture:pw@127.0.0.1:{self.socks.port}"]

    def teardown(self):
        self.socks.stop()
        super().teardown()


class FetchSocks4(Fetch):
    """fetch of BODY through a scripted SOCKS4a proxy that relays to the
    origin (Socks4Server of test_fetch_socks4.py), with a user id: the
    CONNECT request and the 8-byte reply under every fault, then the
    exchange inside the tunnel. Exit 12 is the proxy's."""
    name = "fetch-http-socks4a"
    statuses = Fetch.statuses | {12}

    def __init__(self):
        super().__init__(False, False, False)
        self.name = FetchSocks4.name

    def setup(self):
        from test_fetch_socks4 import Socks4Server, relaying
        super().setup()
        self.socks = Socks4Server(relaying)
        self.extra = ["-x", f"socks4a://torture@{self.socks.url}"]

    def teardown(self):
        self.socks.stop()
        super().teardown()


class ServeStart(Scenario):
    """serve start-up (2 workers, TCP+UDP, idle timer), one session, SIGTERM."""
    name = "serve-start"
    args = ["--workers", "2", "--udp", "--idle-timeout", "5"]
    env = {}

    def run(self, k):
        run = Run(k)
        with tempfile.TemporaryDirectory(prefix="torture-") as tmp:
            report = os.path.join(tmp, "report")
            srv = conftest.Server.__new__(conftest.Server)
            try:
                srv.__init__(self.args, env=fault_env(k, report, **self.env),
                             executable=SOCKIT)
            except AssertionError:
                # A failed write to stderr may lose the listening line
                # (logging is best effort): find the port in /proc then.
                port = srv.proc.poll() is None and listening_port(srv.proc.pid)
                if not port:
                    self.failed_start(run, srv, report)
                    return run
                srv.host, srv.port = "127.0.0.1", port
            self.exercise(run, srv)
            stop_server(run, srv, "serve")
            run.read_report(report)
        return run

    def failed_start(self, run, srv, report):
        """No listening line: the server must have exited cleanly, non-zero."""
        try:
            rc = srv.proc.wait(10)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
            srv.proc.wait()
            run.bad("server neither listened nor exited within 10 s")
            return
        srv.reader.join(5)
        check_stderr(run, rc, list(srv.lines), {1})
        if rc == 0:
            run.bad("exited 0 without a signal")
        run.read_report(report)

    def exercise(self, run, srv):
        why = serving(srv.addr, "chunk")
        if why:
            run.bad(f"serves no new client: {why}")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(1.0)
            for _ in range(3):
                u.sendto(b"udp", srv.addr)
                try:
                    if u.recvfrom(100)[0] == b"Hello, udp!":
                        break
                except socket.timeout:
                    continue
            else:
                run.bad("UDP answers no datagram")


class ServeLoad(ServeStart):
    """serve under load: counting starts at the first accepted connection."""
    name = "serve-load"
    args = ["--workers", "2", "--framing", "line", "--delay", "20",
            "--idle-timeout", "1"]
    env = {"SOCKIT_FAULT_ARM": "accept4"}
    clients = 4

    def exercise(self, run, srv):
        base = srv.fd_count()
        results = [None] * self.clients
        msgs = [b"m%d" % i for i in range(8)]

        def load(i):
            results[i] = session(srv.addr, "line", msgs)

        def idle():  # a client that says nothing until the idle timeout
            try:
                with socket.create_connection(srv.addr, timeout=5) as s:
                    while s.recv(100):
                        pass
            except OSError:
                pass

        threads = [threading.Thread(target=load, args=(i,)) for i in range(self.clients)]
        threads.append(threading.Thread(target=idle))
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        wrong = [r for r in results if r and not r.startswith(("closed", "refused"))]
        if wrong:
            run.bad(f"a load client got {wrong[0]}")
        broken = [r for r in results if r and not r.startswith("refused")]
        if len(broken) > 1:
            run.bad(f"one fault broke {len(broken)} sessions: {results}")
        why = serving(srv.addr, "line")
        if why:
            run.bad(f"serves no new client after the fault: {why}")
        deadline = time.monotonic() + 5
        while srv.fd_count() > base and time.monotonic() < deadline:
            time.sleep(0.05)
        if srv.fd_count() > base:
            run.bad(f"{srv.fd_count() - base} descriptor(s) above the baseline after load")


class ServeFull(ServeLoad):
    """serve under load beyond --max-conns (refusals), one worker, a small
    --max-line, UDP on the side; counting from the first accept."""
    name = "serve-load-full"
    args = ["--workers", "1", "--framing", "line", "--max-conns", "3",
            "--max-line", "64", "--udp"]


class Bench(Scenario):
    """bench against a fault-free server: request mode over TCP (line
    framing, pipelined, 2 threads), over UDP, or connect mode."""
    statuses = {1, 4}

    def __init__(self, name, args, want, serve_args):
        self.name, self.args, self.want, self.serve_args = name, args, want, serve_args

    @staticmethod
    def errors_counted(out):
        """bench reports a failed connection in its 'errors N' line."""
        m = re.search(rb"^  errors +([0-9]+)", out, re.M)
        return bool(m and int(m.group(1)) > 0)

    def setup(self):
        self.srv = start_plain_server(*self.serve_args)

    def teardown(self):
        self.srv.stop()

    def run(self, k):
        args = ["bench", f"127.0.0.1:{self.srv.port}", "-c", "4", "--threads", "2",
                "--timeout", "2"] + self.args
        run, rc, out = run_command(k, args, self.statuses, reported=self.errors_counted)
        if rc == 0 and self.want not in out:
            run.bad(f"exit 0 without {self.want!r}: {out[-200:]!r}")
        return run


class BenchTls(TlsServer, Bench):
    """bench --tls --connect --tls-resume: full and resumed handshakes."""
    statuses = {1, 4, 5}

    def __init__(self):
        super().__init__("bench-tls-connect", [], b"connects      30 of 30 sent", [])

    def setup(self):
        super().setup()
        self.args = ["--connect", "-n", "30", "--tls", "--cacert", self.ca, "--tls-resume"]


def scenarios():
    return [ClientTcp(), ClientUdp(),
            Fetch(False, False, False), Fetch(False, True, True),
            Fetch(True, False, True), Fetch(True, True, False), FetchResume(),
            FetchCompressed(), FetchParallel(), FetchH2(), FetchH2c(), FetchH2Parallel(),
            FetchH2Pool(), FetchH2Goaway(), FetchRate(), FetchH2Rate(), FetchSocks(),
            FetchSocks4(),
            ServeStart(), ServeLoad(), ServeFull(),
            Bench("bench", ["-n", "200", "--framing", "line", "-P", "2"],
                  b"replies       200 of 200 sent", ["--framing", "line"]),
            Bench("bench-udp", ["--udp", "-n", "200"], b"replies       200 of 200 sent",
                  ["--udp"]),
            Bench("bench-connect", ["--connect", "-n", "50"], b"connects      50 of 50 sent",
                  []),
            ClientTls(), BenchTls()]


def sample(n, cap, stride):
    """k = 1..cap, then every stride-th k up to n, and n itself."""
    ks = list(range(1, min(n, cap) + 1))
    ks += list(range(cap + stride, n + 1, stride))
    if n > cap and n not in ks:
        ks.append(n)
    return ks


def torture(sc, cap=None, stride=1, jobs=2, log=None, by_function=False):
    """Runs one scenario; returns (n, ks, fired, failing runs). With
    by_function, k counts the calls of one wrapped function at a time, for
    each function the scenario calls: every call of each is hit even when
    the calls of others (recv, in threads) vary in number between runs."""
    sc.setup()
    try:
        base = sc.run(0)
        n = base.calls
        if base.rc != 0:
            base.bad(f"the run without a fault exited {base.rc}")
        if base.problems:
            return n, [], 0, [base]
        if by_function:
            ks = [(k, f) for f, nf in sorted(base.by.items())
                  for k in (sample(nf, cap, stride) if cap else range(1, nf + 1))]
        else:
            ks = sample(n, cap, stride) if cap else list(range(1, n + 1))
        with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
            runs = list(ex.map(sc.run, ks))
        bad = [r for r in runs if r.problems]
        fired = sum(1 for r in runs if r.failed != "-")
        if log:
            log(f"{sc.name}: N={n}, ran {len(ks)} k, fault fired in {fired}, "
                f"{len(bad)} failing")
        return n, ks, fired, bad
    finally:
        sc.teardown()


def describe(name, r):
    k = f"k={r.k[0]} of {r.k[1]}" if isinstance(r.k, tuple) else f"k={r.k}"
    return f"{name} {k} ({r.failed}): " + "; ".join(r.problems)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--all", action="store_true", help="every k (default: a sample)")
    ap.add_argument("--cap", type=int, default=40)
    ap.add_argument("--stride", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--scenario", action="append", help="run only these")
    ap.add_argument("--by-function", action="store_true",
                    help="also count each wrapped function on its own")
    a = ap.parse_args()
    if not os.access(SOCKIT, os.X_OK):
        sys.exit(f"torture: {SOCKIT} is missing: make FAULT=1 SANITIZE=1")
    failures = 0
    for by in [False, True] if a.by_function else [False]:
        for sc in scenarios():
            if a.scenario and sc.name not in a.scenario:
                continue
            t = time.monotonic()
            n, ks, fired, bad = torture(sc, None if a.all else a.cap, a.stride, a.jobs,
                                        by_function=by)
            print(f"{sc.name}{' by function' if by else ''}: N={n} ran={len(ks)} "
                  f"fired={fired} failing={len(bad)} ({time.monotonic() - t:.1f} s)",
                  flush=True)
            for r in bad:
                print("  " + describe(sc.name, r), flush=True)
            failures += len(bad)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
