"""`sockit client HOST:PORT --tls [--cacert FILE] [--insecure] [--servername NAME] [--cert FILE
--key FILE]`: the greeting protocol inside TLS against `sockit serve --tls-*`, `openssl
s_server` and a Python TLS server (which records the SNI); verification failures named in
one line (self-signed, unknown issuer, expired, wrong host, wrong IP address); client
certificates; bad files and option misuse; a server that stalls in the handshake.

Certificates are made at test time (tls_pki.py). Every wait is on a log line, a byte or the
client's exit, with a deadline."""
import re
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import run_sockit, wait_until
from nginx_util import free_port
from tls_pki import OPENSSL, pki  # noqa: F401 (pki: the fixture)


def client(port, *args, host="127.0.0.1", input=None, timeout=30):
    return run_sockit("client", f"{host}:{port}", *args, input=input, timeout=timeout)


def one_line_error(out, status, pattern):
    err = out.stderr.decode()
    assert out.returncode == status, err
    assert len(err.splitlines()) == 1 and err.startswith("sockit: client: "), err
    assert re.search(pattern, err), err
    return err


@pytest.fixture(scope="module")
def selfsigned(tmp_path_factory):
    d = tmp_path_factory.mktemp("selfsigned")
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-keyout",
                    str(d / "key.pem"), "-out", str(d / "cert.pem"), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return ["--tls-cert", str(d / "cert.pem"), "--tls-key", str(d / "key.pem")]


# ---- the protocol inside TLS ----

@pytest.mark.parametrize("framing,kind", [("chunk", "ecdsa"), ("line", "rsa")])
def test_greeting_round_trip_and_close_notify(serve, pki, framing, kind):
    srv = serve(*pki.args(kind), "--framing", framing)
    out = client(srv.port, "--tls", "--cacert", pki.path("root.pem"), "--framing", framing,
                 "Michael", "Tracy")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"Welcome!\nHello, Michael!\nHello, Tracy!\n"
    assert out.stderr == b""
    # "exit", then our close_notify: a clean end on the server's side too.
    srv.wait_log(r"open 127\.0\.0\.1:\d+ tls=TLSv1\.3 cipher=")
    srv.wait_log(r"close 127\.0\.0\.1:\d+ reason=exit messages=2 bytes_in=\d+ bytes_out=\d+ duration_ms=\d+ tls_end=close_notify$")


