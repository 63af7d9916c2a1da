"""The end-of-run check of the `.sig` write protocol (see hangar.attachments.writer): once no
other writer's PUT based on an older check can still land, every tag this run changed is
checked (one HEAD), our change merged back where it went missing, and those rewrites checked
the same way. A change that cannot be confirmed fails its line.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Literal

from hangar import output
from hangar.attachments.merge import Change, TagMerger
from hangar.errors import HangarError
from hangar.registry.errors import (
    AuthenticationError,
    RegistryDownError,
    RegistryError,
    RegistryTimeoutError,
    ServerError,
    UnreachableError,
)

# `confirm` waits the freshness bound after our last write, plus twice the slowest PUT seen
# (the registry's own delay in applying a write), at least SETTLE_MIN, at most SETTLE_MAX.
SETTLE_MIN = 0.3
SETTLE_MAX = 10.0
# Rounds of confirm that may rewrite; a last one only checks.
CONFIRM_ROUNDS = 3
# A final check that meets an unavailable registry (refused, 5xx, timeouts after the client's
# retries) says nothing about our signature: it is tried again, with backoff, for this long
# before the line fails. (A run whose last images failed fast in an outage would otherwise
# reach its final check inside the same outage.)
CONFIRM_PATIENCE = 30.0
CONFIRM_BACKOFF_MAX = 5.0
# A 401 there is a bearer token that expired between its renewal and its use (short-lived
# tokens on a busy registry): it says nothing about our signature either. Credentials that are
# really refused still fail the line, once the patience is spent.
_UNAVAILABLE = (UnreachableError, ServerError, RegistryTimeoutError, AuthenticationError)


class FinalCheck:
    """Confirms the changes `merger` made, `concurrency` tags at a time."""

    def __init__(self, merger: TagMerger, concurrency: int = 8) -> None:
        self.merger = merger
        self.gate = asyncio.Semaphore(max(1, concurrency))
        # The settle time of the first round (None: wait for the last write, as later rounds)
        self.settle_each: float | None = None

    async def run(self, written: Iterable[list[Change]]) -> list[str]:
        """Check every tag in `written` (batches of the changes this run made) once more,
        after other writers' PUTs based on a check made before ours have had time to land;
        merge ours back where one dropped it, and check those rewrites the same way. Returns
        the list lines whose change could not be confirmed (each error is logged).
        """
        lost: list[str] = []
        pending: list[Change] = []
        # Each tag is checked once the settle time has passed since our own write of it: the
        # tags written early in the run are checked at once, while the last ones settle.
        # (Every write of the run is done: the settle time is final, as for one wait after
        # the last write.)
        self.settle_each = self._settle_time()
        for batch in written:
            lost_now, rewritten = await self._confirm_round(batch, rewrite=True)
            self.settle_each = None  # a later batch is read once the earlier ones settled
            lost += lost_now
            pending += rewritten
        for round_number in range(1, CONFIRM_ROUNDS + 1):
            if not pending:
                break
            await self._settle()
            final = round_number == CONFIRM_ROUNDS
            lost_now, pending = await self._confirm_round(pending, rewrite=not final)
            lost += lost_now
        return lost

    async def _confirm_round(
        self, items: list[Change], *, rewrite: bool
    ) -> tuple[list[str], list[Change]]:
        """Check `items`; returns the lines lost and the items rewritten (to check again).
        Items the registry could not answer for are checked again until CONFIRM_PATIENCE."""
        lost: list[str] = []
        rewritten: list[Change] = []
        patience = time.monotonic() + CONFIRM_PATIENCE
        attempt = 0
        while items:
            outcomes = await asyncio.gather(
                *(self._confirm_one(item, rewrite=rewrite) for item in items)
            )
            pairs = list(zip(items, outcomes, strict=True))
            lost += [item.line for item, outcome in pairs if outcome == "lost"]
            lost += _gone(pairs)
            pairs = [(item, outcome) for item, outcome in pairs if outcome != "gone"]
            rewritten += [item for item, outcome in pairs if outcome == "rewritten"]
            items = [item for item, outcome in pairs if isinstance(outcome, RegistryError)]
            attempt += 1
            delay = min(self.merger.write_policy.delay(attempt), CONFIRM_BACKOFF_MAX)
            if items and time.monotonic() + delay >= patience:
                for item, outcome in pairs:
                    if isinstance(outcome, RegistryError):
                        output.error(f"{item.sig_ref}: {outcome}")
                        lost.append(item.line)
                break
            if items:
                output.debug(f"confirm: the registry did not answer; again in {delay:.2f}s")
                await asyncio.sleep(delay)
        return lost, rewritten

    def _settle_time(self) -> float:
        """How long after our write of a tag another hangar's write, based on a check of the
        tag made before ours landed, would be visible (the freshness bound, plus the registry's
        own delay)."""
        merger = self.merger
        return min(max(merger.fresh_for() + 2 * merger.slowest_put, SETTLE_MIN), SETTLE_MAX)

    async def _settle(self) -> None:
        """Wait the settle time after our last write (before a round that checks rewrites)."""
        wait = self.merger.last_write + self._settle_time() - time.monotonic()
        if wait > 0:
            output.debug(f"confirm: waiting {wait:.2f}s for concurrent writes to land")
            await asyncio.sleep(wait)

    async def _settled(self, item: Change) -> None:
        """The first round: wait until the settle time has passed since our write of `item`
        (its answer; the run's last write when it is not known)."""
        if self.settle_each is None:
            await self._settle()
            return
        written = item.written_at or self.merger.last_write
        wait = written + self.settle_each - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    async def _confirm_one(
        self, item: Change, *, rewrite: bool
    ) -> Literal["ok", "rewritten", "lost", "gone"] | RegistryError:
        """The item's verdict, or the error of a registry that could not answer (to retry)."""
        writes = item.writes
        if self.settle_each is not None:
            await self._settled(item)
        async with self.gate:
            try:
                head = await self.merger.store.head_manifest(item.sig_ref)
                if (head[0] if head else "") == item.manifest_digest:
                    return "ok"  # as we left it (for a deleted tag: still absent)
                output.debug(f"{item.sig_ref}: confirm: the tag moved on, checking our {item.what}")
                async with self.merger.locks.hold(item.lock_key):
                    if rewrite:
                        await self.merger.merge(item)
                    elif not await self._still_there(item):
                        raise item.undone(CONFIRM_ROUNDS)
            except RegistryDownError:
                return "gone"  # no answer for long: nothing to wait for (registry/health.py)
            except _UNAVAILABLE as exc:
                return exc
            except HangarError as exc:  # a registry error too: the change is not confirmed
                output.error(f"{item.sig_ref}: {exc}")
                return "lost"
        return "rewritten" if item.writes > writes else "ok"

    async def _still_there(self, item: Change) -> bool:
        read = await self.merger.read(item.sig_ref)
        attachment = item.tag_format.parse(read.manifest.data) if read.manifest else None
        return await item.in_place(read, attachment, first=False)


def _gone(pairs: Sequence[tuple[Change, object]]) -> list[str]:
    """The lines of changes on registries that stopped answering: lost at once, said once
    per registry (the registry's going down was logged when it happened)."""
    gone = [item for item, outcome in pairs if outcome == "gone"]
    what = gone[0].what if gone else ""
    for registry, count in Counter(item.sig_ref.registry for item in gone).items():
        output.error(
            f"the end-of-run check cannot confirm {count} {what}(s) written to registry "
            f"{registry}, which stopped answering: their lines are in the failed file"
        )
    return [item.line for item in gone]
