"""Running the parts of one line's work at the same time (the targets of an image)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def all_of(jobs: list[Coroutine[Any, Any, T]]) -> list[T]:
    """The results of `jobs`, run at once, in their order. The first to raise cancels the
    others (none is left running) and its exception is raised as it is, not wrapped in an
    ExceptionGroup: callers and the runner see the same errors as from a plain await."""
    if len(jobs) == 1:
        return [await jobs[0]]
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(job) for job in jobs]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]
