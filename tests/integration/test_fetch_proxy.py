"""sockit fetch through HTTP proxies (issue 11): a real tinyproxy that this
module starts with its own config on a free port (plain http in absolute
form, https through CONNECT, Basic authentication), the real nginx of
nginx_util.py behind it, the environment variables with curl's meaning,
and hostile proxies scripted with hostile_http.HostileServer (a CONNECT
answered with garbage, a huge head, 407, bytes before TLS, a cut reply).
Every failure is one line with its own exit status; nothing is saved."""
import base64
import json
import os
import signal
import ssl
import subprocess
import threading
import time

import pytest

from conftest import SOCKIT, signal_when
from hostile_http import HostileServer, Mark, Reset, Sleep
from nginx_util import Nginx, free_port, make_certs
from peer_proc import stop_process

TINYPROXY = "/usr/bin/tinyproxy"  # Debian's tinyproxy (scripts/deps.sh test)
EXIT_RESOLVE, EXIT_CONNECT, EXIT_TLS, EXIT_HTTP, EXIT_TIMEOUT, EXIT_PROXY = 3, 4, 5, 6, 9, 12
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
              "ALL_PROXY", "no_proxy", "NO_PROXY")

class Tinyproxy:
    """tinyproxy in the foreground (-d), its log lines collected from its
    output; ready once it says it accepts connections; stopped by PID."""

    def __init__(self, d, auth=None, timeout=10.0):
        os.makedirs(d, exist_ok=True)
        self.port = free_port()
        conf = os.path.join(d, "tinyproxy.conf")
        with open(conf, "w") as f:
            f.write(f"Port {self.port}\nListen 127.0.0.1\nTimeout 30\nLogLevel Info\n"
                    f"MaxClients 50\nAllow 127.0.0.1\n")
            if auth:
                f.write(f"BasicAuth {auth[0]} {auth[1]}\n")
        self.proc = subprocess.Popen([TINYPROXY, "-d", "-c", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.lines = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            self.wait_log("Accepting connections", timeout)
        except AssertionError:
            self.stop()
            raise

    def _read(self):
        for raw in self.proc.stdout:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_log(self, text, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(text in line for line in self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise AssertionError(f"tinyproxy: no {text!r}; exit={self.proc.poll()} "
                                         f"log={self.lines[-10:]}")
                self.cond.wait(min(left, 0.1))

    def requests(self):
        with self.cond:
            return [line.split(": ", 1)[1] for line in self.lines if "]: Request (" in line]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout=10.0):
        stop_process(self.proc, signal.SIGTERM, timeout)
        self.reader.join(5)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def ng(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("nginx"))
    certs = make_certs(os.path.join(d, "certs"))
    srv = Nginx(d, certs)
    srv.body = os.urandom(5000)
    srv.put("small.bin", srv.body)
    srv.other_ca = make_certs(os.path.join(d, "other"))["ca"]
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def tp(tmp_path_factory):
    p = Tinyproxy(str(tmp_path_factory.mktemp("tinyproxy")))
    yield p
    p.stop()


@pytest.fixture(scope="module")
def tp_auth(tmp_path_factory):
    p = Tinyproxy(str(tmp_path_factory.mktemp("tinyproxy-auth")), auth=("alice", "s3cr3t"))
    yield p
    p.stop()


@pytest.fixture(scope="module")
def tls_origin(tmp_path_factory):
    """A TLS origin that records every request head (the credentials check)."""
    certs = make_certs(str(tmp_path_factory.mktemp("origin-certs")))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs["cert"], certs["key"])
    srv = HostileServer(tls=ctx)
    srv.route("/who", lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    srv.ca = certs["ca"]
    yield srv
    srv.stop()


@pytest.fixture
def hostile():
    started = []

    def make():
        s = HostileServer()
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
    env.update(extra)
    return env


def fetch(*args, env=None, timeout=60):
    return subprocess.run([SOCKIT, "fetch", "-s"] + list(args), capture_output=True,
                          env=env if env is not None else clean_env(), timeout=timeout)


def assert_clean(r):
    assert r.returncode >= 0, f"killed by signal {-r.returncode}"
    assert b"Sanitizer" not in r.stderr and b"runtime error" not in r.stderr, r.stderr.decode()


def ok(r, out, want):
    assert_clean(r)
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == want


def failed(r, code, *texts):
    """One line on stderr, the exit status, every text in the line."""
    assert_clean(r)
    err = r.stderr.decode()
    assert r.returncode == code, err
    assert err.count("\n") == 1 and err.startswith("sockit: fetch: "), err
    for t in texts:
        assert t in err, err
    return err


def dead_proxy():
    """A proxy URL nobody listens on: a request that goes to it fails."""
    return f"http://127.0.0.1:{free_port()}"


def answering_proxy(hostile, url):
    """A scripted proxy that answers url itself with the body "proxy"."""
    px = hostile()
    px.route(url, lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nproxy")
    return px


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ---- a real proxy: tinyproxy ----

def test_http_through_proxy_option(ng, tp, tmp_path):
    out = tmp_path / "o"
    url = ng.url("/small.bin")
    r = fetch("--proxy", tp.url, url, "-o", str(out))
    ok(r, out, ng.body)
    tp.wait_log(f"GET {url} HTTP/1.1")  # the absolute form, to the proxy


def test_http_through_short_option_without_scheme(ng, tp, tmp_path):
    out = tmp_path / "o"
    r = fetch("-x", f"127.0.0.1:{tp.port}", ng.url("/small.bin", host="localhost"), "-o",
              str(out))
    ok(r, out, ng.body)
    tp.wait_log(f"GET http://localhost:{ng.http}/small.bin HTTP/1.1")


def test_http_through_http_proxy_env(ng, tp, tmp_path):
    out = tmp_path / "o"
    url = ng.url("/small.bin") + "?env"
    r = fetch(url, "-o", str(out), env=clean_env(http_proxy=tp.url, https_proxy=dead_proxy()))
    ok(r, out, ng.body)
    tp.wait_log(f"GET {url} HTTP/1.1")


def test_https_through_connect_verifies_the_origin(ng, tp, tmp_path):
    out = tmp_path / "o"
    url = ng.url("/small.bin", tls=True, host="localhost")
    r = fetch("-x", tp.url, url, "-o", str(out), "--cacert", ng.certs["ca"], "-w",
              "%{http_connect} %{http_code} %{remote_port} %{ssl_verify_result}")
    ok(r, out, ng.body)
    # -w: the proxy's reply to CONNECT, the origin's status; connected to the proxy
    assert r.stdout == f"200 200 {tp.port} 0".encode()
    tp.wait_log(f"CONNECT localhost:{ng.https} HTTP/1.1")
    r = fetch("-x", tp.url, ng.url("/small.bin"), "-o", str(out), "-w", "%{http_connect}")
    ok(r, out, ng.body)
    assert r.stdout == b"000", "plain http through a proxy: no CONNECT"


@pytest.mark.parametrize("var", ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"])
def test_https_through_proxy_env(ng, tp, tmp_path, var):
    out = tmp_path / "o"
    r = fetch(ng.url("/small.bin", tls=True), "-o", str(out), "--cacert", ng.certs["ca"],
              env=clean_env(**{var: tp.url, "http_proxy": dead_proxy()}))
    ok(r, out, ng.body)
    tp.wait_log(f"CONNECT 127.0.0.1:{ng.https} HTTP/1.1")


def test_https_through_proxy_with_the_wrong_ca_fails_verification(ng, tp, tmp_path):
    out = tmp_path / "o"
    r = fetch("-x", tp.url, ng.url("/small.bin", tls=True), "-o", str(out), "--cacert",
              ng.other_ca)
    failed(r, EXIT_TLS, "certificate")
    assert not out.exists()


def test_https_through_proxy_checks_the_origins_name(ng, tp, tmp_path):
    # The server on ng.wrong has a certificate for wrong.example only.
    out = tmp_path / "o"
    r = fetch("-x", tp.url, f"https://127.0.0.1:{ng.wrong}/small.bin", "-o", str(out),
              "--cacert", ng.certs["ca"])
    failed(r, EXIT_TLS)
    assert not out.exists()


def test_redirect_from_http_to_https_switches_to_the_https_proxy(ng, tp, tmp_path):
    out = tmp_path / "o"
    url = ng.url("/redir/to-https")
    r = fetch(url, "-o", str(out), "--cacert", ng.certs["ca"],
              env=clean_env(http_proxy=tp.url, https_proxy=tp.url + "/"))
    ok(r, out, ng.body)
    tp.wait_log(f"GET {url} HTTP/1.1")
    tp.wait_log(f"CONNECT localhost:{ng.https} HTTP/1.1")


def test_redirect_to_https_without_an_https_proxy_goes_direct(ng, tmp_path, hostile):
    # The http hop through a recording proxy, the https hop straight to nginx.
    px = hostile()
    target = ng.url("/small.bin", tls=True, host="localhost")
    px.route("http://origin.test/r", lambda req: (
        b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n" % target.encode()))
    out = tmp_path / "o"
    r = fetch("http://origin.test/r", "-o", str(out), "--cacert", ng.certs["ca"],
              env=clean_env(http_proxy=f"127.0.0.1:{px.port}"))
    ok(r, out, ng.body)
    assert [q.method for q in px.requests] == ["GET"]


def test_proxy_auth_good_credentials(ng, tp_auth, tmp_path):
    out = tmp_path / "o"
    for url in (ng.url("/small.bin"), ng.url("/small.bin", tls=True)):
        # the password percent-encoded in the URL: s3cr%33t is s3cr3t
        r = fetch("-x", f"http://alice:s3cr%33t@127.0.0.1:{tp_auth.port}", url, "-o", str(out),
                  "--cacert", ng.certs["ca"])
        ok(r, out, ng.body)
        out.unlink()


def test_proxy_auth_missing_is_a_proxy_error(ng, tp_auth, tmp_path):
    out = tmp_path / "o"
    for url in (ng.url("/small.bin"), ng.url("/small.bin", tls=True)):
        r = fetch("-x", tp_auth.url, url, "-o", str(out), "--cacert", ng.certs["ca"])
        failed(r, EXIT_PROXY, f"proxy 127.0.0.1:{tp_auth.port} requires authentication (407)")
        assert not out.exists()


def test_proxy_auth_wrong_credentials(ng, tp_auth, tmp_path):
    # tinyproxy answers wrong credentials with 401, not 407: through a
    # tunnel that is a refused CONNECT; for plain http it reads as the
    # origin's 401 (nothing tells them apart).
    out = tmp_path / "o"
    bad = f"http://alice:wrong@127.0.0.1:{tp_auth.port}"
    r = fetch("-x", bad, ng.url("/small.bin", tls=True), "-o", str(out), "--cacert",
              ng.certs["ca"])
    failed(r, EXIT_PROXY, f"proxy 127.0.0.1:{tp_auth.port} refused CONNECT: 401 Unauthorized")
    r = fetch("-x", bad, ng.url("/small.bin"), "-o", str(out))
    failed(r, EXIT_HTTP, "HTTP 401")
    assert not out.exists()


def test_proxy_credentials_never_reach_the_origin_through_a_tunnel(tp_auth, tls_origin,
                                                                    tmp_path):
    out = tmp_path / "o"
    r = fetch("-x", f"alice:s3cr3t@127.0.0.1:{tp_auth.port}", tls_origin.url("/who"), "-o",
              str(out), "--cacert", tls_origin.ca, "-H", "X-Test: 1")
    ok(r, out, b"ok")
    req = tls_origin.requests[-1]
    assert req.headers.get("x-test") == "1"
    assert "proxy-authorization" not in req.headers, req.raw
    assert b"s3cr3t" not in req.raw and base64.b64encode(b"alice:s3cr3t") not in req.raw


def test_proxy_authorization_header_goes_on_the_connect_not_to_the_origin(tp_auth, tls_origin,
                                                                         tmp_path):
    out = tmp_path / "o"
    r = fetch("-x", tp_auth.url, "-H", "Proxy-Authorization: " + basic("alice", "s3cr3t"),
              tls_origin.url("/who"), "-o", str(out), "--cacert", tls_origin.ca)
    ok(r, out, b"ok")
    req = tls_origin.requests[-1]
    assert "proxy-authorization" not in req.headers, req.raw


# ---- what is sent to a proxy (a recording one) ----

def test_plain_request_in_absolute_form_with_decoded_credentials(hostile, tmp_path):
    px = hostile()
    px.route("http://origin.test:8080/a", lambda req:
             b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    out = tmp_path / "o"
    r = fetch("-x", f"http://al%20ice:p%40ss%3Aw@127.0.0.1:{px.port}",
              "http://origin.test:8080/a", "-o", str(out))
    ok(r, out, b"abc")
    (req,) = px.requests
    assert req.method == "GET" and req.path == "http://origin.test:8080/a"
    assert req.headers["host"] == "origin.test:8080"
    assert req.headers["proxy-authorization"] == basic("al ice", "p@ss:w")


def test_credentials_stay_with_the_proxy_after_a_redirect_that_bypasses_it(hostile, tmp_path):
    origin = hostile()
    origin.route("/b", lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb")
    px = hostile()
    px.route("http://origin.test/a", lambda req: b"HTTP/1.1 302 Found\r\nLocation: %s\r\n"
             b"Content-Length: 0\r\n\r\n" % origin.url("/b").encode())
    out = tmp_path / "o"
    r = fetch("-x", f"u:secret@127.0.0.1:{px.port}", "--noproxy", f"127.0.0.1:{origin.port}",
              "http://origin.test/a", "-o", str(out))
    ok(r, out, b"b")
    assert px.requests[0].headers["proxy-authorization"] == basic("u", "secret")
    (req,) = origin.requests
    assert "proxy-authorization" not in req.headers and b"secret" not in req.raw


def test_a_proxy_authorization_header_replaces_the_proxy_urls_credentials(hostile, tmp_path):
    px = hostile()
    px.route("origin.test:443", lambda req: b"HTTP/1.1 403 Forbidden\r\n\r\n")
    px.route("http://origin.test/p", lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    for url in ("https://origin.test/", "http://origin.test/p"):
        fetch("-x", f"u:pw@127.0.0.1:{px.port}", "-H", "Proxy-Authorization: Basic aGVhZGVy",
              url, "-o", str(tmp_path / "o"))
    connect, get = px.requests
    assert connect.headers["proxy-authorization"] == "Basic aGVhZGVy"
    assert get.headers["proxy-authorization"] == "Basic aGVhZGVy"  # once: -H replaces ours
    assert get.raw.lower().count(b"proxy-authorization") == 1


def test_connect_request_names_host_and_port(hostile, tmp_path):
    px = hostile()
    px.route("origin.test:8443", lambda req: b"HTTP/1.1 403 Forbidden\r\n\r\n")
    r = fetch("-x", f"u:pw@127.0.0.1:{px.port}", "https://origin.test:8443/x", "-o",
              str(tmp_path / "o"))
    failed(r, EXIT_PROXY, f"proxy 127.0.0.1:{px.port} refused CONNECT: 403 Forbidden")
    r = fetch("-x", f"127.0.0.1:{px.port}", "https://origin.test:8443/x", "-o",
              str(tmp_path / "o"), "-w", "%{http_connect} %{json}")
    assert r.returncode == EXIT_PROXY, r.stderr
    text, js = r.stdout.decode().split(" ", 1)
    assert text == "403" and json.loads(js)["http_connect"] == 403, "-w: the refused CONNECT's"
    req = px.requests[0]
    assert (req.method, req.path, req.version) == ("CONNECT", "origin.test:8443", "HTTP/1.1")
    assert req.headers["host"] == "origin.test:8443"
    assert req.headers["proxy-authorization"] == basic("u", "pw")


# ---- no_proxy, --noproxy and the variables' precedence ----

@pytest.mark.parametrize("host,lst", [
    ("127.0.0.1", "127.0.0.1"),
    ("127.0.0.1", "example.com, 127.0.0.1"),
    ("localhost", "localhost"),
    ("localhost", ".LOCALHOST"),
    ("localhost", "*"),
    ("::1", "::1"),
    ("::1", "[::1]"),
    ("127.0.0.1", "127.0.0.1:{port}"),
])
@pytest.mark.parametrize("how", ["env", "NO_PROXY", "option"])
def test_noproxy_bypasses_the_proxy(ng, tmp_path, host, lst, how):
    out = tmp_path / "o"
    lst = lst.format(port=ng.http)
    env = clean_env(http_proxy=dead_proxy())
    args = []
    if how == "option":
        args = ["--noproxy", lst]
        env["no_proxy"] = "nothing.example"  # overridden
    else:
        env["no_proxy" if how == "env" else how] = lst
    r = fetch(*args, ng.url("/small.bin", host=host), "-o", str(out), env=env)
    ok(r, out, ng.body)


@pytest.mark.parametrize("lst", ["127.0.0.1:1", "0.0.1", "example.com", "127.0.0.2",
                                 "localhost:{port}"])
def test_noproxy_non_matches_go_through_the_proxy(ng, tmp_path, hostile, lst):
    url, px = ng.url("/small.bin"), answering_proxy(hostile, ng.url("/small.bin"))
    out = tmp_path / "o"
    r = fetch("--noproxy", lst.format(port=ng.http), url, "-o", str(out),
              env=clean_env(http_proxy=f"127.0.0.1:{px.port}"))
    ok(r, out, b"proxy")


def test_noproxy_option_overrides_the_environment(ng, tmp_path, hostile):
    url, px = ng.url("/small.bin"), answering_proxy(hostile, ng.url("/small.bin"))
    out = tmp_path / "o"
    r = fetch("--noproxy", "", url, "-o", str(out),
              env=clean_env(http_proxy=f"127.0.0.1:{px.port}", no_proxy="*"))
    ok(r, out, b"proxy")


def test_no_proxy_applies_to_the_proxy_option_too(ng, tmp_path):
    # as in curl: the variable holds for -x unless --noproxy replaces it
    out = tmp_path / "o"
    r = fetch("-x", dead_proxy(), ng.url("/small.bin"), "-o", str(out),
              env=clean_env(no_proxy="127.0.0.1"))
    ok(r, out, ng.body)


def test_uppercase_http_proxy_is_ignored(ng, tmp_path):
    out = tmp_path / "o"
    r = fetch(ng.url("/small.bin"), "-o", str(out), env=clean_env(HTTP_PROXY=dead_proxy()))
    ok(r, out, ng.body)


def test_http_proxy_is_not_used_for_https(ng, tmp_path):
    out = tmp_path / "o"
    r = fetch(ng.url("/small.bin", tls=True), "-o", str(out), "--cacert", ng.certs["ca"],
              env=clean_env(http_proxy=dead_proxy()))
    ok(r, out, ng.body)


def test_all_proxy_is_the_fallback(ng, tmp_path, hostile):
    url, px = ng.url("/small.bin"), answering_proxy(hostile, ng.url("/small.bin"))
    out = tmp_path / "o"
    r = fetch(url, "-o", str(out), env=clean_env(all_proxy=f"127.0.0.1:{px.port}"))
    ok(r, out, b"proxy")
    out.unlink()
    r = fetch(url, "-o", str(out), env=clean_env(all_proxy=dead_proxy(),
                                                  http_proxy=f"127.0.0.1:{px.port}"))
    ok(r, out, b"proxy")


def test_proxy_option_beats_the_environment(ng, tmp_path, hostile):
    url, px = ng.url("/small.bin"), answering_proxy(hostile, ng.url("/small.bin"))
    out = tmp_path / "o"
    r = fetch("-x", f"127.0.0.1:{px.port}", url, "-o", str(out),
              env=clean_env(http_proxy=dead_proxy()))
    ok(r, out, b"proxy")
    out.unlink()
    # --proxy "": none at all, whatever the environment says
    r = fetch("--proxy", "", url, "-o", str(out),
              env=clean_env(http_proxy=dead_proxy(), all_proxy=dead_proxy()))
    ok(r, out, ng.body)


@pytest.mark.parametrize("args,env,text", [
    (["-x", "socks6://127.0.0.1:1080"], {}, "--proxy: unsupported proxy scheme"),
    (["-x", "https://127.0.0.1:3128"], {}, "--proxy: unsupported proxy scheme"),
    (["-x", "socks5x://127.0.0.1:3128"], {}, "--proxy: unsupported proxy scheme"),
    ([], {"http_proxy": "socks4ah://127.0.0.1:1"}, "http_proxy: unsupported proxy scheme"),
    ([], {"HTTPS_PROXY": "ftp://127.0.0.1:1"}, "HTTPS_PROXY: unsupported proxy scheme"),
])
def test_unsupported_proxy_scheme_is_a_usage_error(args, env, text, tmp_path):
    r = fetch(*args, "http://127.0.0.1:1/x", "-o", str(tmp_path / "o"), env=clean_env(**env))
    failed(r, 2, text)


@pytest.mark.parametrize("spec", ["http://", "http://u:p@", "127.0.0.1:99999",
                                  "http://127.0.0.1:3128/path", "http://%zz@127.0.0.1:1"])
def test_invalid_proxy_url_is_a_usage_error(spec, tmp_path):
    r = fetch("-x", spec, "http://127.0.0.1:1/x", "-o", str(tmp_path / "o"))
    failed(r, 2, "proxy")


# ---- proxies that fail or lie ----

def test_proxy_at_an_ipv6_address(tmp_path):
    px = HostileServer(host="::1")
    px.route("http://origin.test/a", lambda req: b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
    px.route("origin.test:443", lambda req: b"HTTP/1.1 403 Forbidden\r\n\r\n")
    try:
        out = tmp_path / "o"
        r = fetch("-x", f"http://[::1]:{px.port}", "http://origin.test/a", "-o", str(out))
        ok(r, out, b"a")
        r = fetch("-x", f"[::1]:{px.port}", "https://origin.test/a", "-o", str(tmp_path / "p"))
        failed(r, EXIT_PROXY, f"proxy [::1]:{px.port} refused CONNECT: 403 Forbidden")
    finally:
        px.stop()


def test_unreachable_proxy(tmp_path):
    port = free_port()
    for url in ("http://origin.test/x", "https://origin.test/x"):
        r = fetch("-x", f"127.0.0.1:{port}", url, "-o", str(tmp_path / "o"))
        failed(r, EXIT_CONNECT, f"cannot connect to proxy 127.0.0.1:{port}")


def test_unresolvable_proxy(tmp_path):
    r = fetch("-x", "proxy.invalid:3128", "http://origin.test/x", "-o", str(tmp_path / "o"))
    failed(r, EXIT_RESOLVE, "could not resolve proxy host proxy.invalid")


HOSTILE_CONNECT = {
    "garbage": (b"SSH-2.0-OpenSSH_9.2p1\r\n\r\n", "malformed reply to CONNECT"),
    "binary": (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" * 20,
               "malformed reply to CONNECT"),
    "huge-field": (b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n",
                   "reply to CONNECT too large (over 8 KiB)"),
    "many-fields": (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: 0123456789abcdef\r\n" * 400 + b"\r\n",
                    "reply to CONNECT too large (over 8 KiB)"),
    "407": (b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic "
            b"realm=\"x\"\r\nContent-Length: 0\r\n\r\n", "requires authentication (407)"),
    "502": (b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n",
            "refused CONNECT: 502 Bad Gateway"),
    "extra-bytes": (b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK\r\n",
                    "sent 17 bytes after its reply to CONNECT, before TLS"),
    "cut-head": (b"HTTP/1.1 200 Connection est", "closed the connection inside its reply"),
    "empty": (b"", "closed the connection without replying to CONNECT"),
    "interim": (b"HTTP/1.1 100 Continue\r\n\r\n", "refused CONNECT: 100 Continue"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CONNECT))
def test_hostile_connect_reply(hostile, tmp_path, case):
    reply, text = HOSTILE_CONNECT[case]
    px = hostile()
    px.route("origin.test:443", lambda req: reply)
    out = tmp_path / "o"
    r = fetch("-x", f"127.0.0.1:{px.port}", "https://origin.test/x", "-o", str(out),
              timeout=30)
    failed(r, EXIT_PROXY, f"proxy 127.0.0.1:{px.port}", text)
    assert not out.exists()
    assert os.listdir(tmp_path) == []


def test_407_to_a_plain_request_is_a_proxy_error(hostile, tmp_path):
    px = hostile()
    px.route("http://origin.test/x", lambda req: b"HTTP/1.1 407 Proxy Authentication "
             b"Required\r\nContent-Length: 4\r\n\r\nnope")
    out = tmp_path / "o"
    r = fetch("-x", f"u:bad@127.0.0.1:{px.port}", "http://origin.test/x", "-o", str(out))
    failed(r, EXIT_PROXY, f"proxy 127.0.0.1:{px.port} rejected the credentials (407)")
    assert not out.exists()


def test_silent_proxy_times_out_under_connect_timeout(hostile, tmp_path):
    px = hostile()
    px.route("origin.test:443", lambda req: [Sleep(30)])
    t0 = time.monotonic()
    r = fetch("-x", f"127.0.0.1:{px.port}", "--connect-timeout", "0.5",
              "https://origin.test/x", "-o", str(tmp_path / "o"))
    failed(r, EXIT_TIMEOUT, f"CONNECT to origin.test:443 through proxy 127.0.0.1:{px.port}",
           "(--connect-timeout)")
    assert time.monotonic() - t0 < 10


def test_proxy_resetting_the_connect(hostile, tmp_path):
    px = hostile()
    px.route("origin.test:443", lambda req: [b"HTTP/1.1 200", Reset()])
    r = fetch("-x", f"127.0.0.1:{px.port}", "https://origin.test/x", "-o", str(tmp_path / "o"))
    failed(r, EXIT_PROXY, f"proxy 127.0.0.1:{px.port} closed the connection")


def test_sigint_while_waiting_for_the_connect_reply(hostile, tmp_path):
    px = hostile()
    asked = threading.Event()
    px.route("origin.test:443", lambda req: [Mark(asked), Sleep(30)])
    rc, err = signal_when([SOCKIT, "fetch", "-s", "-x", f"127.0.0.1:{px.port}",
                           "https://origin.test/x", "-o", str(tmp_path / "o")], asked,
                          env=clean_env())
    assert rc == 1, err
    assert f"CONNECT to origin.test:443 through proxy 127.0.0.1:{px.port}: interrupted " \
        "(SIGINT)" in err, err
    assert os.listdir(tmp_path) == []


def test_tls_garbage_after_a_good_connect_reply_is_a_tls_error(hostile, tmp_path):
    # The 2xx alone first; what the "origin" then sends is not TLS.
    px = hostile()
    px.route("origin.test:443", lambda req: [b"HTTP/1.1 200 OK\r\n\r\n", Sleep(0.2),
                                             b"HTTP/1.1 200 OK\r\n\r\nplain"])
    r = fetch("-x", f"127.0.0.1:{px.port}", "https://origin.test/x", "-o", str(tmp_path / "o"),
              timeout=30)
    failed(r, EXIT_TLS)


def test_no_descriptor_leaks_across_proxied_urls(ng, tp, hostile, tmp_path):
    """With 20 descriptors, 45 URLs through tinyproxy and 60 through a
    hostile proxy, most of those failing in the tunnel: one leaked
    descriptor per URL would run out long before the end."""
    import resource

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (20, 20))

    def run(urls, *args):
        lst = tmp_path / "l"
        lst.write_text("\n".join(urls) + "\n")
        d = tmp_path / "d"
        d.mkdir(exist_ok=True)
        r = subprocess.run([SOCKIT, "fetch", "-s", "-i", str(lst), "--output-dir", str(d),
                            "--cacert", ng.certs["ca"], *args], capture_output=True,
                           timeout=120, preexec_fn=low_limit, env=clean_env())
        assert_clean(r)
        return r, r.stderr.decode().strip().splitlines()

    urls = []
    for i in range(15):
        ng.put(f"f{i}.bin", b"f")
        ng.put(f"t{i}.bin", b"t")
        # tinyproxy answers the CONNECT to a name that does not resolve itself: refused
        urls += [ng.url(f"/f{i}.bin"), ng.url(f"/t{i}.bin", tls=True),
                 f"https://origin{i}.invalid/x"]
    r, lines = run(urls, "-x", tp.url)
    assert r.returncode == EXIT_PROXY, lines[-3:]
    assert lines[-1] == "sockit: fetch: 30 succeeded, 15 failed", lines[-3:]
    px = hostile()
    urls = []
    for i in range(20):
        px.route(f"o{i}.test:443", lambda req: HOSTILE_CONNECT["extra-bytes"][0])
        px.route(f"o{i}.test:444", lambda req: HOSTILE_CONNECT["cut-head"][0])
        urls += [f"https://o{i}.test/x", f"https://o{i}.test:444/x", f"http://o{i}.test/x"]
    r, lines = run(urls, "-x", f"127.0.0.1:{px.port}")
    assert r.returncode == EXIT_PROXY, lines[-3:]
    assert lines[-1] == "sockit: fetch: 0 succeeded, 60 failed", lines[-3:]
    assert len(px.requests) == 60
