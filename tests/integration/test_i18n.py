"""The program's messages in Chinese through gettext (po/zh_CN.po), English by
default; numbers and machine-read output never change with the locale."""
import json
import os
import shutil
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
