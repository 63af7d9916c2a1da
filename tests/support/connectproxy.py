"""A small CONNECT proxy on loopback, as a corporate HTTPS proxy behaves for a registry client.

`ConnectProxy` runs in its own thread and event loop. It answers `CONNECT host:port` with a
tunnel (bytes both ways, never read) and refuses any other method with 405. `names` maps host
names to addresses, so a test can name a loopback registry `registry.hangar.test:PORT`: podman
(Go's ProxyFromEnvironment) never proxies localhost or loopback addresses, and neither does
hangar, so a proxied registry needs a name. Every request head it receives is kept in `heads`,
so a test can assert what the proxy saw (a CONNECT line, never an Authorization header).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

STARTUP_SECONDS = 10.0
HEAD_LIMIT = 64 * 1024


class ConnectProxy:
    def __init__(self, names: dict[str, str] | None = None) -> None:
        self.names = dict(names or {})
        self.heads: list[bytes] = []
        self.tunnels: list[str] = []
        self.port = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ConnectProxy:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(STARTUP_SECONDS):
            raise RuntimeError("the CONNECT proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(STARTUP_SECONDS)

    def seen_heads(self) -> list[str]:
        with self._lock:
            return [head.decode("latin-1") for head in self.heads]

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        try:
            loop.run_forever()
        finally:
            self._server.close()
            loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        with self._lock:
            self.heads.append(head)
        method, _, rest = head.decode("latin-1").partition(" ")
        target = rest.split(" ", 1)[0]
        if method != "CONNECT":
            await _answer(writer, b"405 Method Not Allowed")
            return
        host, _, port = target.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(self.names.get(host, host), port)
        except OSError:
            await _answer(writer, b"502 Bad Gateway")
            return
        with self._lock:
            self.tunnels.append(target)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _answer(writer: asyncio.StreamWriter, status: bytes) -> None:
    writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()
