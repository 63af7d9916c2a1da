"""How many requests a run has in flight at once, adapted to how the registry answers.

A run of -j N has up to 4 x N connections, and signing the targets of N images at once can
fill them all. Far from the registry (tens of milliseconds per round trip) that is what keeps
it busy; next to a registry already working flat out, the extra requests only queue there, and
every round trip grows with the queue, which also lengthens what the `.sig` protocol waits
for (its checks' freshness and the final check's settle time are counted in round trips). So
the limit follows the registry's queueing delay, as TCP Vegas does with a link's: each round
trip is compared with the fastest one seen lately for its kind of request (a HEAD of a
manifest, a blob upload...); while requests come back about as fast as that, the limit
grows; once they wait behind each other, it shrinks, never below N nor above 4 x N.

No library does this for asyncio clients (aiohttp's pool has a fixed size); it is kept small.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

# Queueing delay (a round trip minus the fastest lately of its kind), as a share of that
# fastest round trip: below GROW_BELOW the limit grows, above SHRINK_ABOVE it shrinks.
GROW_BELOW = 0.25
SHRINK_ABOVE = 0.75
# ...and in absolute terms: delays under DELAY_NOISE seconds are noise (a loaded client).
DELAY_NOISE = 0.002
# The fastest round trip of a kind is forgotten slowly (it grows by this factor every
# DRIFT_SAMPLES answers), so that a path that became slower for good is not taken for a queue
# forever, while a queue that lasts is not taken for the path.
BASE_DRIFT = 1.02
DRIFT_SAMPLES = 64


class InFlightLimit:
    """A semaphore whose size adapts between `floor` and `ceiling` (see the module)."""

    def __init__(self, floor: int, ceiling: int) -> None:
        self.floor = max(1, floor)
        self.ceiling = max(self.floor, ceiling)
        self.limit = min(self.ceiling, 2 * self.floor)
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._fastest: dict[str, float] = {}
        self._delays: list[float] = []  # relative queueing delays since the last adjustment

    @asynccontextmanager
    async def slot(self, kind: str) -> AsyncIterator[None]:
        """Hold one of the `limit` places while a request of `kind` is sent and answered."""
        await self._acquire()
        started = time.perf_counter()
        try:
            yield
        finally:
            self._release()
            self.observe(kind, time.perf_counter() - started)

    def observe(self, kind: str, seconds: float) -> None:
        fastest = min(self._fastest.get(kind, seconds), seconds)
        self._fastest[kind] = fastest
        delay = seconds - fastest
        self._delays.append(0.0 if delay < DELAY_NOISE else delay / max(fastest, 1e-4))
        if len(self._delays) >= self.limit:
            self._adjust(statistics.median(self._delays), len(self._delays))
            self._delays.clear()

    def _adjust(self, delay: float, samples: int) -> None:
        if delay < GROW_BELOW:
            self.limit = min(self.ceiling, self.limit + max(1, self.limit // 4))
        elif delay > SHRINK_ABOVE:
            self.limit = max(self.floor, self.limit * 3 // 4)
        drift = BASE_DRIFT ** (samples / DRIFT_SAMPLES)
        for kind in self._fastest:
            self._fastest[kind] *= drift
        self._wake()

    async def _acquire(self) -> None:
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release()  # given a place as it was cancelled: pass it on
            else:
                self._waiters.remove(waiter)
            raise

    def _release(self) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.active < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.active += 1
                waiter.set_result(None)
