"""Certificates made at test time with the openssl CLI, shared by the TLS tests (serve, client,
bench): a root CA (RSA) and an intermediate (ECDSA); RSA and ECDSA P-256 leaves for localhost
and 127.0.0.1 under the intermediate (served as leaf + intermediate), an expired one,
one for localhost without an IP address; client certificates from two unrelated CAs."""
import os
import shutil
import ssl
import subprocess

import pytest

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"

CA_EXT = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
SERVER_EXT = ("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
              "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
CLIENT_EXT = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"


def _ossl(d, *args):
    subprocess.run([OPENSSL, *args], cwd=d, check=True, capture_output=True, timeout=60)


def _key(d, name, kind):
    if kind == "rsa":
        _ossl(d, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
              "-out", name + ".key")
    else:
        _ossl(d, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
              "-out", name + ".key")


def _ca(d, name, kind="ec"):
    _key(d, name, kind)
    _ossl(d, "req", "-x509", "-new", "-key", name + ".key", "-out", name + ".pem", "-days", "2",
          "-subj", "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def _signed(d, name, ca, ext, serial, cn, kind="ec", days="2"):
    _key(d, name, kind)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext)
    _ossl(d, "req", "-new", "-key", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn)
    _ossl(d, "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
          "-set_serial", str(serial), "-days", days, "-extfile", name + ".ext",
          "-out", name + ".pem")


class PKI:
    def __init__(self, d):
        self.d = d
        _ca(d, "root", "rsa")
        _signed(d, "int", "root", CA_EXT, 100, "intermediate")
        # Leaves under the intermediate: the served file is leaf + intermediate.
        for name, kind, serial, cn in (("rsa", "rsa", 4097, "localhost"),
                                       ("ecdsa", "ec", 4098, "localhost"),
                                       ("rotated", "ec", 4099, "rotated.localhost")):
            _signed(d, name, "int", SERVER_EXT, serial, cn, kind)
            self._chain(name)
        _signed(d, "expired", "int", SERVER_EXT, 4100, "localhost", days="-1")
        self._chain("expired")
        # A name and no IP address: a client of 127.0.0.1 must reject it.
        _signed(d, "nameonly", "int", SERVER_EXT.replace(",IP:127.0.0.1", ""), 4101,
                "localhost")
        self._chain("nameonly")
        _ca(d, "clientca")
        _signed(d, "client", "clientca", CLIENT_EXT, 1, "client")
        _ca(d, "otherca")
        _signed(d, "stranger", "otherca", CLIENT_EXT, 2, "stranger")

    def _chain(self, name):
        with open(self.path(name + ".chain"), "wb") as out:
            for part in (name + ".pem", "int.pem"):
                with open(self.path(part), "rb") as f:
                    out.write(f.read())

    def path(self, name):
        return os.path.join(self.d, name)

    def args(self, name="ecdsa"):
        return ["--tls-cert", self.path(name + ".chain"), "--tls-key", self.path(name + ".key")]

    def client_ctx(self, cert=None, max_version=None):
        ctx = ssl.create_default_context(cafile=self.path("root.pem"))
        # Python ignores a missing close_notify by default: these tests see it.
        ctx.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF
        if cert:
            ctx.load_cert_chain(self.path(cert + ".pem"), self.path(cert + ".key"))
        if max_version:
            ctx.maximum_version = max_version
        return ctx


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return PKI(str(tmp_path_factory.mktemp("pki")))
