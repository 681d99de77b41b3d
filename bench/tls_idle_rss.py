#!/usr/bin/python3
"""RSS of `sockit serve --tls-*` per idle TLS session: one Python process holds N ssl
sessions that have their greeting; the server's VmRSS after, minus before, over N.

usage: bench/tls_idle_rss.py SOCKIT CERT KEY [N] [extra serve args...]
(CERT must verify for "localhost" against itself or its chain's root as given.)"""
import re
import resource
import socket
import ssl
import subprocess
import sys


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    sockit, cert, key = sys.argv[1:4]
    n = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 100), hard))
    p = subprocess.Popen([sockit, "serve", "--listen", "127.0.0.1:0", "--workers", "1", "--quiet",
                          "--tls-cert", cert, "--tls-key", key] + sys.argv[5:],
                         stderr=subprocess.PIPE)
    try:
        port = int(re.search(r":(\d+) ", p.stderr.readline().decode()).group(1))
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False

        def session():
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                                server_hostname="localhost")
            assert s.recv(100) == b"Welcome!"  # the handshake is done, the greeting sent
            return s
        for s in [session() for _ in range(20)]:  # OpenSSL's first-use allocations
            s.close()
        before = rss_kib(p.pid)
        socks = [session() for _ in range(n)]
        after = rss_kib(p.pid)
        print(f"sessions={n} rss_before_kib={before} rss_after_kib={after} "
              f"bytes_per_session={(after - before) * 1024 / n:.0f}")
        for s in socks:
            s.close()
    finally:
        p.terminate()
        p.wait(10)


if __name__ == "__main__":
    main()
