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
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
DEPLOY_MD = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "deploy.md")
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

    def doc_config(self, name, paths):
        """The configuration NAME of docs/deploy.md (the block after its
        "<!-- tests/cluster: NAME -->" line), with this cluster's addresses
        (same last octets as the docs') and the paths given put in."""
        with open(DEPLOY_MD) as f:
            text = f.read()
        marker = f"<!-- tests/cluster: {name} -->\n```\n"
        at = text.index(marker) + len(marker)
        cfg = text[at:text.index("```", at)]
        for doc_path, path in paths.items():
            assert doc_path in cfg, doc_path
            cfg = cfg.replace(doc_path, path)
        return cfg.replace("10.0.0.", self.prefix)

    def start_haproxy(self, backends):
        cfg = os.path.join(self.dir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(self.doc_config("haproxy", {"/run/haproxy/sockit.sock":
                                                os.path.join(self.dir, "haproxy.sock")}))
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

    # ---- nginx (stream) ----

    def start_nginx(self):
        """nginx with docs/deploy.md's stream configuration on lb, in one
        process (no master: stopped by its PID like the rest)."""
        cfg = os.path.join(self.dir, "nginx.conf")
        with open(cfg, "w") as f:
            f.write(self.doc_config("nginx", {
                "/run/nginx-sockit.pid": os.path.join(self.dir, "nginx.pid"),
                "/var/log/nginx/sockit-error.log": os.path.join(self.dir, "nginx-error.log")}))
        err = os.path.join(self.dir, "nginx-startup.log")
        test = subprocess.run(self.exec_argv("lb", NGINX, "-t", "-q", "-e", err, "-c", cfg),
                              capture_output=True, timeout=20)
        assert test.returncode == 0, test.stderr.decode()
        self.nginx = self.popen("lb", NGINX, "-e", err, "-c", cfg, "-g",
                                "daemon off; master_process off;", stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lb = (self.addr("lb"), PORT)
        self.wait(lambda: self.nginx.poll() is not None or self.listening("lb", lb), 15,
                  "nginx listening")
        assert self.nginx.poll() is None, open(os.path.join(self.dir, "nginx-error.log")).read()

    def listening(self, role, addr):
        """Is something listening on addr in role's namespace? (ss, no connect:
        a probe connection would be one more session on the servers)."""
        out = sh("ip", "netns", "exec", self.hosts[role][0], "ss", "-Htln",
                 f"src {addr[0]}:{addr[1]}", check=False)
        return bool(out.stdout.strip())

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
