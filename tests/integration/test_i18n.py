"""The program's messages in Chinese through gettext (po/zh_CN.po), English by
default; numbers and machine-read output never change with the locale."""
import json
import os
import re
import shutil
import signal
import subprocess

import pytest

from conftest import SOCKIT, Server

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("SOCKIT_BUILD") or os.path.join(ROOT, "build")
LOCALEDIR = os.path.join(BUILD, "locale")


def env_with(**kw):
    """The environment with no locale variable but those given, and the build's
    catalogues."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LC_CTYPE")}
    env["SOCKIT_LOCALEDIR"] = LOCALEDIR
    env.update(kw)
    return env


def run(args, **kw):
    return subprocess.run([SOCKIT] + args, capture_output=True, timeout=30, env=env_with(**kw))


def test_the_catalogue_is_built():
    assert os.path.isfile(os.path.join(LOCALEDIR, "zh_CN", "LC_MESSAGES", "sockit.mo"))


@pytest.mark.parametrize("env", [
    {"LANGUAGE": "zh_CN", "LC_ALL": "C.UTF-8"},
    # zh_CN.UTF-8 is not generated on a fresh Debian: the language is still
    # taken from LANG (the catalogue needs no locale data).
    {"LANG": "zh_CN.UTF-8"},
    {"LC_MESSAGES": "zh_CN.UTF-8"},
])
def test_help_in_chinese(env):
    r = run(["--help"], **env)
    assert r.returncode == 0
    out = r.stdout.decode("utf-8")
    assert out.startswith("用法：sockit 命令 [选项]\n")
    for summary in ("运行问候服务器（TCP 和 UDP）", "与问候服务器对话",
                    "通过 HTTP 或 HTTPS 下载一个 URL", "在负载下测量问候服务器"):
        assert summary in out
    assert "退出状态，所有命令相同：" in out
    assert "   3  主机名无法解析\n" in out


@pytest.mark.parametrize("env", [{}, {"LANG": "C"}, {"LC_ALL": "C", "LANGUAGE": "zh_CN"},
                                 {"LANG": "en_US.UTF-8"}])
def test_english_by_default(env):
    # LC_ALL=C wins over LANGUAGE, as everywhere in glibc.
    r = run(["--help"], **env)
    assert r.returncode == 0
    assert r.stdout.decode().startswith("usage: sockit COMMAND [OPTIONS]\n")


@pytest.mark.parametrize("command,phrases,options", [
    (["serve"], ["运行问候服务器：每个客户端先收到 \"Welcome!\"", "每个套接字一行 \"正在监听 ADDR（tcp|udp）\"",
                 "这些事件记录和所有 key=value 字段永远不变", "退出状态：信号引发的关闭后为 0"],
     ["  -l, --listen HOST:PORT  ", "      --proxy-protocol    ", "\"proxy-error PEER reason=R\"",
      "--log-format FORMAT  text（默认）或 json"]),
    (["fetch"], ["下载 URL（http:// 或 https://）：https 服务器提供 HTTP/2 时", "任何失败都会让 FILE 保持原样", "  11  响应体与 --sha256 不匹配"],
     ["  -C, --continue          ", "      --retry N           ", "（+ FILE.part.meta）"]),
    (["bench"], ["在负载下测量问候协议的服务器", "开环：总共每秒 R 个请求", "\n模式：\n", "\n输出：\n"],
     ["  -P, --pipeline DEPTH  ", "      --tls-resume      ",
      "--raw 'PING\\r\\n' --expect '+PONG\\r\\n'"]),
    (["bench", "merge"], ["延迟直方图逐桶相加", "（而不是百分位数的平均值）"],
     ["  -j, --json   ", "用法：sockit bench merge FILE... [--json]\n"]),
])
def test_subcommand_help_in_chinese(command, phrases, options):
    r = run(command + ["--help"], LANG="zh_CN.UTF-8")
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode("utf-8")
    assert out.startswith("用法：sockit " + " ".join(command)), out[:80]
    for p in phrases + options:  # options, metavariables and examples as in English
        assert p in out, p
    english = run(command + ["--help"]).stdout.decode()
    assert english.startswith("usage: sockit " + " ".join(command))
    # The same options, in the same order, in both languages.
    opts = lambda text: re.findall(r"^  (?:-\w,|   ) (--[\w-]+)", text, re.M)
    assert opts(out) == opts(english) and len(opts(out)) >= 2


class ChineseServer(Server):
    """A server whose listening lines are in Chinese."""
    LISTEN_RE = re.compile(r"正在监听 ([^\s（]+)（(tcp|udp)")


def session(srv):
    """Greeting, one message "hi", exit; returns the client's address."""
    from test_serve_log_json import talk  # here: that module imports env_with from this one
    return talk(srv)


def test_serve_log_lines_in_chinese_keep_their_fields():
    srv = ChineseServer(["--udp"], env=env_with(LANG="zh_CN.UTF-8"))
    try:
        srv.wait_log("正在监听", 2)  # the UDP line comes after the TCP one
        tcp, udp = [l for l in srv.lines if "正在监听" in l]
        assert tcp.endswith(f" 正在监听 {srv.host}:{srv.port}（tcp，分帧 chunk）"), tcp
        assert udp.endswith(f" 正在监听 {srv.host}:{srv.port}（udp）"), udp
        me = session(srv)
        # The record and its key=value fields exactly as in English.
        srv.wait_log(rf" open {re.escape(me)}$")
        srv.wait_log(rf" close {re.escape(me)} reason=exit messages=1 bytes_in=6 bytes_out=18 "
                     rf"duration_ms=\d+$")
        srv.proc.send_signal(signal.SIGHUP)  # no TLS: logged and ignored
        srv.wait_log(r" 收到 SIGHUP：已忽略$")
    finally:
        rc = srv.stop()
    assert rc == 0
    assert srv.lines[-2].endswith(" 收到 SIGTERM：正在停止"), srv.lines[-2:]
    assert re.search(r" summary: connections=1 refused=0 messages=1 datagrams=0 bytes_in=6 "
                     r"bytes_out=18$", srv.lines[-1]), srv.lines[-1]
    assert not [l for l in srv.lines if "listening" in l or "received" in l]


