"""`sockit serve` under systemd: the sockets systemd passes (socket activation,
LISTEN_FDS), tested with systemd-socket-activate and with sockets of the
test's own at fds 3, 4, ...; readiness on NOTIFY_SOCKET (READY=1, then
STOPPING=1 at SIGTERM); a hostile LISTEN_* environment; contrib/'s units
through `systemd-analyze verify`."""
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import SOCKIT, recv_exact

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ACTIVATE = shutil.which("systemd-socket-activate")
ANALYZE = shutil.which("systemd-analyze")
need_activate = pytest.mark.skipif(not ACTIVATE, reason="systemd-socket-activate is missing "
                                   "(scripts/deps.sh test installs systemd)")
# systemd-socket-activate gives the child only the variables named with -E.
PASS_ENV = ["LC_ALL", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"]


def free_port(kind):
    """A free loopback port (systemd-socket-activate takes no port 0): bound
    and closed, then bound again by it."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def activate(n=1, fdname=None, datagram=False, notify=None):
    """systemd-socket-activate binding n free loopback ports, and exec'ing
    sockit serve (the same pid) on the first client: (command, ports)."""
    kind = socket.SOCK_DGRAM if datagram else socket.SOCK_STREAM
    ports = [free_port(kind) for _ in range(n)]
    cmd = [ACTIVATE] + [a for port in ports for a in ("-l", f"127.0.0.1:{port}")]
    if datagram:
        cmd.append("--datagram")
    if fdname:
        cmd.append(f"--fdname={fdname}")
    for name in PASS_ENV:
        if name in os.environ:
            cmd += ["-E", name]
    if notify:
        cmd += ["-E", f"NOTIFY_SOCKET={notify}"]
    return cmd + [SOCKIT, "serve"], ports


class FirstClient:
    """The client whose connect (or datagram) makes systemd-socket-activate
    start serve, in a thread: until activate has bound the port it is
    refused, and tries again (within a deadline)."""

    def __init__(self, port, datagram=False):
        self.result, self.error = None, "no attempt"
        self.thread = threading.Thread(target=self._run, args=(port, datagram), daemon=True)
        self.thread.start()

    def _run(self, port, datagram):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if not datagram:  # queued in the backlog until serve accepts it
                    self.result = socket.create_connection(("127.0.0.1", port), timeout=5)
                    return
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.connect(("127.0.0.1", port))  # so that a refusal is seen
                    u.settimeout(10)
                    u.send(b"Michael")
                    self.result = u.recv(65536)  # serve's reply to the waking datagram
                    return
            except ConnectionRefusedError as e:
                self.error = repr(e)
                time.sleep(0.02)  # activate not listening yet: retry
            except OSError as e:
                self.error = repr(e)
                return

    def get(self):
        self.thread.join(20)
        assert self.result is not None, f"first client: {self.error}"
        return self.result


def passing(fds, *args):
    """`sockit serve args` with fds at 3, 4, ... and LISTEN_PID its own pid, as a
    service manager starts it (LISTEN_FDS and LISTEN_FDNAMES come from the env).
    fds: file descriptors of the test, or bash redirections ("3</dev/null")."""
    redirs = []
    for i, fd in enumerate(fds):
        redirs.append(fd if isinstance(fd, str) else f"{3 + i}<&{fd} {fd}<&-")
    script = f'exec {" ".join(redirs)}; export LISTEN_PID=$$; exec "$@"' if redirs else \
        'export LISTEN_PID=$$; exec "$@"'
    return ["/bin/bash", "-c", script, "bash", SOCKIT, "serve", *args]


def high_fds(socks):
    """Copies of the sockets' fds at 100 and above (clear of 3, 4, ... in the child)."""
    return [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, 100) for s in socks]


def tcp_listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


def udp_bound():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


