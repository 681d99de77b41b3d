"""A real nginx for the fetch tests: own config in a temporary folder, a
free loopback port for HTTP and one for HTTPS, certificates made with the
openssl CLI, stopped by PID. Every wait is bounded."""
import hashlib
import os
import signal
import socket
import subprocess

from peer_proc import put_file, start_when, stop_process

NGINX = "/usr/sbin/nginx"


def free_port(host="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def run(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(d):
    """A CA, a server cert for localhost/127.0.0.1/::1 and one for another
    host name, both signed by the CA. Returns a dict of paths."""
    os.makedirs(d, exist_ok=True)
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj",
         "/CN=sockit test CA"], d)
    for name, san in (("server", "DNS:localhost,IP:127.0.0.1,IP:::1"),
                      ("wrong", "DNS:wrong.example")):
        run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj",
             f"/CN={name}"], d)
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
        run(["openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey",
             "ca.key", "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
             f"{name}.ext"], d)
    return {k: os.path.join(d, v) for k, v in
            (("ca", "ca.pem"), ("cert", "server.pem"), ("key", "server.key"),
             ("wrong_cert", "wrong.pem"), ("wrong_key", "wrong.key"))}


CONF = """
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp_body;
    proxy_temp_path {d}/tmp_proxy;
    fastcgi_temp_path {d}/tmp_fastcgi;
    uwsgi_temp_path {d}/tmp_uwsgi;
    scgi_temp_path {d}/tmp_scgi;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 5;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {{
        listen 127.0.0.1:{http};
        listen [::1]:{http};
        listen 127.0.0.1:{https} ssl;
        listen [::1]:{https} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {d}/www;
        location /chunked/ {{ ssi on; ssi_types *; }}
        location = /redir/a {{ return 302 /redir/b; }}
        location = /redir/b {{ return 301 b2; }}
        location = /redir/b2 {{ return 307 http://127.0.0.1:{http}/small.bin; }}
        location = /redir/loop {{ return 302 /redir/loop; }}
        location = /redir/ftp {{ return 302 ftp://127.0.0.1/x; }}
        location = /redir/to-https {{ return 302 https://localhost:{https}/small.bin; }}
        location = /redir/to-http {{ return 302 http://127.0.0.1:{http}/small.bin; }}
        location = /echo-headers {{ return 200 "ua=$http_user_agent host=$http_host x=$http_x_test conn=$http_connection\\n"; }}
        location = /teapot {{ return 418 "short and stout\\n"; }}
        # fetch --compressed: nginx's own gzip, and files whose Content-Encoding lies
        location /gz/ {{ gzip on; gzip_types *; gzip_min_length 0; gzip_proxied any; }}
        location /says-gzip/ {{ add_header Content-Encoding gzip; }}
{extra_locations}
    }}
    server {{
        listen 127.0.0.1:{wrong} ssl;
        ssl_certificate {wrong_cert};
        ssl_certificate_key {wrong_key};
        root {d}/www;
    }}
}}
"""


class Nginx:
    def __init__(self, d, certs, timeout=10.0, access_log=False, http2=False,
                 extra_locations="", h2c=False):
        """access_log: each request logged in d/access.log as "CONNECTION
        REQUESTS-ON-IT URI" ($connection $connection_requests), and with
        http2 (HTTP/2 offered on the https ports: "listen ... ssl http2")
        its protocol after them ($server_protocol). extra_locations: more
        location blocks of the main server (nginx syntax, braces single).
        h2c: one more plain port for the main server, self.h2c, speaking
        HTTP/2 from the first byte ("listen ... http2" without ssl: prior
        knowledge, no Upgrade); its requests are logged with their protocol
        too."""
        self.dir = d
        self.www = os.path.join(d, "www")
        os.makedirs(self.www, exist_ok=True)
        self.certs = certs
        self.http = free_port()
        self.https = free_port()
        self.wrong = free_port()
        self.h2c = free_port() if h2c else None
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            conf_text = CONF.format(d=d, http=self.http, https=self.https, wrong=self.wrong,
                                    extra_locations=extra_locations, **certs)
            if access_log:
                proto = " $server_protocol" if http2 or h2c else ""
                conf_text = conf_text.replace(
                    "access_log off;", "log_format conns '$connection $connection_requests "
                    f"$request_uri{proto}'; access_log {d}/access.log conns;")
            if http2:
                conf_text = conf_text.replace(f":{self.https} ssl;", f":{self.https} ssl http2;")
            if h2c:
                conf_text = conf_text.replace(f"listen [::1]:{self.http};",
                                              f"listen [::1]:{self.http};\n"
                                              f"        listen 127.0.0.1:{self.h2c} http2;")
                loop = "        location = /redir/loop"
                conf_text = conf_text.replace(
                    loop, "        location = /redir/to-h2c { return 302 "
                    f"http://127.0.0.1:{self.h2c}/small.bin; }}\n{loop}")
            f.write(conf_text)
        # nginx writes its pid file once every listening socket is open (and
        # its error log, in the same folder, when it fails).
        pid = os.path.join(d, "nginx.pid")
        self.proc = start_when([NGINX, "-c", conf, "-p", d], d, lambda: os.path.exists(pid),
                               (self.http, self.https, self.wrong) + ((self.h2c,) if h2c else ()),
                               "nginx", timeout)

    def url(self, path, tls=False, host="127.0.0.1", h2c=False):
        if ":" in host:
            host = f"[{host}]"
        port = self.https if tls else self.h2c if h2c else self.http
        return f"{'https' if tls else 'http'}://{host}:{port}{path}"

    def log(self):
        """The access log's lines as (connection, requests on it, URI)."""
        try:
            with open(os.path.join(self.dir, "access.log")) as f:
                return [tuple(line.split()) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def put(self, name, data):
        return put_file(self.www, name, data)

    def put_big(self, name, size):
        """A size-byte file (whole MiBs) of random bytes, each MiB distinct;
        written block by block, never held whole. Returns its path."""
        path = os.path.join(self.www, name)
        with open(path, "wb") as f:
            block = os.urandom(1 << 20)
            for i in range(size >> 20):
                f.write(hashlib.sha256(b"%d" % i).digest() + block[32:])
        return path

    def stop(self, timeout=10.0):
        stop_process(self.proc, signal.SIGQUIT, timeout)
        self.proc.stderr.close()