def json_run(**env):
    """serve --log-format json through a session, SIGHUP and SIGTERM; its
    lines with the timestamps, ports and duration made constant."""
    srv = Server(["--log-format", "json", "--udp"], env=env_with(**env))
    try:
        srv.wait_log(r'"event":"listening"', 2)  # the UDP line comes after the TCP one
        session(srv)
        srv.wait_log(r'"event":"close"')
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log(r'"signal":"SIGHUP"')
    finally:
        rc = srv.stop()
    assert rc == 0
    assert all(json.loads(l) for l in srv.lines), srv.lines
    norm = lambda l: re.sub(r'"ts":"[^"]+"|127\.0\.0\.1:\d+|"duration_ms":\d+', "#", l)
    return [norm(l) for l in srv.lines]


def test_json_log_is_the_same_in_every_locale():
    english = json_run(LC_ALL="C")
    assert len(english) == 7, english
    for env in ({"LANG": "zh_CN.UTF-8"}, {"LANGUAGE": "zh_CN", "LC_ALL": "C.UTF-8"}):
        assert json_run(**env) == english


def test_an_error_in_chinese_keeps_its_prefix_and_status():
    r = run(["serve", "--max-conns", "abc"], LANG="zh_CN.UTF-8")
    assert r.returncode == 2
    assert r.stderr.decode("utf-8") == "sockit: serve: --max-conns 不是十进制数：abc\n"
    r = run(["client", "--timeout", "5x", "127.0.0.1:1"], LANG="zh_CN.UTF-8")
    assert r.returncode == 2
    err = r.stderr.decode("utf-8")
    assert err.startswith("sockit: client: --timeout 不是有效的时长（") and err.endswith("：5x\n")
    r = run(["serve", "--bogus"], LANGUAGE="zh_CN", LC_ALL="C.UTF-8")
    assert r.returncode == 2
    assert r.stderr.decode("utf-8") == \
        "sockit: serve: 未知选项 --bogus（试试 'sockit serve --help'）\n"


def test_library_errors_are_translated_too():
    # "could not resolve host" is the library's (sk_strerror): the program
    # prints it in the user's language.
    r = run(["client", "no-such-host.invalid:80"], LANG="zh_CN.UTF-8")
    assert r.returncode == 3
    assert "无法解析" in r.stderr.decode("utf-8")


def test_numbers_keep_the_c_locale(tmp_path):
    """A locale with a decimal comma changes neither what options accept nor
    bench's JSON."""
    if not shutil.which("localedef") or not os.path.isdir("/usr/share/i18n/locales"):
        pytest.fail("localedef and the locales package are needed (scripts/deps.sh test)")
    subprocess.run(["localedef", "-i", "de_DE", "-f", "UTF-8", str(tmp_path / "de_DE.UTF-8")],
                   check=True, capture_output=True, timeout=60)
    env = env_with(LOCPATH=str(tmp_path), LC_ALL="de_DE.UTF-8")
    srv = Server(["--delay", "1.5"], env=env)
    try:
        r = subprocess.run([SOCKIT, "bench", f"{srv.host}:{srv.port}", "-c", "2", "-n", "20",
                            "--json", "--rate", "1000.5"],
                           capture_output=True, timeout=60, env=env)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)  # a "1,5" anywhere would not parse
        assert doc
    finally:
        srv.stop()


def test_every_message_is_translated(tmp_path):
    """Every message the sources mark (and every cli_error format) has a
    Chinese translation that is not fuzzy: a new message comes with its
    translation (make pot, then po/zh_CN.po)."""
    pot = tmp_path / "sockit.pot"
    srcs = sorted(os.path.join(ROOT, "src", f) for f in os.listdir(os.path.join(ROOT, "src"))
                  if f.endswith(".c"))
    subprocess.run(["xgettext", "--from-code=UTF-8", "--language=C", "-k_", "-kN_",
                    "-kcli_error", "-kngettext:1,2", "--flag=cli_error:1:c-format",
                    "-o", str(pot)] + srcs, check=True, timeout=60)
    subprocess.run(["xgettext", "--language=C", "--extract-all", "--join-existing", "-o",
                    str(pot), os.path.join(ROOT, "lib", "err.c")], check=True, timeout=60)
    merged = tmp_path / "zh_CN.po"
    subprocess.run(["msgmerge", "--quiet", "-o", str(merged),
                    os.path.join(ROOT, "po", "zh_CN.po"), str(pot)], check=True, timeout=60)
    missing = subprocess.run(["msgattrib", "--no-obsolete", "--untranslated", str(merged)],
                             capture_output=True, text=True, check=True).stdout
    fuzzy = subprocess.run(["msgattrib", "--no-obsolete", "--only-fuzzy", str(merged)],
                           capture_output=True, text=True, check=True).stdout
    ids = lambda po: [l for l in po.splitlines() if l.startswith("msgid ")][1:]
    assert not ids(missing), "untranslated: " + " | ".join(ids(missing)[:10])
    assert not ids(fuzzy), "fuzzy: " + " | ".join(ids(fuzzy)[:10])
