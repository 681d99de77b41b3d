"""Hosts as network namespaces, for tests/cluster (root only).

One namespace is the switch: a bridge, and one veth pair per host (one end
on the bridge, the other, eth0, in the host's namespace, with its address in
10.77.N.0/24). Every name carries this process's PID, so two runs never
share one; everything is removed by close(), which the fixture runs on every
exit path: first every process started here (by PID: SIGKILL after a grace),
then the namespaces (their veths go with them)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
from conftest import SOCKIT, Server  # noqa: E402

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
PORT = 8888
CHECK_INTER_MS = 500


def sh(*args, check=True):
    out = subprocess.run(list(args), capture_output=True, timeout=20)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {out.stderr.decode().strip()}")
    return out


class Cluster:
    def __init__(self):
        pid = os.getpid()
        self.tag = f"sk{pid}"
        self.prefix = f"10.77.{pid % 250}."
        self.switch = f"{self.tag}-sw"
        self.hosts = {}      # role -> (namespace, address)
        self.namespaces = []
        self.procs = []      # every Popen started here
        self.servers = {}    # role -> Server (the current instance)
        self.dir = tempfile.mkdtemp(prefix=f"{self.tag}-")
        self.haproxy = None
        self._add_ns(self.switch)
        sh("ip", "-n", self.switch, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.switch, "link", "set", "br0", "up")

    def _add_ns(self, name):
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")

    def add_host(self, role, last_octet):
        ns = f"{self.tag}-{role}"
        addr = f"{self.prefix}{last_octet}"
        self._add_ns(ns)
        port = f"p{len(self.hosts)}"
        sh("ip", "-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
           "netns", ns)
        sh("ip", "-n", self.switch, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        self.hosts[role] = (ns, addr)
        return addr

    def addr(self, role):
        return self.hosts[role][1]

    def exec_argv(self, role, *argv):
        return ["ip", "netns", "exec", self.hosts[role][0], *argv]

    def popen(self, role, *argv, **kw):
        """A process on a host; `ip netns exec` execs it, so its PID is ours."""
        p = subprocess.Popen(self.exec_argv(role, *argv), **kw)
        self.procs.append(p)
        return p

    # ---- sockit serve instances ----

    def start_server(self, role, *extra):
        srv = Server(["--proxy-protocol", "--listen", f"{self.addr(role)}:{PORT}", "--workers", "1",
                      *extra], timeout=10,
                     command=self.exec_argv(role, SOCKIT, "serve"))
        self.procs.append(srv.proc)
        self.servers[role] = srv
        return srv

    # ---- HAProxy ----

    def haproxy_config(self, backends):
        servers = "\n".join(f"    server {r} {self.addr(r)}:{PORT}" for r in backends)
        return f"""global
    stats socket {self.dir}/haproxy.sock mode 600 level admin
    log stderr format raw local0 info
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
frontend sockit
    bind {self.addr('lb')}:{PORT}
    default_backend sockit_servers
backend sockit_servers
    balance roundrobin
    # A layer-7 check: the PROXY header (v2 LOCAL), the greeting, a clean exit.
    option tcp-check
    tcp-check connect send-proxy
    tcp-check expect string Welcome!
    tcp-check send exit
    default-server check inter {CHECK_INTER_MS}ms fall 1 rise 2 send-proxy-v2 check-send-proxy
{servers}
"""

    def start_haproxy(self, backends):
        cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(self.haproxy_config(backends))
        sh(HAPROXY, "-c", "-q", "-f", cfg)
        self.haproxy_log = open(os.path.join(self.dir, "haproxy.log"), "wb")
        self.haproxy = self.popen("lb", HAPROXY, "-db", "-f", cfg, stdin=subprocess.DEVNULL,
                                  stdout=self.haproxy_log, stderr=subprocess.STDOUT)
        self.wait(lambda: all(s == "UP" for s in self.backend_status().values()) and
                  len(self.backend_status()) == len(backends), 15, "every backend UP in HAProxy")

    def haproxy_cmd(self, cmd):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        try:
            s.connect(os.path.join(self.dir, "haproxy.sock"))
            s.sendall(cmd.encode() + b"\n")
            buf = b""
            while len(buf) < 1 << 20:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            return buf.decode()
        finally:
            s.close()

    def backend_status(self):
        """{server: status} from HAProxy's stats ("UP", "DOWN", "UP 1/2", ...);
        {} while the stats socket is not there yet."""
        try:
            text = self.haproxy_cmd("show stat")
        except OSError:
            return {}
        lines = text.splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        cols = lines[0][2:].split(",")
        si, ni, pi = cols.index("status"), cols.index("svname"), cols.index("pxname")
        out = {}
        for line in lines[1:]:
            f = line.split(",")
            if len(f) > si and f[pi] == "sockit_servers" and f[ni] not in ("BACKEND",):
                out[f[ni]] = f[si]
        return out

    # ---- generators ----

    def bench(self, role, *args):
        """Starts `sockit bench` on a host against the balancer (--json to a
        file); returns (Popen, path)."""
        path = os.path.join(self.dir, f"bench-{role}-{len(self.procs)}.json")
        out = open(path, "wb")
        p = self.popen(role, SOCKIT, "bench", f"{self.addr('lb')}:{PORT}", "--json", "--no-live",
                       *args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE)
        out.close()
        return p, path

    @staticmethod
    def wait(pred, timeout, what, interval=0.02):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(interval)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        for srv in self.servers.values():
            srv.reader.join(5)
        if self.haproxy:
            self.haproxy_log.close()
        for ns in reversed(self.namespaces):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