class Notify:
    """The service manager's end of NOTIFY_SOCKET: a datagram socket in tmp_path."""

    def __init__(self, tmp_path):
        self.path = str(tmp_path / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)

    def expect(self, line, timeout=10.0):
        """Waits for a datagram with this line; returns the datagram's lines."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no {line} on NOTIFY_SOCKET"
            self.sock.settimeout(left)
            lines = self.sock.recv(4096).decode().split("\n")
            if line in lines:
                return lines

    def close(self):
        self.sock.close()


def greeting_works(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        assert recv_exact(c, 8) == b"Welcome!"
        c.sendall(b"hi")
        assert recv_exact(c, 10) == b"Hello, hi!"


def listening_lines(srv, n):
    srv.wait_log(r"listening on ", count=n)
    with srv.cond:
        return [l for l in srv.lines if "listening on " in l]


@need_activate
def test_a_passed_tcp_socket_serves_and_notifies(serve, tmp_path):
    notify = Notify(tmp_path)
    try:
        cmd, [port] = activate(fdname="greet", notify=notify.path)
        first = FirstClient(port)
        srv = serve(command=cmd)
        [line] = listening_lines(srv, 1)
        assert line.endswith(f"listening on 127.0.0.1:{port} (tcp, framing chunk) fd=3 name=greet")
        assert "READY=1" in notify.expect("READY=1")
        with first.get() as c:  # the client that started it is greeted
            assert recv_exact(c, 8) == b"Welcome!"
        greeting_works(port)
        assert srv.stop(signal.SIGTERM) == 0
        notify.expect("STOPPING=1")
        assert srv.log_count(r"received SIGTERM: stopping") == 1
        assert srv.log_count(r"summary: connections=2 ") == 1
        assert srv.log_count(r"sd_notify") == 0
    finally:
        notify.close()


@need_activate
def test_a_passed_datagram_socket_is_udp(serve):
    cmd, [port] = activate(fdname="dns", datagram=True)
    first = FirstClient(port, datagram=True)
    srv = serve(command=cmd)
    [line] = listening_lines(srv, 1)
    assert line.endswith(f"listening on 127.0.0.1:{port} (udp) fd=3 name=dns")
    assert first.get() == b"Hello, Michael!"  # the datagram that started it is answered
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(5)
        u.sendto(b"Tracy", ("127.0.0.1", port))
        assert u.recvfrom(65536)[0] == b"Hello, Tracy!"


@need_activate
def test_without_fdname_each_socket_is_unknown(serve):
    cmd, ports = activate(2)
    first = FirstClient(ports[1])
    srv = serve(command=cmd)
    lines = listening_lines(srv, 2)
    assert [l[l.index("listening on "):] for l in lines] == [
        f"listening on 127.0.0.1:{ports[0]} (tcp, framing chunk) fd=3 name=unknown",
        f"listening on 127.0.0.1:{ports[1]} (tcp, framing chunk) fd=4 name=unknown"]
    first.get().close()
    for port in ports:
        greeting_works(port)


@need_activate
def test_listen_wins_over_the_passed_sockets(serve):
    cmd, [port] = activate()
    first = FirstClient(port)
    srv = serve("--listen", "127.0.0.1:0", command=cmd)
    [line] = listening_lines(srv, 1)
    assert "fd=" not in line and srv.port != port
    greeting_works(srv.port)
    first.get().close()  # in the backlog of a socket nobody serves


def test_tcp_and_udp_by_name_and_a_restart_keeps_the_backlog(serve):
    """The service manager keeps its sockets across a restart: connects in
    between wait in the backlog, and the next process greets them."""
    tcp, udp = tcp_listener(), udp_bound()
    env = dict(os.environ, LISTEN_FDS="2", LISTEN_FDNAMES="web:my dns")
    try:
        fds = high_fds([tcp, udp])
        srv = serve(command=passing(fds), env=env, pass_fds=fds)
        for fd in fds:
            os.close(fd)
        lines = listening_lines(srv, 2)
        port = tcp.getsockname()[1]
        assert lines[0].endswith(f"listening on 127.0.0.1:{port} (tcp, framing chunk) fd=3 name=web")
        assert lines[1].endswith(f"listening on 127.0.0.1:{udp.getsockname()[1]} (udp) fd=4 "
                                 f'name="my dns"')
        greeting_works(port)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(5)
            u.sendto(b"x", udp.getsockname())
            assert u.recvfrom(100)[0] == b"Hello, x!"
        assert srv.stop(signal.SIGTERM) == 0
        # Still listening (the test holds it as systemd would): this client
        # waits for the next process instead of being refused.
        waiting = socket.create_connection(("127.0.0.1", port), timeout=5)
        with waiting:
            fds = high_fds([tcp, udp])
            serve(command=passing(fds), env=env, pass_fds=fds)
            for fd in fds:
                os.close(fd)
            assert recv_exact(waiting, 8) == b"Welcome!"
    finally:
        tcp.close()
        udp.close()


def run_failing(cmd, env, pass_fds=()):
    r = subprocess.run(cmd, env=env, pass_fds=pass_fds, capture_output=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    err = r.stderr.decode()
    assert err.count("\n") == 1 and err.endswith("\n"), err  # one line
    return r.returncode, err


@pytest.mark.parametrize("fds,listen_fds,names,says", [
    ([], "abc", None, 'socket activation: LISTEN_FDS is not a number of sockets (1 or more): "abc"'),
    ([], "0", None, "LISTEN_FDS is not a number of sockets"),
    ([], "17", None, "LISTEN_FDS is 17: more than 16 sockets"),
    ([], None, None, "LISTEN_PID is this process but LISTEN_FDS is not set"),
    (["3<&-"], "1", None, "socket activation: fd 3 is not open"),
    (["3</dev/null"], "1", None, "socket activation: fd 3 is not a socket"),
    (["3</dev/null"], "1", "a:b", "LISTEN_FDNAMES has 2 names for 1 sockets"),
    (["3</dev/null"], "1", "\x01bad", "LISTEN_FDNAMES: name 1 is not valid"),
])
def test_hostile_environment_is_one_line_and_exit_1(fds, listen_fds, names, says):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_")}
    if listen_fds is not None:
        env["LISTEN_FDS"] = listen_fds
    if names is not None:
        env["LISTEN_FDNAMES"] = names
    rc, err = run_failing(passing(fds), env)
    assert rc == 1, err
    assert err.startswith("sockit: serve: ") and says in err, err


def test_a_bad_listen_pid_is_one_line_and_exit_1():
    env = dict(os.environ, LISTEN_PID="12ab", LISTEN_FDS="1")
    rc, err = run_failing([SOCKIT, "serve"], env)
    assert rc == 1
    assert err == 'sockit: serve: socket activation: LISTEN_PID is not a process id: "12ab"\n'


def unix_listener(tmp_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(tmp_path / "unix"))
    s.listen(1)
    return s


@pytest.mark.parametrize("kind,says", [
    ("unix", "fd 3 (ctl) is not an IPv4 or IPv6 socket"),
    ("seqpacket", "fd 3 (ctl) is neither a stream nor a datagram socket"),
    ("connected", "fd 3 (ctl) is not listening (Accept=yes is not supported)"),
])
def test_a_socket_serve_cannot_serve_is_refused(kind, says, tmp_path):
    keep = []
    if kind == "unix":
        sock = unix_listener(tmp_path)
    elif kind == "seqpacket":
        sock, other = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        keep.append(other)
    else:
        lst = tcp_listener()
        other = socket.create_connection(lst.getsockname(), timeout=5)
        sock, _ = lst.accept()
        keep += [lst, other]
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="ctl")
    try:
        fds = high_fds([sock])
        rc, err = run_failing(passing(fds), env, pass_fds=fds)
        for fd in fds:
            os.close(fd)
    finally:
        for s in [sock] + keep:
            s.close()
    assert rc == 1
    assert err == f"sockit: serve: socket activation: {says}\n"


@pytest.mark.parametrize("opt", ["--udp", "--reuseport"])
def test_udp_and_reuseport_with_passed_sockets_are_usage_errors(opt):
    tcp = tcp_listener()
    env = dict(os.environ, LISTEN_FDS="1")
    try:
        fds = high_fds([tcp])
        rc, err = run_failing(passing(fds, opt), env, pass_fds=fds)
        for fd in fds:
            os.close(fd)
    finally:
        tcp.close()
    assert rc == 2
    assert err == f"sockit: serve: {opt} cannot be used with the sockets systemd passes (LISTEN_FDS)\n"


def test_another_process_s_listen_pid_is_ignored():
    """LISTEN_PID names another process (systemd's rule: not for us): the
    environment is not looked at further, serve binds its default address."""
    env = dict(os.environ, LISTEN_PID="1", LISTEN_FDS="garbage")
    p = subprocess.Popen([SOCKIT, "serve"], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        first = p.stderr.readline().decode()
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        p.communicate(timeout=10)
    # The default address may be taken on this machine: either way, bound or
    # refused, it is the default address and not the environment.
    assert "listening on 127.0.0.1:8888 " in first or "cannot listen on 127.0.0.1:8888" in first, first
    assert "socket activation" not in first


@pytest.mark.parametrize("where,says", [
    ("relative/notify", "NOTIFY_SOCKET is neither an absolute path nor @NAME"),
    ("/nonexistent/notify", "No such file or directory"),
])
def test_a_notify_socket_that_fails_is_logged_once_and_serving_goes_on(serve, where, says):
    srv = serve(env=dict(os.environ, NOTIFY_SOCKET=where))
    srv.wait_log(r"sd_notify: cannot notify the service manager: " + re.escape(says))
    greeting_works(srv.port)
    assert srv.stop(signal.SIGTERM) == 0
    assert srv.log_count(r"sd_notify") == 1  # READY and STOPPING both failed: one line


def test_notify_without_socket_activation(serve, tmp_path):
    notify = Notify(tmp_path)
    try:
        srv = serve(env=dict(os.environ, NOTIFY_SOCKET=notify.path))
        notify.expect("READY=1")
        assert srv.stop(signal.SIGTERM) == 0
        assert "STATUS=stopping: draining sessions" in notify.expect("STOPPING=1")
    finally:
        notify.close()


def notified_states(tmp_path, **env):
    """The datagrams (as lines) of READY=1 and STOPPING=1 from a serve run
    under env, stopped by SIGTERM after READY."""
    notify = Notify(tmp_path)
    p = subprocess.Popen([SOCKIT, "serve", "--listen", "127.0.0.1:0"],
                         env=dict(os.environ, NOTIFY_SOCKET=notify.path, **env),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        ready = notify.expect("READY=1")
        p.send_signal(signal.SIGTERM)
        stopping = notify.expect("STOPPING=1")
        assert p.wait(timeout=10) == 0
        return ready, stopping
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        notify.close()


def test_notify_status_is_in_the_operator_s_language(tmp_path):
    """STATUS= is what `systemctl status` shows: translated, one line; the
    state fields the manager parses stay as they are."""
    build = os.environ.get("SOCKIT_BUILD") or os.path.dirname(SOCKIT)
    ready, stopping = notified_states(tmp_path, LANGUAGE="zh_CN", LC_ALL="C.UTF-8",
                                      SOCKIT_LOCALEDIR=os.path.join(build, "locale"))
    assert "STATUS=服务中" in ready
    assert "STATUS=正在停止：等待会话结束" in stopping


# ---- contrib/ ----

@pytest.mark.skipif(not ANALYZE, reason="systemd-analyze is missing (scripts/deps.sh test installs systemd)")
def test_the_units_verify_clean(tmp_path):
    """contrib/'s units, with ExecStart= naming this build's program (verify
    checks that it exists), as `make install` writes them."""
    for unit in ("sockit.service", "sockit.socket"):
        with open(os.path.join(ROOT, "contrib", unit)) as f:
            text = f.read()
        (tmp_path / unit).write_text(text.replace("/usr/bin/sockit", SOCKIT))
    r = subprocess.run([ANALYZE, "verify", "--man=no", str(tmp_path / "sockit.socket"),
                        str(tmp_path / "sockit.service")], capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout + r.stderr == b"", (r.stdout + r.stderr).decode()


def test_the_service_is_sandboxed_and_notifies():
    with open(os.path.join(ROOT, "contrib", "sockit.service")) as f:
        unit = f.read()
    settings = dict(l.split("=", 1) for l in unit.splitlines() if "=" in l and not l.startswith("#"))
    assert settings["Type"] == "notify"
    assert settings["ExecStart"] == "/usr/bin/sockit serve"
    for key, value in [("DynamicUser", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                       ("PrivateTmp", "yes"), ("PrivateDevices", "yes"), ("NoNewPrivileges", "yes"),
                       ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
                       ("MemoryDenyWriteExecute", "yes"), ("LockPersonality", "yes"),
                       ("RestrictNamespaces", "yes"), ("CapabilityBoundingSet", "")]:
        assert settings.get(key) == value, key


def test_passed_sockets_in_the_json_log(serve):
    """--log-format json: the listening objects carry fd and name too."""
    import json
    tcp = tcp_listener()
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="my web")
    try:
        fds = high_fds([tcp])
        srv = serve(command=passing(fds, "--log-format", "json"), env=env, pass_fds=fds)
        for fd in fds:
            os.close(fd)
        srv.wait_log(r'"event":"listening"')
        line = json.loads(next(x for x in srv.lines if '"listening"' in x))
        assert line["fd"] == 3 and line["name"] == "my web" and line["proto"] == "tcp", line
        assert line["addr"] == f"127.0.0.1:{tcp.getsockname()[1]}"
        assert srv.stop(signal.SIGTERM) == 0
    finally:
        tcp.close()


def test_a_bad_translation_of_status_is_dropped_and_the_state_still_sent(tmp_path):
    """A catalogue is outside text too: a translated STATUS= with a line
    break would give the manager a field of its own choosing (here
    MAINPID=1), one too long for the datagram would cut the state. Then the
    state alone is sent."""
    po = tmp_path / "x.po"
    po.write_text('msgid ""\nmsgstr "Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                  'msgid "serving"\nmsgstr "up\\nMAINPID=1"\n\n'
                  'msgid "stopping: draining sessions"\nmsgstr "%s"\n' % ("x" * 600),
                  encoding="utf-8")
    mo = tmp_path / "locale" / "xx" / "LC_MESSAGES" / "sockit.mo"
    mo.parent.mkdir(parents=True)
    subprocess.run(["msgfmt", "-o", str(mo), str(po)], check=True)
    ready, stopping = notified_states(tmp_path, LANGUAGE="xx", LC_ALL="C.UTF-8",
                                      SOCKIT_LOCALEDIR=str(tmp_path / "locale"))
    assert ready == ["READY=1"]
    assert stopping == ["STOPPING=1"]
