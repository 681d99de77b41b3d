"""`sockit serve --log-format json`: every line serve writes to stderr is one JSON object, its
"ts" (RFC 3339, UTC, milliseconds) first, then "event" and the event's fields, numbers as JSON
numbers; outside text (a TLS error) escaped; never translated. The text close line's new
fields (bytes_in, bytes_out, duration_ms) are checked here too."""
import json
import os
import re
import signal
import socket
import ssl
import subprocess

import pytest

from conftest import SOCKIT, recv_exact, recv_until, run_sockit
from test_i18n import env_with

TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
BUSY = b"Error: server busy, too many connections\n"
DELAY_MS = 150


def events(lines):
    """Every line as a JSON object, checked for its shape: "ts" first, then "event"."""
    out = []
    for line in lines:
        obj = json.loads(line)  # one object a line, nothing else on it
        assert isinstance(obj, dict), line
        keys = list(obj)
        assert keys[:2] == ["ts", "event"], line
        assert TS_RE.match(obj["ts"]), line
        out.append(obj)
    return out


def the(lines, event):
    found = [e for e in events(lines) if e["event"] == event]
    assert len(found) == 1, (event, lines)
    return found[0]


def json_server(serve, *args, **kw):
    return serve("--log-format", "json", *args, **kw)


def talk(srv):
    """A session: greeting, one message, exit. Returns the client's address."""
    with srv.connect() as s:
        me = "%s:%d" % s.getsockname()[:2]
        assert recv_exact(s, 8) == b"Welcome!"
        s.sendall(b"hi")
        assert recv_exact(s, 10) == b"Hello, hi!"
        s.sendall(b"exit")
        assert recv_until(s, b"never") == b""  # the server's FIN
    return me


def test_a_session_and_a_stop_in_json(serve):
    srv = json_server(serve, "--delay", str(DELAY_MS))
    me = talk(srv)
    srv.wait_log(r'"event":"close"')
    assert srv.stop() == 0
    listening = the(srv.lines, "listening")
    assert listening == {"ts": listening["ts"], "event": "listening",
                         "addr": f"{srv.host}:{srv.port}", "proto": "tcp", "framing": "chunk",
                         "tls": False}
    assert the(srv.lines, "open") == {"ts": the(srv.lines, "open")["ts"], "event": "open",
                                      "peer": me}
    close = the(srv.lines, "close")
    assert close["peer"] == me and close["reason"] == "exit" and close["messages"] == 1
    assert close["bytes_in"] == len(b"hi" + b"exit")
    assert close["bytes_out"] == len(b"Welcome!" + b"Hello, hi!")
    assert isinstance(close["duration_ms"], int) and close["duration_ms"] >= DELAY_MS
    assert "tls_end" not in close and "tls_error" not in close
    sig = the(srv.lines, "signal")
    assert (sig["signal"], sig["action"]) == ("SIGTERM", "stopping")
    summary = the(srv.lines, "summary")
    del summary["ts"]
    assert summary == {"event": "summary", "connections": 1, "refused": 0, "messages": 1,
                       "datagrams": 0, "bytes_in": 6, "bytes_out": 18}
    assert json.loads(srv.lines[-1])["event"] == "summary"


def test_text_close_line_has_bytes_and_duration(serve):
    srv = serve("--delay", str(DELAY_MS))
    me = talk(srv)
    srv.wait_log(rf"close {re.escape(me)} reason=exit messages=1 bytes_in=6 bytes_out=18 "
                 rf"duration_ms=\d+$")
    line = [l for l in srv.lines if " close " in l][0]
    assert int(line.rsplit("duration_ms=", 1)[1]) >= DELAY_MS, line


def test_refuse_and_the_udp_listening_line(serve):
    srv = json_server(serve, "--max-conns", "1", "--udp")
    with srv.connect() as a:
        assert recv_exact(a, 8) == b"Welcome!"
        with srv.connect() as b:
            peer = "%s:%d" % b.getsockname()[:2]
            assert recv_until(b, b"never") == BUSY
        srv.wait_log(r'"event":"refused"')
    refuse = the(srv.lines, "refused")
    assert (refuse["peer"], refuse["reason"], refuse["limit"]) == (peer, "max-conns", 1)
    srv.wait_log(r'"event":"listening".*"proto":"udp"')  # logged after the TCP one, maybe later
    udp = [e for e in events(srv.lines) if e["event"] == "listening" and e["proto"] == "udp"]
    assert udp and "framing" not in udp[0] and "tls" not in udp[0]


def test_proxy_error_and_proxied_open(serve):
    srv = json_server(serve, "--proxy-protocol", "--idle-timeout", "5s")
    with srv.connect() as s:
        bad = "%s:%d" % s.getsockname()[:2]
        s.sendall(b"nope\r\n")
        assert recv_until(s, b"never") == b""
    with srv.connect() as s:
        via = "%s:%d" % s.getsockname()[:2]
        s.sendall(b"PROXY TCP4 192.0.2.1 192.0.2.100 1111 80\r\n")
        assert recv_exact(s, 8) == b"Welcome!"
    srv.wait_log(r'"event":"close"')
    assert srv.stop() == 0
    err = the(srv.lines, "proxy_error")
    assert (err["peer"], err["reason"]) == (bad, "missing")
    opened = the(srv.lines, "open")
    assert (opened["peer"], opened["proxied_from"]) == ("192.0.2.1:1111", via)
    assert the(srv.lines, "close")["peer"] == "192.0.2.1:1111"
    assert the(srv.lines, "summary")["proxy_errors"] == 1


# ---- TLS ----

@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("jsoncert")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(d / "key.pem"),
                    "-out", str(d / "cert.pem"), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return d


