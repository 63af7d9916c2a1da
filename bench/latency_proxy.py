"""A TCP proxy that delays every byte sent to the registry by a fixed time (run by hand or by
bench_sign.py): a registry "in another building" on loopback.

    python bench/latency_proxy.py --upstream 127.0.0.1:5000 --delay-ms 20

Prints `listening HOST:PORT` once ready. Client-to-registry data is forwarded `delay` after it
arrived (order kept, so a request is late by `delay`, not by `delay` per chunk); answers flow
back at once. Each request/answer exchange thus takes `delay` longer, as over a link with
that round trip.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

CHUNK = 64 * 1024


async def _delayed_copy(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            arrived, data = await queue.get()
            if not data:
                break
            wait = arrived + delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(CHUNK):
            queue.put_nowait((time.monotonic(), data))
    finally:
        queue.put_nowait((time.monotonic(), b""))
        with contextlib.suppress(OSError):
            await sender


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()
    with contextlib.suppress(OSError):
        writer.write_eof()


async def _serve(upstream: tuple[str, int], delay: float, port: int) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*upstream)
        except OSError:
            client_w.close()
            return
        try:
            await asyncio.gather(
                _delayed_copy(client_r, server_w, delay),
                _copy(server_r, client_w),
                return_exceptions=True,
            )
        finally:
            for stream in (client_w, server_w):
                stream.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    host, bound = server.sockets[0].getsockname()[:2]
    print(f"listening {host}:{bound}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the registry")
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    host, _, port = args.upstream.rpartition(":")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve((host, int(port)), args.delay_ms / 1000, args.port))


if __name__ == "__main__":
    main()
