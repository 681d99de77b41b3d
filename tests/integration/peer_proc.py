"""Starting and stopping the real servers the tests run (nginx, lighttpd,
tinyproxy): by PID, every wait bounded."""
import os
import signal
import socket
import subprocess

from fswait import wait_in_folder


def start_when(argv, folder, ready, ports, what, timeout=10.0):
    """Starts argv and returns its Popen once ready() is true (re-checked as
    entries of folder change: the daemon's pid file or log is there) and each
    of ports accepts; raises RuntimeError if it exits or times out first."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_in_folder(folder, lambda: ready() or proc.poll() is not None, timeout,
                       f"{what} to start")
    except AssertionError:
        stop_process(proc, signal.SIGTERM)
        proc.stderr.close()
        raise RuntimeError(f"{what} did not start")
    if proc.poll() is not None:
        err = proc.stderr.read().decode()
        proc.stderr.close()
        raise RuntimeError(f"{what} exited: {err}")
    for port in ports:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    return proc


def stop_process(proc, sig, timeout=10.0):
    """Sends sig, waits up to timeout, then kills."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def put_file(root, name, data):
    """Writes data as root/name (folders made as needed); returns its path."""
    path = os.path.join(root, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path
