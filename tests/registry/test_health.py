"""registry/health.py on its own clock: when a registry that does not answer counts as down,
and what lifts it. (The real thing, a registry killed or a listener that never answers, is in
tests/faults/test_faults.py.)"""

from __future__ import annotations

import pytest

from hangar.registry.errors import RegistryDownError, RegistryError, UnreachableError
from hangar.registry.health import DOWN_AFTER_MIN, RegistryHealth, down_after_for
from hangar.registry.retry import RetryPolicy

REGISTRY = "registry.test:5000"
NOON = 12 * 3600.0  # the wall clock's 12:00:00 UTC on day 0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return NOON + (self.now - 1000.0)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def health(clock: Clock) -> RegistryHealth:
    return RegistryHealth(20.0, clock=clock, wall=clock.wall)


def test_silent_for_down_after_while_requests_waited_is_down(
    health: RegistryHealth, clock: Clock
) -> None:
    health.answered(REGISTRY)
    clock.now += 1
    sent = clock.now
    for _ in range(19):  # refused once a second: 19 s of silence, not yet down
        clock.now += 1
        assert health.no_answer(REGISTRY, sent, "connection refused") is None
    assert health.silence(REGISTRY) == f"registry {REGISTRY} has not answered since 12:00:01 UTC"
    clock.now += 1
    down = health.no_answer(REGISTRY, clock.now, "connection refused")
    assert isinstance(down, RegistryDownError)
    assert not isinstance(down, UnreachableError)  # nothing retries it
    assert isinstance(down, RegistryError) and down.said_once and down.registry == REGISTRY
    assert str(down).startswith(
        f"registry {REGISTRY} has not answered any request since 12:00:01 UTC "
        "(20s; last: connection refused)"
    )
    again = health.down(REGISTRY)
    assert again is not down and str(again) == str(down)  # a fresh error each time
    assert health.down("other.test") is None  # per registry


def test_an_answer_lifts_it_and_ends_the_silence(health: RegistryHealth, clock: Clock) -> None:
    sent = clock.now
    clock.now += 25
    assert health.no_answer(REGISTRY, sent, "timeout") is not None  # one 25 s wait, no answer
    health.answered(REGISTRY)
    assert health.down(REGISTRY) is None and health.silence(REGISTRY) is None


def test_an_answer_to_another_request_shortens_the_silence(
    health: RegistryHealth, clock: Clock
) -> None:
    sent = clock.now
    clock.now += 50
    health.answered(REGISTRY)  # a request sent later got an answer
    clock.now += 10
    assert health.no_answer(REGISTRY, sent, "timeout") is None  # silent 10 s, not 60


def test_a_silence_restarts_after_a_while_with_no_request_failing(
    health: RegistryHealth, clock: Clock
) -> None:
    """A failure long ago, then nothing sent to it for a while (the run was busy elsewhere):
    a new failure does not make it down at once."""
    assert health.no_answer(REGISTRY, clock.now, "connection reset") is None
    clock.now += 600
    assert health.no_answer(REGISTRY, clock.now - 0.1, "connection reset") is None
    assert health.down(REGISTRY) is None


def test_down_after_is_at_least_one_requests_whole_backoff() -> None:
    assert down_after_for(RetryPolicy(base_delay=0.05)) == DOWN_AFTER_MIN
    assert down_after_for(RetryPolicy(base_delay=0.5)) == DOWN_AFTER_MIN  # 15.5 s of backoff
    # 5 + 10 + 20 + 30 + 30 (capped): an operator riding out longer restarts keeps doing so
    assert down_after_for(RetryPolicy(base_delay=5.0)) == 95.0
