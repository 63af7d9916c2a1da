"""Which registries still answer at all.

A request that gets an HTTP answer, whatever its status, proves the registry is there. One that
gets none (connection refused or reset, no answer before its timeout, cancelled while waiting)
says nothing on its own: short outages are ridden out by the retries. But a registry that has
answered nothing for `down_after` seconds while requests were waiting on it is down: every
request to it from then on fails at once with RegistryDownError (no retries, no backoff), so
that a run over thousands of images does not spend a retry budget on each of them, and the end
of the run does not wait for minutes on it. An answer, should one still come, lifts it.

`down_after` is at least DOWN_AFTER_MIN, and at least as long as one request's whole backoff
(see down_after_for): raising $HANGAR_RETRY_BASE_DELAY to ride out longer restarts raises it too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hangar import output
from hangar.registry.errors import RegistryDownError
from hangar.registry.retry import RetryPolicy

# Longer than the outages the retries are there to ride out (a registry restart: the fault
# tests stop one for 10 s), short enough that a dead registry costs a run seconds, not minutes.
DOWN_AFTER_MIN = 20.0


def down_after_for(policy: RetryPolicy) -> float:
    """DOWN_AFTER_MIN, or the longest backoff one request may wait when that is longer."""
    backoff = sum(
        min(policy.base_delay * 2 ** (attempt - 1), policy.max_delay)
        for attempt in range(1, policy.retries + 1)
    )
    return max(DOWN_AFTER_MIN, backoff)


@dataclass
class _State:
    last_answer: float | None = None  # time.monotonic() of the last HTTP answer
    silent_since: float | None = None  # no answer since then, while a request waited
    silent_since_wall: float = 0.0  # the same moment, time.time()
    last_silence: float = 0.0  # time.monotonic() when the last request ended with no answer
    reason: str = ""  # what the last request that got no answer met
    down: RegistryDownError | None = None


class RegistryHealth:
    """Answers and silences per registry, as the transport sees them."""

    def __init__(
        self,
        down_after: float = DOWN_AFTER_MIN,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.down_after = down_after
        self._clock, self._wall = clock, wall  # the tests' own clocks
        self._states: dict[str, _State] = {}

    def answered(self, registry: str) -> None:
        state = self._states.setdefault(registry, _State())
        state.last_answer = self._clock()
        state.silent_since = None
        if state.down is not None:
            output.info(f"registry {registry} answers again")
            state.down = None

    def no_answer(self, registry: str, sent: float, reason: str) -> RegistryDownError | None:
        """A request sent at `sent` (time.monotonic()) ended without an answer: the
        RegistryDownError when the registry has now been silent for `down_after`."""
        state = self._states.setdefault(registry, _State())
        now = self._clock()
        state.reason = reason
        if state.silent_since is not None and now - state.last_silence > self.down_after:
            # Nothing failed for that long: no request was waiting (the run was busy with
            # other registries); a silence starts again from this request.
            state.silent_since = None
        state.last_silence = now
        if state.silent_since is None:
            # An answer to another request after this one was sent shortens the silence.
            since = max(sent, state.last_answer or sent)
            state.silent_since = since
            state.silent_since_wall = self._wall() - (now - since)
        if state.down is None and now - state.silent_since >= self.down_after:
            state.down = _down_error(registry, state, now)
            # Said once, here; each line it fails carries it in the failed file and report.
            output.error(str(state.down))
        return self.down(registry)

    def down(self, registry: str) -> RegistryDownError | None:
        """A fresh error (each raise of one shared instance would grow its traceback, and keep
        every frame it passed through alive, over a run of thousands of lines)."""
        state = self._states.get(registry)
        if state is None or state.down is None:
            return None
        said = state.down
        return RegistryDownError(said.message, registry=said.registry, hint=said.hint)

    def silence(self, registry: str) -> str | None:
        """`registry X has not answered since HH:MM:SS UTC (reason)` while it is silent."""
        state = self._states.get(registry)
        if state is None or state.silent_since is None:
            return None
        return f"registry {registry} has not answered since {_clock(state.silent_since_wall)}"


def _down_error(registry: str, state: _State, now: float) -> RegistryDownError:
    assert state.silent_since is not None
    silent = now - state.silent_since
    return RegistryDownError(
        f"registry {registry} has not answered any request since "
        f"{_clock(state.silent_since_wall)} ({silent:.0f}s; last: {state.reason}): hangar "
        "sends it no more requests in this run, and its images not done are in the failed file",
        registry=registry,
        hint="check that the registry is running and reachable, then run again with the "
        "failed file",
    )


def _clock(wall: float) -> str:
    return time.strftime("%H:%M:%S UTC", time.gmtime(wall))
