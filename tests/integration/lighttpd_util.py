"""A real lighttpd for the fetch tests, a second web server beside nginx
(nginx_util.py): its own config in a temporary folder, free loopback ports
for HTTP and HTTPS (mod_openssl), mod_deflate for gzip/deflate/br, stopped by
PID. Every wait is bounded."""
import os
import signal

from nginx_util import free_port
from peer_proc import put_file, start_when, stop_process

LIGHTTPD = "/usr/sbin/lighttpd"

CONF = """
server.document-root = "{d}/www"
server.bind = "127.0.0.1"
server.port = {http}
server.pid-file = "{d}/lighttpd.pid"
server.errorlog = "{d}/error.log"
server.modules += ("mod_accesslog", "mod_deflate", "mod_redirect", "mod_openssl")
# protocol, status, requests on its connection, path, the client's port
accesslog.filename = "{d}/access.log"
accesslog.format = "%H %s %k %U %{{remote}}p"
mimetype.assign = (".bin" => "application/octet-stream", ".txt" => "text/plain")
deflate.mimetypes = ("text/")
deflate.allowed-encodings = ("br", "gzip", "deflate")
url.redirect = ("^/r/a$" => "/r/b", "^/r/b$" => "http://127.0.0.1:{http}/small.bin")
$SERVER["socket"] == "127.0.0.1:{https}" {{
    ssl.engine = "enable"
    ssl.pemfile = "{cert}"
    ssl.privkey = "{key}"
}}
"""


class Lighttpd:
    def __init__(self, d, certs, timeout=10.0):
        self.dir = d
        self.www = os.path.join(d, "www")
        os.makedirs(self.www, exist_ok=True)
        self.certs = certs
        self.http = free_port()
        self.https = free_port()
        conf = os.path.join(d, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write(CONF.format(d=d, http=self.http, https=self.https, cert=certs["cert"],
                                key=certs["key"]))
        # lighttpd may write its pid file before its sockets listen; it logs
        # "server started" once they do.
        log = os.path.join(d, "error.log")

        def started():
            try:
                with open(log) as f:
                    return "server started" in f.read()
            except FileNotFoundError:
                return False
        self.proc = start_when([LIGHTTPD, "-D", "-f", conf], d, started,
                               (self.http, self.https), "lighttpd", timeout)

    def url(self, path, tls=False, host="127.0.0.1"):
        return f"{'https' if tls else 'http'}://{host}:{self.https if tls else self.http}{path}"

    def put(self, name, data):
        return put_file(self.www, name, data)

    def stop(self, timeout=10.0):
        """Stops lighttpd (which writes out its buffered access log) and
        returns the requests it logged as (protocol, status, requests on the
        connection before this one (HTTP/1.1) or with it (HTTP/2), path, the
        client's port: one per connection)."""
        stop_process(self.proc, signal.SIGTERM, timeout)
        self.proc.stderr.close()
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                lines = [tuple(line.split()) for line in f if line.strip()]
        except FileNotFoundError:
            return []
        # An HTTP/2 connection's own line (its preface: status 100, path *)
        # is no request.
        return [line for line in lines if line[3] != "*"]
