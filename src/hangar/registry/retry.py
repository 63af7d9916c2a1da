"""When to retry a registry request, and how long to wait first.

Exponential backoff with full jitter, so that thousands of jobs that failed together do not
come back together; a server's `Retry-After` wins when it is given, within a cap.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

MAX_DELAY = 30.0

# 501 and 505 say the server will never do it: retrying cannot help.
_NOT_RETRYABLE_5XX = frozenset({501, 505})


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 5  # attempts after the first one
    base_delay: float = 0.5
    max_delay: float = MAX_DELAY

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        ceiling = min(self.base_delay * (2 ** (attempt - 1)), self.max_delay)
        # Full jitter, but never less than half the step: a retry that comes back at once is
        # likely to meet the same overload.
        return random.uniform(ceiling / 2, ceiling)


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
