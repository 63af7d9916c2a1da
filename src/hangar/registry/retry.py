"""When to retry a registry request, and how long to wait first.

Exponential backoff with full jitter, so that thousands of jobs that failed together do not
come back together; a server's `Retry-After` wins when it is given, within a cap. One
`RetryBudget` per operation: every request of it (an upload's POST and PUT, a restarted
upload) draws on the same retries, so failures never multiply across nested loops.
"""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

MAX_DELAY = 30.0
DEFAULT_BASE_DELAY = 0.5
# Seconds; the first backoff step (each later one doubles, up to MAX_DELAY). Tests set it low
# to stay fast; an operator may raise it to ride out longer registry restarts. A server's
# Retry-After is honoured as given, whatever this says.
BASE_DELAY_ENV = "HANGAR_RETRY_BASE_DELAY"

# 501 and 505 say the server will never do it: retrying cannot help.
_NOT_RETRYABLE_5XX = frozenset({501, 505})


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 5  # attempts after the first one
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = MAX_DELAY

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        ceiling = min(self.base_delay * (2 ** (attempt - 1)), self.max_delay)
        # Full jitter, but never less than half the step: a retry that comes back at once is
        # likely to meet the same overload.
        return random.uniform(ceiling / 2, ceiling)


class RetryBudget:
    """The retries one operation may still make, and the backoff between them."""

    def __init__(
        self, policy: RetryPolicy, *, retries: int | None = None, deadline: float | None = None
    ) -> None:
        self.policy = policy
        self.retries = policy.retries if retries is None else retries
        # time.monotonic() after which no retry may start (the caller's precondition is old).
        self.deadline = deadline
        self.spent = 0

    @property
    def attempts(self) -> int:
        """Attempts made so far, counting the one under way."""
        return self.spent + 1

    def take(self, retry_after: float | None = None) -> float | None:
        """Spend one retry: the seconds to wait before it, or None when none is left (or it
        would start past the deadline; the caller then has the last attempt's failure)."""
        if self.spent >= self.retries:
            return None
        delay = self.policy.delay(self.spent + 1, retry_after)
        if self.deadline is not None and time.monotonic() + delay > self.deadline:
            return None
        self.spent += 1
        return delay


def base_delay_from_env(default: float = DEFAULT_BASE_DELAY) -> float:
    """The backoff base from $HANGAR_RETRY_BASE_DELAY (seconds, 0 to MAX_DELAY), else `default`.

    A value that is not such a number is ignored (the default applies) rather than failing a
    run over a tuning knob.
    """
    text = os.environ.get(BASE_DELAY_ENV, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        return default
    if not math.isfinite(value) or not 0.0 <= value <= MAX_DELAY:
        return default
    return value


def retryable_status(status: int) -> bool:
    """5xx (except those that cannot change) and 429 Too Many Requests."""
    if status == 429 or status == 408:
        return True
    return 500 <= status < 600 and status not in _NOT_RETRYABLE_5XX


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # "-0000" and obsolete formats: HTTP dates are always UTC
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(when.timestamp() - current, 0.0)
