"""WhatsApp's send endpoint for the outbound benchmark: one small asyncio process.

    python -m bench.fake_whatsapp PORT

Every POST is answered at once with a WhatsApp send response naming a new wamid,
over kept-alive connections, and the moment it arrived is noted. ``GET /arrivals``
answers those moments (seconds since the epoch, oldest first) and forgets them;
any other GET answers ``ok`` (the readiness check).

The real platform's CPU is not on SNORQ's machine; the fake's is, on the same two
cores, so it is kept as light as an HTTP server can be in Python: a plain parser
for the requests SNORQ's client sends (HTTP/1.1, a Content-Length body), nothing
more. Under load it spends 0.12 ms of CPU a send; the gunicorn app it replaced, 0.67 ms.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time

_wamids = itertools.count(1)
_arrivals: list[float] = []


def _sent() -> bytes:
    return json.dumps(
        {
            "messaging_product": "whatsapp",
            "contacts": [{"input": "16505550000", "wa_id": "16505550000"}],
            "messages": [{"id": f"wamid.bench{next(_wamids):012d}"}],
        }
    ).encode()


def _response(body: bytes) -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            method, path, _ = head.split(b" ", 2)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            if method == b"POST":
                _arrivals.append(time.time())
                writer.write(_response(_sent()))
            elif path == b"/arrivals":
                writer.write(_response(json.dumps(_arrivals).encode()))
                _arrivals.clear()
            else:
                writer.write(_response(b"ok"))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def _main(port: int) -> None:
    server = await asyncio.start_server(_serve, "127.0.0.1", port, backlog=512)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1])))