def test_messages_from_stdin_by_host_name(serve, pki):
    srv = serve(*pki.args(), "--framing", "line")
    out = client(srv.port, "--tls", "--cacert", pki.path("root.pem"), "--framing", "line",
                 host="localhost", input=b"one\ntwo\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"Welcome!\nHello, one!\nHello, two!\n"


def test_framing_mismatch_inside_tls_is_reported(serve, pki):
    srv = serve(*pki.args(), "--framing", "line")
    out = client(srv.port, "--tls", "--cacert", pki.path("root.pem"), "M")
    one_line_error(out, 7, r"--framing line")


# ---- verification ----

def test_self_signed_without_cacert_fails(serve, selfsigned):
    srv = serve(*selfsigned)
    out = client(srv.port, "--tls", "M")
    one_line_error(out, 1, rf"^sockit: client: 127\.0\.0\.1:{srv.port}: certificate verification "
                   r"failed: self.signed certificate$")
    assert out.stdout == b""


def test_insecure_passes_with_a_warning(serve, selfsigned):
    srv = serve(*selfsigned)
    out = client(srv.port, "--tls", "--insecure", "M")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"Welcome!\nHello, M!\n"
    assert re.fullmatch(rb"sockit: client: warning: --insecure: [^\n]+\n", out.stderr), out.stderr


@pytest.mark.parametrize("cert,args,host,why", [
    ("ecdsa", [], "127.0.0.1", "unable to get local issuer certificate"),  # not in the store
    ("expired", ["--cacert", "root.pem"], "127.0.0.1", "certificate has expired"),
    ("ecdsa", ["--cacert", "root.pem", "--servername", "other.example"], "127.0.0.1",
     "host name mismatch"),
    ("nameonly", ["--cacert", "root.pem"], "127.0.0.1", "IP address mismatch"),
    ("ecdsa", ["--cacert", "clientca.pem"], "localhost", "unable to get local issuer"),
])
def test_verification_failure_names_the_cause(serve, pki, cert, args, host, why):
    srv = serve(*pki.args(cert))
    args = [pki.path(a) if a.endswith(".pem") else a for a in args]
    out = client(srv.port, "--tls", *args, "M", host=host)
    one_line_error(out, 1, f"{host}:{srv.port}: certificate verification failed: {why}")
    srv.wait_log(r"reason=tls-error")


def test_servername_is_verified_instead_of_the_address(serve, pki):
    srv = serve(*pki.args("nameonly"))  # DNS:localhost, no IP address
    out = client(srv.port, "--tls", "--cacert", pki.path("root.pem"), "--servername",
                 "localhost", "M")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"Welcome!\nHello, M!\n"


class TLSGreeter:
    """A Python TLS greeting server for one session: records the SNI it was sent."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.sni = []
        ctx.sni_callback = lambda sock, name, c: self.sni.append(name)
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(4)
        self.port = self.ls.getsockname()[1]
        self.got = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.ls.settimeout(20)
        raw, _ = self.ls.accept()
        with self.ctx.wrap_socket(raw, server_side=True) as s:
            s.settimeout(20)
            s.sendall(b"Welcome!")
            while b"exit" not in self.got:
                chunk = s.recv(100)
                if not chunk:
                    break
                self.got += chunk
                if chunk != b"exit":
                    s.sendall(b"Hello, " + chunk + b"!")

    def close(self):
        self.thread.join(20)
        self.ls.close()


@pytest.mark.parametrize("host,args,sni", [
    ("localhost", [], "localhost"),
    ("127.0.0.1", [], None),  # an IP address: no SNI (RFC 6066)
    ("127.0.0.1", ["--servername", "localhost"], "localhost"),
])
def test_sni(pki, host, args, sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.path("ecdsa.chain"), pki.path("ecdsa.key"))
    g = TLSGreeter(ctx)
    try:
        out = client(g.port, "--tls", "--cacert", pki.path("root.pem"), *args, "M", host=host)
    finally:
        g.close()
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"Welcome!\nHello, M!\n"
    assert g.sni == [sni]
    assert g.got == b"Mexit"


def test_against_openssl_s_server(pki):
    port = free_port()
    p = subprocess.Popen([OPENSSL, "s_server", "-accept", f"127.0.0.1:{port}", "-naccept", "1",
                          "-cert", pki.path("rsa.pem"), "-cert_chain", pki.path("int.pem"),
                          "-key", pki.path("rsa.key")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        seen = []
        wait_until(lambda: seen.append(p.stdout.readline()) or b"ACCEPT" in seen[-1], 20,
                   "s_server accepting")
        # s_server sends what its standard input gives once a client is there.
        p.stdin.write(b"Welcome!")
        p.stdin.flush()
        out = client(port, "--tls", "--cacert", pki.path("root.pem"), host="localhost",
                     input=b"")
        assert out.returncode == 0, out.stderr
        assert out.stdout == b"Welcome!\n"
        rest = p.communicate(timeout=20)[0]
        assert b"exit" in rest  # what the client sent, as s_server printed it
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# ---- client certificates ----

@pytest.mark.parametrize("cert,ok", [("client", True), ("stranger", False), (None, False)])
def test_client_certificates(serve, pki, cert, ok):
    srv = serve(*pki.args(), "--tls-client-ca", pki.path("clientca.pem"))
    mine = ["--cert", pki.path(cert + ".pem"), "--key", pki.path(cert + ".key")] if cert else []
    out = client(srv.port, "--tls", "--cacert", pki.path("root.pem"), *mine, "M")
    if ok:
        assert out.returncode == 0, out.stderr
        assert out.stdout == b"Welcome!\nHello, M!\n"
        return
    # TLS 1.3: our side of the handshake ends first; the server's alert comes next.
    one_line_error(out, 1, r"alert")
    srv.wait_log(r"reason=tls-error")


def test_key_in_the_cert_file(serve, pki, tmp_path):
    both = tmp_path / "both.pem"
    both.write_bytes(open(pki.path("client.pem"), "rb").read() +
                     open(pki.path("client.key"), "rb").read())
    srv = serve(*pki.args(), "--tls-client-ca", pki.path("clientca.pem"))
    out = client(srv.port, "--tls", "--cacert", pki.path("root.pem"), "--cert", str(both), "M")
    assert out.returncode == 0, out.stderr


# ---- bad files and options ----

@pytest.mark.parametrize("case,status,message", [
    ("mismatch", 1, r"the key \S+stranger\.key does not match the certificate \S+client\.pem"),
    ("no-cert", 1, r"cannot read \S+nope\.pem: No such file or directory"),
    ("no-ca", 1, r"cannot read \S+nope\.pem: No such file or directory"),
    ("key-only", 2, r"--key needs --cert"),
    ("no-tls", 2, r"--cacert needs --tls"),
    ("both", 2, r"--cacert and --insecure exclude each other"),
    ("udp", 2, r"--tls does not apply to --udp"),
])
def test_bad_files_and_options(pki, tmp_path, case, status, message):
    nope = str(tmp_path / "nope.pem")
    ca = pki.path("root.pem")
    args = {
        "mismatch": ["--tls", "--cert", pki.path("client.pem"), "--key", pki.path("stranger.key")],
        "no-cert": ["--tls", "--cert", nope],
        "no-ca": ["--tls", "--cacert", nope],
        "key-only": ["--tls", "--key", pki.path("client.key")],
        "no-tls": ["--cacert", ca],
        "both": ["--tls", "--cacert", ca, "--insecure"],
        "udp": ["--tls", "--udp"],
    }[case]
    # A closed port: every one of these fails before (or at) the connect.
    port = free_port()
    out = client(port, *args, "M")
    one_line_error(out, status, message)


def test_bad_ca_file_is_named_at_the_handshake(serve, pki, tmp_path):
    """The CA file is parsed while the ClientHello is out (see tls_openssl.c)."""
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    srv = serve(*pki.args())
    out = client(srv.port, "--tls", "--cacert", str(bad), "M")
    one_line_error(out, 1, rf"cannot load CA file {re.escape(str(bad))}")


# ---- deadlines ----

def test_stalled_handshake_is_bound_by_timeout():
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)  # the kernel completes TCP; nobody answers the ClientHello
    try:
        t0 = time.monotonic()
        out = client(ls.getsockname()[1], "--tls", "--timeout", "0.5", "M")
        elapsed = time.monotonic() - t0
    finally:
        ls.close()
    one_line_error(out, 9, rf"TLS handshake with 127\.0\.0\.1:\d+: ")
    assert elapsed < 5, elapsed

