"""accept() failing with EMFILE must not spin the CPU, and serving resumes."""
import os
import re
import socket
import subprocess
import threading
import time

from conftest import SOCKIT


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_emfile_backs_off_then_recovers():
    # 40 fds: stdio, listener, epoll, eventfds, logger... leave room for ~30 sessions
    proc = subprocess.Popen(
        ["bash", "-c", f"ulimit -n 40; exec {SOCKIT} serve --listen 127.0.0.1:0 --workers 1"],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    socks, lines, paused, reader = [], [], threading.Event(), None
    try:
        line = proc.stderr.readline().decode()
        port = int(re.search(r":(\d+) \(tcp", line).group(1))

        def read_log():
            for raw in proc.stderr:
                lines.append(raw.decode())
                if "pausing accepts" in lines[-1]:
                    paused.set()
        reader = threading.Thread(target=read_log, daemon=True)
        reader.start()
        for _ in range(60):  # more than the fd limit allows
            s = socket.socket()
            s.settimeout(3)
            s.connect(("127.0.0.1", port))  # completes in the kernel's backlog
            socks.append(s)
        assert paused.wait(10), "no 'pausing accepts' line"  # out of fds now
        t0 = cpu_ticks(proc.pid)
        time.sleep(2)  # a measurement window, not a synchronisation
        busy = cpu_ticks(proc.pid) - t0
        assert busy < 50, f"server used {busy} ticks in 2 s while out of fds"  # 100 ticks/s = a spinning core
        greeted = 0
        for s in socks:  # greetings were sent long ago: no waiting needed
            s.setblocking(False)
            try:
                greeted += s.recv(8) == b"Welcome!"
            except BlockingIOError:
                pass
        assert 10 <= greeted < 60
        for s in socks[:40]:
            s.close()
        # room again: the connections waiting in the backlog are accepted
        for s in socks[40:]:
            s.settimeout(5)
            assert s.recv(8) == b"Welcome!"
        assert proc.poll() is None
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        rc = proc.wait(10)
        if reader:
            reader.join(5)
    assert rc == 0
    assert any("pausing accepts" in line for line in lines)
