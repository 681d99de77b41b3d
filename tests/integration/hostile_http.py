"""A small scripted HTTP server for the bad-input tests: each path maps to a
function that gets the parsed request and returns what to send, byte for
byte, including malformed responses, early closes, resets, stalls and
endless streams. Runs on a free loopback port in a thread; every socket has
a timeout; stop() wakes every stall and joins the threads."""
import socket
import struct
import threading


class Request:
    def __init__(self, raw):
        self.raw = raw
        head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        lines = head.split("\r\n")
        self.method, self.path, self.version = lines[0].split(" ", 2)
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()


class Sleep:
    """Pause before sending the next piece (a stalling server); stop() ends
    the pause at once."""

    def __init__(self, seconds):
        self.seconds = seconds


class Mark:
    """Sets a threading.Event once every piece before it has been sent: the
    test waits on that instead of guessing how long sending takes."""

    def __init__(self, event):
        self.event = event


class Reset:
    """Ends the connection with a TCP reset (SO_LINGER 0) instead of a FIN."""


class Raw:
    """Bytes written to the TCP socket under TLS, bypassing the record
    layer (a corrupt record)."""

    def __init__(self, data):
        self.data = data


class HostileServer:
    def __init__(self, host="127.0.0.1", raw=None, tls=None, close_notify=True):
        """raw: bytes sent as soon as a connection is accepted, before any
        request is read (for clients that expect another protocol).
        tls: an ssl.SSLContext to serve HTTPS; close_notify=False ends each
        TLS connection with a bare TCP close (a truncation attack)."""
        self.raw = raw
        self.tls = tls
        self.close_notify = close_notify
        self.routes = {}
        self.requests = []
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.stopped = threading.Event()
        self.threads = []
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()

    def url(self, path, host="127.0.0.1"):
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"

    def route(self, path, fn):
        """fn(request) -> bytes, or an iterable (a generator for an endless
        stream) of bytes / Sleep / Mark / Reset / Raw pieces."""
        self.routes[path] = fn

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, conn):
        conn.settimeout(5)
        if self.tls:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:
                conn.close()
                return
        try:
            if self.raw is not None:
                conn.sendall(self.raw)
                return
            raw = b""
            while b"\r\n\r\n" not in raw and len(raw) < 65536:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                raw += chunk
            req = Request(raw)
            req.peer = conn.getpeername()  # the client's address and port
            with self.lock:
                self.requests.append(req)
            fn = self.routes.get(req.path.split("?")[0])
            out = fn(req) if fn else b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
            if isinstance(out, bytes):
                out = [out]
            for piece in out:
                if self.stopping:
                    break
                if isinstance(piece, Sleep):
                    self.stopped.wait(piece.seconds)
                elif isinstance(piece, Mark):
                    piece.event.set()
                elif isinstance(piece, Reset):
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()
                    return
                elif isinstance(piece, Raw):
                    socket.socket.sendall(conn, piece.data)  # the TCP socket, not TLS
                else:
                    conn.sendall(piece)
        except OSError:
            pass
        finally:
            try:
                if self.tls and self.close_notify:
                    conn = conn.unwrap()  # sends close_notify
                conn.shutdown(socket.SHUT_WR)
            except (OSError, ValueError):
                pass
            conn.close()

    def stop(self):
        self.stopping = True
        self.stopped.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked accept()
        except OSError:
            pass
        self.sock.close()
        self.acceptor.join(5)
        for t in self.threads:
            t.join(5)
