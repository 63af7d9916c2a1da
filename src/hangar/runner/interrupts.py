"""SIGINT and SIGTERM for a whole command, routed to the run instead of Python's defaults."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

SIGNAL_EXIT_CODES: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupts:
    """SIGINT and SIGTERM for a whole command, installed before its first request so that no
    signal ever meets Python's default handlers mid-run (a KeyboardInterrupt inside asyncio
    would tear the run down with tasks still writing). Listeners get (signal, how many so far).
    Work started with `guard()` before the run (the login check) is cancelled by a signal."""

    def __init__(self) -> None:
        self.first: int | None = None  # the signal that stopped the command
        self.count = 0
        self._listener: Callable[[int, int], None] | None = None
        self._guarded: set[asyncio.Task[Any]] = set()
        self._restore: Callable[[], None] = lambda: None

    async def __aenter__(self) -> Interrupts:
        self._install()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._restore()

    def _install(self) -> None:
        loop = asyncio.get_running_loop()
        installed: list[tuple[int, Any]] = []
        for signum in SIGNAL_EXIT_CODES:
            try:
                previous = signal.getsignal(signum)
                loop.add_signal_handler(signum, self._on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            installed.append((signum, previous))

        def restore() -> None:
            for signum, previous in installed:
                loop.remove_signal_handler(signum)
                # asyncio leaves SIG_DFL behind; the previous handler must come back so that
                # a late SIGTERM still unwinds (no temp file left) instead of killing outright.
                signal.signal(signum, previous)
            self._restore = lambda: None

        self._restore = restore

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Python's own handlers for a blocking prompt: a Ctrl-C there must interrupt the
        read (KeyboardInterrupt), which the loop's handler cannot do."""
        self._restore()
        try:
            yield
        finally:
            self._install()

    def listen(self, listener: Callable[[int, int], None] | None) -> None:
        self._listener = listener

    async def guard(self, work: Awaitable[Any]) -> None:
        """Run `work` unless a signal came or comes: then it is cancelled, quietly."""
        if self.first is not None:
            if asyncio.iscoroutine(work):
                work.close()
            return
        task = asyncio.ensure_future(work)
        self._guarded.add(task)
        try:
            await task
        except asyncio.CancelledError:
            if self.first is None:
                raise
        except KeyboardInterrupt:  # Ctrl-C at a prompt (see paused)
            self._on_signal(signal.SIGINT)
        finally:
            self._guarded.discard(task)

    def _on_signal(self, signum: int) -> None:
        self.count += 1
        if self.first is None:
            self.first = signum
        for task in self._guarded:
            task.cancel()
        if self._listener is not None:
            self._listener(signum, self.count)
