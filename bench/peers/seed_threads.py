"""The seed's threaded greeting server, as written in the seed, with three
changes for benchmarking: no time.sleep(1) per message, the port comes from
argv[1], and the listen backlog is 511 instead of 5 (a backlog of 5 drops
connection bursts and would measure SYN retransmits, not the server).
One thread per client; chunk framing only (the bytes of one recv are one
message)."""
import socket
import sys
import threading


def tcplink(sock, addr):
    print("accepted %s:%s" % addr)
    sock.send(b'Welcome!')
    while True:
        data = sock.recv(1024)
        if not data or data.decode('utf-8') == 'exit':
            break
        sock.send(('Hello, %s!' % data.decode('utf-8')).encode('utf-8'))
    sock.close()
    print("closed %s:%s" % addr)


s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1])))
s.listen(511)
print("waiting for clients", flush=True)
while True:
    sock, addr = s.accept()
    t = threading.Thread(target=tcplink, args=(sock, addr), daemon=True)
    t.start()
