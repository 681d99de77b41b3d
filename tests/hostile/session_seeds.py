#!/usr/bin/python3
"""Writes the seed corpus of fuzz/fuzz_session.c (fuzz/corpus/fuzz_session/).
Input layout: config byte (1 line, 2 delay, 4 idle, 8 small out-limit,
16 --proxy-protocol), [delay], [idle], max-line index, pause index, then the
first accept's SO_SNDBUF index and transport (0 TCP, 1 AF_UNIX) and, with
--proxy-protocol, the header its peer sends (an index of proxy_headers[]:
0 none, 1 v1 TCP4, 2 v1 TCP6, 3 v1 UNKNOWN, 4 v2 PROXY, 5 v2 LOCAL, 6 cut
short); then operations (op, peer, args) as in LLVMFuzzerTestOneInput (an
accept takes the same arguments)."""
import os
import sys

ACCEPT, WRITE, READ, FIN, RST, CLOSE, STEP, TICK, JUMP, STOP, SHUTRD = 0, 1, 3, 4, 5, 6, 7, 9, 10, 11, 12
TCP, UNIX = 0, 1
PROXY = 16  # the config bit
NO_HEADER, V1_TCP4, V1_TCP6, V1_UNKNOWN, V2_PROXY, V2_LOCAL, CUT_SHORT = range(7)


def raw(peer, data):
    return bytes([WRITE, peer, 0, len(data)]) + data


def synth(peer, k):  # 10..15: under, at(+lines), over, over(+lines), far, far(+lines)
    return bytes([WRITE, peer, k])


def op(o, peer=0, *args):
    return bytes([o, peer, *args])


def read(peer, n):
    return op(READ, peer, 1, n - 1)


SEEDS = {
    # line framing: a conversation, then exit
    "line_exit": bytes([1, 4, 2, 0, TCP]) + read(0, 9) + raw(0, b"hi\n") + op(STEP) + read(0, 11)
    + raw(0, b"exit\n") + op(STEP) + op(STEP) + read(0, 60) + op(FIN) + op(STEP),
    # delay + idle timeout, a tiny send buffer, a run of empty lines
    "delay_idle": bytes([1 | 2 | 4, 50, 0, 2, 0, 1, TCP]) + raw(0, b"\n" * 200) + op(STEP)
    + op(JUMP, 0, 1) + op(STEP) + read(0, 60) + op(TICK, 0, 255) + op(JUMP, 0, 255) + op(STEP),
    # chunk framing, exit, FIN
    "chunk": bytes([0, 4, 1, 0, UNIX]) + raw(0, b"hello") + op(STEP) + read(0, 60)
    + raw(0, b"exit") + op(STEP) + op(JUMP, 0, 200) + op(STEP) + read(0, 60) + op(FIN) + op(STEP),
    # stop while replies wait for their delay
    "stop_delayed": bytes([2, 100, 4, 2, 0, TCP]) + raw(0, b"x") + op(STEP) + op(STOP)
    + op(JUMP, 0, 1) + op(STEP) + op(JUMP, 0, 1) + op(STEP),
    # a peer that never reads: pause, then the output limit
    "never_reads": bytes([1 | 8, 4, 0, 1, TCP]) + raw(0, b"a\n" * 100) + op(STEP) * 4
    + raw(0, b"b\n" * 100) + op(STEP) * 4 + op(ACCEPT, 0, 0, TCP) + raw(1, b"ok\n") + op(STEP),
    # two sessions, one closes with unread input (a reset)
    "two_reset": bytes([1, 4, 2, 0, TCP]) + op(ACCEPT, 0, 2, UNIX) + raw(1, b"q\n") + op(STEP)
    + op(RST, 1) + raw(0, b"w\nexit\n") + op(STEP) + op(STEP) + read(0, 100),
    # --proxy-protocol: a v1 header, a conversation in line framing, exit
    "proxy_v1_line": bytes([PROXY | 1, 4, 2, 0, TCP, V1_TCP4]) + op(STEP) + read(0, 9)
    + raw(0, b"hi\nexit\n") + op(STEP) + op(STEP) + read(0, 60) + op(FIN) + op(STEP),
    # a v2 header over an AF_UNIX pair, then a LOCAL one, chunk framing
    "proxy_v2_local": bytes([PROXY, 4, 2, 0, UNIX, V2_PROXY]) + op(STEP) + read(0, 8)
    + op(ACCEPT, 1, 0, TCP, V2_LOCAL) + op(STEP) + read(1, 8) + raw(1, b"m") + op(STEP)
    + read(1, 60) + op(FIN, 0) + op(FIN, 1) + op(STEP),
    # a header in two writes, the first message right behind it
    "proxy_split": bytes([PROXY | 1, 4, 2, 0, TCP, NO_HEADER]) + raw(0, b"PROXY TCP4 10.0.0.1 1")
    + op(STEP) + raw(0, b"0.0.0.2 1 2\r\nab\ncd\n") + op(STEP) + read(0, 40) + op(FIN)
    + op(STEP),
    # no header (garbage), one cut short that times out, one that never comes, a stop
    "proxy_errors": bytes([PROXY | 4, 1, 4, 2, 0, TCP, NO_HEADER]) + raw(0, b"GET / HTTP/1.0\r\n")
    + op(STEP) + op(ACCEPT, 1, 0, UNIX, CUT_SHORT) + op(ACCEPT, 2, 0, TCP, NO_HEADER) + op(STEP)
    + op(JUMP, 0, 255) + op(STEP) + op(ACCEPT, 3, 0, TCP, V1_UNKNOWN) + op(STOP) + op(STEP),
}


# Inputs that crash the code as it is: they go to fuzz/crashes/fuzz_session/
# and join the corpus once the bug is fixed (make test replays the corpus).
CRASHES = {
    # heap-use-after-free in on_line_data: complete lines + an over-long line
    # in one write, and the reply's send fails (the peer reset, or closed
    # after reading the greeting)
    "toolong_shutrd": bytes([1, 3, 2, 0, UNIX]) + read(0, 9) + synth(0, 13) + op(SHUTRD) + op(STEP),
    "toolong_close": bytes([1, 3, 2, 0, UNIX]) + read(0, 9) + synth(0, 13) + op(CLOSE) + op(STEP),
    # clang's UBSan: "applying zero offset to null pointer" in sk_buf_head()
    # (include/sockit/buf.h), from on_readable with --delay: the worker's
    # reply buffer w->wbuf was never allocated (gcc's UBSan does not check it)
    "ubsan_null_plus_zero_delay": bytes([2, 10, 4, 2, 0, TCP]) + raw(0, b"x") + op(STEP),
}


def write_all(folder, seeds):
    os.makedirs(folder, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)


def main():
    fuzz = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "..", "fuzz")
    write_all(os.path.join(fuzz, "corpus", "fuzz_session"), SEEDS)
    write_all(os.path.join(fuzz, "crashes", "fuzz_session"), CRASHES)


if __name__ == "__main__":
    main()
