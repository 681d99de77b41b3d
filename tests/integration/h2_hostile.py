"""A scripted HTTP/2 server over TLS (ALPN h2) for fetch's hostile-peer
tests, on python3-h2: each connection's request goes to a script that
answers it frame by frame (resets, GOAWAYs, lying content-lengths, huge
header lists, stalls), or to raw bytes sent after the handshake (a bad
preface, malformed frames) that bypass h2's checks. Without certs:
plain TCP, HTTP/2 from the first byte (h2c, prior knowledge). Runs on a free
loopback port in a thread; every socket has a timeout; stop() wakes every
stall and joins the threads."""
import socket
import ssl
import threading

import h2.config
import h2.connection
import h2.events
from hyperframe.frame import DataFrame, GoAwayFrame, WindowUpdateFrame


class H2Server:
    def __init__(self, certs, script=None, raw=None, close=False):
        """script(srv, conn, sid, headers, send, nconn): answers stream sid
        (headers: a dict) with h2 calls on conn; send() flushes conn's bytes
        (send(b) writes b as they are). nconn: 1 for the first connection.
        raw: bytes sent right after the TLS handshake instead (no h2).
        certs None: no TLS (h2c), raw sent once the client's first bytes came.
        close: a FIN right after raw. raw may be a list: each piece sent on
        its own (TCP_NODELAY), which the client may read apart or together."""
        self.script = script
        self.raw = raw
        self.close = close
        self.connections = 0
        self.requests = []
        self.resets = []  # (nconn, stream id, error code) of each RST_STREAM received
        self.stopping = threading.Event()
        self.ctx = None
        if certs is not None:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(certs["cert"], certs["key"])
            self.ctx.set_alpn_protocols(["h2"])
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self.threads = []
        self.t = threading.Thread(target=self._accept, daemon=True)
        self.t.start()

    def url(self, path):
        return f"{'https' if self.ctx else 'http'}://localhost:{self.port}{path}"

    def _accept(self):
        while not self.stopping.is_set():
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(s, self.connections), daemon=True)
            self.threads.append(t)
            t.start()

    def sleep(self, seconds):
        """A stall that stop() ends at once."""
        self.stopping.wait(seconds)

    def _serve(self, s, nconn):
        s.settimeout(10)
        try:
            tls = self.ctx.wrap_socket(s, server_side=True) if self.ctx else s
        except (OSError, ssl.SSLError):
            s.close()
            return
        try:
            if self.raw is not None:
                if self.ctx is None:  # a plain server answers the preface
                    tls.recv(65536)
                if isinstance(self.raw, list):
                    tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                for piece in self.raw if isinstance(self.raw, list) else [self.raw]:
                    tls.sendall(piece)
                if self.close:
                    self._close(tls)
                    return
                tls.recv(65536)  # the client's preface; then its end
                self.stopping.wait(5)
                return
            cfg = h2.config.H2Configuration(client_side=False, header_encoding=None,
                                            validate_outbound_headers=False,
                                            normalize_outbound_headers=False,
                                            validate_inbound_headers=False)
            conn = h2.connection.H2Connection(config=cfg)
            conn.initiate_connection()
            tls.sendall(conn.data_to_send())

            def send(b=None):
                tls.sendall(conn.data_to_send() if b is None else b)

            while not self.stopping.is_set():
                data = tls.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.StreamReset):
                        self.resets.append((nconn, ev.stream_id, ev.error_code))
                    if isinstance(ev, h2.events.RequestReceived):
                        hdrs = {k.decode(): v.decode() for k, v in ev.headers}
                        self.requests.append(hdrs)
                        if self.script(self, conn, ev.stream_id, hdrs, send, nconn) == "close":
                            self._close(tls)
                            return
                send()
        except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass

    @staticmethod
    def _close(tls):
        """A FIN after what was sent, the client's bytes read to its end:
        no reset that would drop the last frames before the client reads
        them."""
        try:
            tls.shutdown(socket.SHUT_WR)
            while tls.recv(65536):
                pass
        except (OSError, ssl.SSLError):
            pass

    def stop(self):
        self.stopping.set()
        self.lsock.close()
        self.t.join(5)
        for t in self.threads:
            t.join(5)


def data_frame(sid, payload, end=False):
    """A DATA frame as bytes, past h2's flow control and framing checks."""
    f = DataFrame(sid, payload)
    if end:
        f.flags.add("END_STREAM")
    return f.serialize()


def goaway(last_stream_id, error_code):
    return GoAwayFrame(0, last_stream_id=last_stream_id, error_code=error_code).serialize()


def window_update(sid, increment):
    return WindowUpdateFrame(sid, window_increment=increment).serialize()


def send_body(conn, sid, body, send, end=True):
    """body in frames of the peer's maximum size."""
    step = conn.max_outbound_frame_size
    for i in range(0, len(body), step):
        conn.send_data(sid, body[i:i + step], end_stream=end and i + step >= len(body))
        send()
    if not body and end:
        conn.end_stream(sid)
        send()
