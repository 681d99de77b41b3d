"""sockit fetch -w: curl's write-out variables read from the final response
head (%header{NAME}, %{header_json}, %{num_headers}, %{redirect_url}) and
from the library's events (%{time_namelookup}, %{time_redirect},
%{local_ip}, %{local_port}, %{method}, %{ssl_verify_result}), and the
constant ones (%{size_upload}, %{speed_upload}, %{http_connect} without a
proxy). Scripted servers: hostile_http.HostileServer."""
import json

import pytest

from fetch_cli import assert_clean, fetch
from test_fetch_report import srv as report_srv  # noqa: F401 (a fixture)
from test_fetch_report import tls_server

FINAL = (b"HTTP/1.1 200 OK\r\nX-Hop: final\r\nSet-Cookie: a=1\r\nContent-Type: text/plain\r\n"
         b"set-cookie: b=2\r\nX-Tab: a\tb\r\nX-Empty:\r\nContent-Length: 2\r\n\r\nok")
MOVED = b"HTTP/1.1 302 Found\r\nX-Hop: first\r\nLocation: /a?x=1\r\nContent-Length: 0\r\n\r\n"


@pytest.fixture
def srv(report_srv):
    report_srv.route("/a", lambda req: FINAL)
    report_srv.route("/r", lambda req: MOVED)
    return report_srv


def run(*args, rc=0):
    r = fetch("-s", *args)
    assert_clean(r)
    assert r.returncode == rc, r.stderr
    return r.stdout.decode()


def test_header_values_of_the_final_response(srv, tmp_path):
    out = run("-L", "-o", str(tmp_path / "o"), "-w",
              "[%header{x-hop}][%header{SET-COOKIE}][%header{x-tab}][%header{nope}]"
              "[%header{x-empty}][%header{}]%{num_headers}\\n", srv.url("/r"))
    # the redirect's X-Hop is not the final one's; repeated fields joined;
    # a server's control byte (HTAB: the only one a field may hold) as \xHH
    assert out == "[final][a=1, b=2][a\\x09b][][][]7\n"


def test_header_json_of_the_final_response(srv, tmp_path):
    out = run("-L", "-o", str(tmp_path / "o"), "-w", "%{header_json}\\n", srv.url("/r"))
    j = json.loads(out)
    assert list(j) == ["x-hop", "set-cookie", "content-type", "x-tab", "x-empty",
                       "content-length"], "lower case, in the order of first appearance"
    assert j == {"x-hop": ["final"], "set-cookie": ["a=1", "b=2"], "content-type": ["text/plain"],
                 "x-tab": ["a\tb"], "x-empty": [""], "content-length": ["2"]}


def test_header_variables_without_a_response(tmp_path):
    out = run("-w", "[%header{x}]%{num_headers}%{header_json}[%{redirect_url}]\\n",
              "http://127.0.0.1:1/x", rc=4)
    assert out == "[]0{}[]\n"


def test_local_address_method_and_constants(srv, tmp_path):
    out = run("-o", str(tmp_path / "o"), "-w",
              "%{local_ip} %{local_port} %{method} %{size_upload} %{speed_upload} "
              "%{http_connect} %{ssl_verify_result} %{time_redirect}\\n", srv.url("/a"))
    (req,) = srv.requests
    ip, port = req.peer[:2]
    assert out == f"{ip} {port} GET 0 0 000 0 0.000000\n", "the port the server saw"
    out = run("-I", "-w", "%{method}\\n", srv.url("/a"))
    assert out.endswith("HEAD\n"), out


def test_redirect_url_of_a_redirect_not_followed(srv, tmp_path):
    out = run("--max-redirs", "0", "-o", str(tmp_path / "o"), "-w",
              "%{redirect_url} %{num_redirects}\\n", srv.url("/r"), rc=6)
    assert out == srv.url("/a?x=1") + " 0\n", "resolved against the URL"
    out = run("-L", "-o", str(tmp_path / "o"), "-w", "[%{redirect_url}]\\n", srv.url("/r"))
    assert out == "[]\n", "followed: none"


def test_times_of_lookup_and_redirect(srv, tmp_path):
    out = run("-L", "-o", str(tmp_path / "o"), "-w", "%{json}", srv.url("/r", host="localhost"))
    j = json.loads(out)
    assert j["num_redirects"] == 1 and j["num_connects"] == 2
    # the final hop began after the redirect, with its own lookup and connect
    assert 0 < j["time_redirect"] <= j["time_namelookup"] <= j["time_connect"]
    assert j["time_connect"] <= j["time_pretransfer"] <= j["time_starttransfer"]
    assert j["time_starttransfer"] <= j["time_total"]
    out = run("-o", str(tmp_path / "p"), "-w", "%{json}", srv.url("/a", host="localhost"))
    j = json.loads(out)
    assert j["time_redirect"] == 0 and 0 < j["time_namelookup"] <= j["time_connect"]


def test_json_has_the_new_variables(srv, tmp_path):
    out = run("-L", "-o", str(tmp_path / "o"), "-w", "%{json}", srv.url("/r"))
    j = json.loads(out)
    assert list(j) == sorted(j), "curl's order: by name"
    (_, req) = srv.requests
    assert j["local_ip"] == req.peer[0] and j["local_port"] == req.peer[1]
    assert j["method"] == "GET" and j["num_headers"] == 7 and j["redirect_url"] is None
    assert j["http_connect"] == j["size_upload"] == j["speed_upload"] == 0
    assert j["ssl_verify_result"] == 0
    assert "header_json" not in j, "as curl: not part of %{json}"


def test_each_url_of_a_parallel_run_has_its_own_head(srv, tmp_path):
    for i in range(4):
        srv.route(f"/p{i}", lambda req, i=i: b"HTTP/1.1 200 OK\r\nX-N: %d\r\n"
                  b"Content-Length: 0\r\n\r\n" % i)
    out = run("--parallel", "4", "--output-dir", str(tmp_path), "-w", "%header{x-n}\\n",
              *[srv.url(f"/p{i}") for i in range(4)])
    assert out == "0\n1\n2\n3\n"


@pytest.mark.parametrize("trust", [True, False], ids=["verified", "insecure"])
def test_ssl_verify_result(tmp_path, trust):
    with tls_server(tmp_path, FINAL) as (tls, certs):
        out = run(*(["--cacert", certs["ca"]] if trust else ["-k"]), "-o", str(tmp_path / "o"),
                  "-w", "%{ssl_verify_result} %{time_namelookup} %{time_appconnect}",
                  tls.url("/a", host="localhost"))
    code, lookup, handshake = out.split()
    # OpenSSL's X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY (20): the
    # test CA is not among the system's
    assert int(code) == (0 if trust else 20)
    assert 0 < float(lookup) <= float(handshake)
