"""The greeting protocol on Python asyncio (Protocol API, the fast path).

usage: asyncio_server.py PORT [chunk|line]"""
import asyncio
import sys

LINE = len(sys.argv) > 2 and sys.argv[2] == "line"


class Greeting(asyncio.Protocol):
    def connection_made(self, transport):
        self.t = transport
        self.buf = b""
        transport.write(b"Welcome!\n" if LINE else b"Welcome!")

    def data_received(self, data):
        if not LINE:
            if data == b"exit":
                self.t.close()
            else:
                self.t.write(b"Hello, " + data + b"!")
            return
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        out = []
        for m in lines:
            if m.endswith(b"\r"):
                m = m[:-1]
            if m == b"exit":
                self.t.write(b"".join(out))
                self.t.close()
                return
            out.append(b"Hello, " + m + b"!\n")
        self.t.write(b"".join(out))


async def main():
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(Greeting, "127.0.0.1", int(sys.argv[1]), backlog=511)
    async with srv:
        await srv.serve_forever()


asyncio.run(main())