def test_tls_fields_and_a_hostile_peer(serve, cert, tmp_path):
    key = tmp_path / "key.pem"
    key.write_bytes((cert / "key.pem").read_bytes())
    srv = json_server(serve, "--tls-cert", str(cert / "cert.pem"), "--tls-key", str(key))
    ctx = ssl.create_default_context(cafile=str(cert / "cert.pem"))
    with socket.create_connection(srv.addr, timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as s:
            me = "%s:%d" % s.getsockname()[:2]
            assert recv_exact(s, 8) == b"Welcome!"
            s.sendall(b"exit")
            assert recv_until(s, b"never") == b""  # close_notify
            version, cipher = s.version(), s.cipher()[0]
            s.unwrap()  # ours back
    # Not TLS at all, with quotes, control bytes and bytes that are not UTF-8.
    with srv.connect() as s:
        hostile = "%s:%d" % s.getsockname()[:2]
        s.sendall(b'\x16\x03\x01\x00\x05"\\\n\x01\xff\xfe' + b"\x00" * 20)
        try:
            s.recv(100)
        except ConnectionResetError:
            pass
    srv.wait_log(r'"event":"close".*"tls_error"')
    srv.wait_log(r'"event":"close".*"tls_end"')
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r'"event":"tls_reload"')
    key.write_text("not a key\n")
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r'"event":"tls_reload"', count=2)
    assert srv.stop() == 0
    evs = events(srv.lines)
    assert [e["tls"] for e in evs if e["event"] == "listening"] == [True]
    opened = [e for e in evs if e["event"] == "open"]
    assert len(opened) == 1 and opened[0]["peer"] == me
    assert (opened[0]["tls_version"], opened[0]["tls_cipher"]) == (version, cipher)
    closes = {e["peer"]: e for e in evs if e["event"] == "close"}
    assert closes[me]["tls_end"] == "close_notify" and closes[me]["reason"] == "exit"
    bad = closes[hostile]
    assert bad["reason"] == "tls-error" and bad["messages"] == 0 and "tls_end" not in bad
    assert isinstance(bad["tls_error"], str) and bad["tls_error"].startswith("TLS handshake: ")
    ok, failed = [e for e in evs if e["event"] == "tls_reload"]
    assert (ok["signal"], ok["ok"], ok["cert"]) == ("SIGHUP", True, str(cert / "cert.pem"))
    assert failed["ok"] is False and failed["error"] and "error" not in ok


# ---- errors at start, and the option itself ----

def test_errors_at_start_are_json_and_english(cert, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_sockit("serve", "--log-format", "json", "--listen", f"127.0.0.1:{port}")
        assert r.returncode == 1
        lines = r.stderr.decode().splitlines()
        assert len(lines) == 1, lines
        err = events(lines)[0]
        assert err["event"] == "error"
        assert err["message"] == f"cannot listen on 127.0.0.1:{port}: Address already in use"
        # The same in Chinese: the text line is translated, the JSON one is not.
        zh = dict(env_with(LANG="zh_CN.UTF-8"))
        r = subprocess.run([SOCKIT, "serve", "--listen", f"127.0.0.1:{port}"],
                           capture_output=True, timeout=30, env=zh)
        assert r.returncode == 1
        text = r.stderr.decode("utf-8")
        assert text.startswith("sockit: serve: ") and "cannot" not in text, text
        r = subprocess.run([SOCKIT, "serve", "--log-format", "json",
                            "--listen", f"127.0.0.1:{port}"], capture_output=True, timeout=30,
                           env=zh)
        assert r.returncode == 1
        assert events(r.stderr.decode().splitlines())[0]["message"] == err["message"]
    missing = tmp_path / 'no "such" file'
    r = run_sockit("serve", "--log-format", "json", "--listen", "127.0.0.1:0",
                   "--tls-cert", str(missing), "--tls-key", str(cert / "key.pem"))
    assert r.returncode == 1
    err = events(r.stderr.decode().splitlines())[0]
    assert err["event"] == "error"
    assert err["message"] == f"cannot read {missing}: No such file or directory"


def test_a_bad_log_format_is_a_usage_error():
    r = run_sockit("serve", "--log-format", "xml")
    assert r.returncode == 2
    assert r.stderr == b"sockit: serve: --log-format must be text or json: xml\n"


def test_quiet_keeps_serves_own_lines(serve):
    srv = json_server(serve, "--quiet")
    talk(srv)
    assert srv.stop() == 0
    assert [e["event"] for e in events(srv.lines)] == ["listening", "signal", "summary"]


def test_accept_paused_and_resumed(serve):
    # 40 fds leave room for ~30 sessions: more connections than that run accept out of fds.
    srv = serve(command=["bash", "-c", f"ulimit -n 40; exec {SOCKIT} serve --log-format json "
                         "--listen 127.0.0.1:0 --workers 1"])
    socks = []
    try:
        for _ in range(60):
            socks.append(socket.create_connection(srv.addr, timeout=3))
        srv.wait_log(r'"event":"accept_paused"')
        for s in socks[:40]:
            s.close()
        srv.wait_log(r'"event":"accept_resumed"')
    finally:
        for s in socks:
            s.close()
    paused = the(srv.lines, "accept_paused")
    assert (paused["error"], paused["retry_ms"]) == ("EMFILE", 100)
    the(srv.lines, "accept_resumed")


def test_the_metrics_line_is_json_too(serve):
    srv = serve("--log-format", "json", "--metrics", "127.0.0.1:0")
    srv.wait_log(r'"event":"metrics"')
    m = the(srv.lines, "metrics")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/metrics", m["url"]), m
    assert srv.stop() == 0
    assert all(json.loads(x) for x in srv.lines)
