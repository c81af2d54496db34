#!/usr/bin/env python3
"""A webhook receiver for measurements: answers every POST with 200 at once
and counts what arrived. GET /stats answers with the count of requests, of
distinct `webhook-id`s, and the seconds from the first to the last request.

    python3 scripts/receiver.py 46101        # listens on 127.0.0.1:46101
"""
import asyncio
import json
import sys
import time

requests = 0
ids = set()
first = last = None


class Http(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        global requests, first, last
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < head_end + 4 + length:
                return
            self.buffer = self.buffer[head_end + 4 + length:]
            if head[0].startswith("GET /stats"):
                span = (last - first) if first is not None else 0.0
                body = json.dumps({"requests": requests, "distinct": len(ids), "seconds": span}).encode()
            else:
                now = time.monotonic()
                first = now if first is None else first
                last = now
                requests += 1
                ids.add(headers.get("webhook-id", ""))
                body = b'{"ok":true}'
            self.transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                + str(len(body)).encode() + b"\r\n\r\n" + body
            )


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Http, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
