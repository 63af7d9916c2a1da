"""A listener that accepts connections and never answers: what a hung registry, a stuck load
balancer or a firewall that black-holes after the handshake look like to a client.

    with SilentListener() as silent:
        ... point hangar at silent.host ...
        assert silent.accepted > 0

Each accepted socket is kept open (never read from, never written to) until stop(), so the
client sees neither an answer nor a closed connection: only its own timeouts end its wait.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType

ACCEPT_POLL_SECONDS = 0.1
STOP_SECONDS = 5.0


class SilentListener:
    def __init__(self) -> None:
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._count = 0
        self.port = 0

    @property
    def host(self) -> str:
        """ "127.0.0.1:PORT", what an image reference names."""
        return f"127.0.0.1:{self.port}"

    @property
    def accepted(self) -> int:
        """Connections accepted so far."""
        with self._lock:
            return self._count

    def start(self) -> SilentListener:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._listener.settimeout(ACCEPT_POLL_SECONDS)
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(
            target=self._accept, name=f"silent-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._connections.append(connection)
                self._count += 1

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(STOP_SECONDS)
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.close()
        if self._listener is not None:
            self._listener.close()
        self._thread = self._listener = None

    def __enter__(self) -> SilentListener:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
