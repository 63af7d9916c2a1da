"""The merge loop of one `.sig` tag: read it, let a Change judge and edit what was read,
check that the tag still holds that, write; and the freshness bound no write may pass.

Why each step is there is told in hangar.attachments.writer, the protocol as a whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from hangar import output
from hangar.attachments.locks import TagLocks
from hangar.errors import HangarError
from hangar.manifest import OCI_MANIFEST
from hangar.reference import Reference
from hangar.registry.client import Manifest
from hangar.registry.errors import (
    NotFoundError,
    RegistryError,
    RegistryTimeoutError,
    ServerError,
    StaleRequestError,
    UnreachableError,
)
from hangar.registry.retry import RetryPolicy, base_delay_from_env
from hangar.sigstore.attachment import Attachment, parse_attachment

MAX_MERGE_ATTEMPTS = 8
# Before merging again after losing a race, wait a random moment (up to this, doubling per
# attempt, capped at 1 s), so that writers who collided do not collide again in lockstep.
MERGE_JITTER = 0.02
# distribution's filesystem storage rewrites a blob's link file in place (truncate, then
# write) each time the blob is uploaded again, even with the same bytes. A manifest PUT that
# checks that blob at that instant is refused with 400 MANIFEST_BLOB_UNKNOWN / DIGEST_INVALID.
# Writers of one tag do upload identical blobs (two keys signing one digest in the same second
# write the same payload bytes), so this answer is a race to retry, not a verdict.
BLOB_RACE_CODES = frozenset({"MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN", "DIGEST_INVALID"})
# A check of a tag (its read, or a HEAD) is fresh for CHECK_FRESH_RTTS typical round trips to
# the registry (the lower quartile of recent tag reads), and at least CHECK_FRESH_MIN seconds,
# counted from when it was sent; no PUT is sent on a check older than that. This bounds how
# long after its check any hangar writer's PUT can land, which is what `confirm` waits out.
# (A process stalled for seconds between its check and its write was seen to wipe three other
# keys' signatures before this bound existed.) A first write follows its read by four or five
# round trips (read, existing config, config upload), hence the margin; on a loaded registry
# (the lower quartile well under the median) a write may need a second check first.
CHECK_FRESH_MIN = 0.25
CHECK_FRESH_RTTS = 8
ROUND_TRIP_SAMPLES = 64
# A check goes out beside the uploads while those (their upper quartile, plus a round trip)
# take less than this share of a check's freshness; else after them.
EARLY_CHECK_SHARE = 0.5


class SignatureStore(Protocol):
    """The registry operations the protocol uses; hangar.registry.client.RegistryClient."""

    async def get_manifest(self, ref: Reference) -> Manifest:
        """The manifest; NotFoundError for a 404 in any dialect."""
        ...

    async def head_manifest(self, ref: Reference) -> tuple[str, str] | None:
        """(digest, media type), or None when the registry does not know the reference."""
        ...

    async def get_blob(
        self, registry: str, repository: str, digest: str, *, max_size: int
    ) -> bytes: ...

    async def push_blob(
        self, registry: str, repository: str, data: bytes, *, check_exists: bool = True
    ) -> str: ...

    async def put_manifest(
        self, ref: Reference, data: bytes, media_type: str, *, deadline: float | None = None
    ) -> str:
        """PUT; StaleRequestError when `deadline` (time.monotonic()) passed before sending."""
        ...

    async def delete_manifest(
        self, ref: Reference, digest: str, *, deadline: float | None = None
    ) -> None:
        """DELETE by digest (a tag that moved on stays); NotFoundError when gone already,
        DeletesRefusedError where the registry does not delete, StaleRequestError as PUT."""
        ...


@dataclass(frozen=True, slots=True)
class TagRead:
    """What a tag held, and when the request that said so was sent."""

    manifest: Manifest | None
    # time.monotonic() after which no write may rely on this read: set when the request is
    # sent, from round trips measured before it, so that a stall during this very request
    # (a frozen process) cannot stretch its own bound.
    fresh_until: float

    @property
    def digest(self) -> str | None:
        return self.manifest.digest if self.manifest else None


class _WriteFailed(Exception):
    """The PUT of a merge failed (5xx, connection, timeout) within its check's freshness."""

    def __init__(self, error: RegistryError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class Edit:
    """What one attempt of a change writes: the new manifest (None: delete the tag, nothing
    remains), once `uploads` (the blobs it refers to) are done."""

    manifest: bytes | None
    uploads: tuple[Awaitable[str], ...] = ()


class TagFormat:
    """What a tag written through the protocol holds: how to read it, and its media type for
    the PUT. The `.sig` attachment (SIG_TAG) is the default; a referrers index is another."""

    def __init__(self, media_type: str, parse: Callable[[bytes], Any]) -> None:
        self.media_type = media_type
        self.parse = parse


SIG_TAG = TagFormat(OCI_MANIFEST, parse_attachment)


class Change(Protocol):
    """One edit of a `.sig` tag (add a signature, drop some layers), applied by the merge loop
    to whatever the tag holds at each fresh read, never to an older one. (A change of another
    kind of tag, a referrers index, reads it through its own `tag_format`.)"""

    tag_format: TagFormat  # SIG_TAG for a `.sig` tag

    @property
    def sig_ref(self) -> Reference: ...

    @property
    def line(self) -> str:
        """The list line, for the failed file."""
        ...

    what: str  # "signature": for messages ("our signature is missing")
    manifest_digest: str  # the tag's digest after our last write ("" once we deleted it)
    writes: int  # writes made (PUTs, DELETEs)
    written_at: float  # time.monotonic() when the last of them was answered (the final check)

    @property
    def lock_key(self) -> str: ...

    async def in_place(self, read: TagRead, attachment: Attachment | None, *, first: bool) -> bool:
        """True when the tag, as read, needs no write for this change (it is there already,
        or there is nothing to do). `first`: the caller judged this read already."""
        ...

    async def edit(
        self, read: TagRead, attachment: Attachment | None, *, first: bool, blob_race: bool
    ) -> Edit:
        """The write that applies the change to the tag as read (in_place was False)."""
        ...

    async def after_blob_race(self) -> None:
        """A PUT was refused on a blob another writer was re-linking: make sure ours exist."""
        ...

    def gave_up(self, attempts: int) -> HangarError:
        """The error when the tag kept changing under `attempts` writes."""
        ...

    def undone(self, rounds: int) -> HangarError:
        """The error when other writers kept undoing the change through `rounds` rounds of the
        final check."""
        ...


class TagMerger:
    """Applies Changes to `.sig` tags through `store`, one writer per tag at a time (`locks`),
    and keeps what the final check needs: recent round trips, the last and slowest writes."""

    def __init__(self, store: SignatureStore, *, write_policy: RetryPolicy | None = None) -> None:
        self.store = store
        self.locks = TagLocks()
        self.last_write = 0.0  # time.monotonic() of our last PUT's answer
        self.slowest_put = 0.0  # seconds
        self.round_trips: deque[float] = deque(maxlen=ROUND_TRIP_SAMPLES)
        # How long recent writes waited for their uploads once the tag was read (whether a
        # check sent beside them stays fresh).
        self.upload_waits: deque[float] = deque(maxlen=ROUND_TRIP_SAMPLES)
        # Backoff between merges whose PUT failed (the client retries a PUT only while its
        # check is fresh): the client's policy, $HANGAR_RETRY_BASE_DELAY included.
        self.write_policy = write_policy or RetryPolicy(base_delay=base_delay_from_env())

    async def merge(self, change: Change, *, known: TagRead | None = None) -> None:
        """Apply `change` to its tag until a write of it lands, or the tag needs none: read,
        let the change judge and edit what was read, check the tag is still that, write.

        `known`: the tag as the caller just read it (its first attempt needs no other read).
        After a write, `change.manifest_digest` is the tag's digest ("" when deleted).
        Gives up after MAX_MERGE_ATTEMPTS lost races, or when the write keeps failing.
        """
        sig_ref = change.sig_ref
        blob_race: RegistryError | None = None  # the last race lost was on a blob
        lost_races = write_failures = attempt = 0
        while lost_races < MAX_MERGE_ATTEMPTS:
            first = known is not None and attempt == 0  # the caller judged this content
            if attempt > 0:
                await asyncio.sleep(random.uniform(0, min(MERGE_JITTER * 2**attempt, 1.0)))
            attempt += 1
            read = known if first and known else await self.read(sig_ref)
            attachment = change.tag_format.parse(read.manifest.data) if read.manifest else None
            if await change.in_place(read, attachment, first=first):
                return
            if known is None and attempt == 1:  # the confirm pass: ours went missing
                output.debug(f"{sig_ref}: confirm: our {change.what} is missing, writing it again")
            try:
                result = await self._write_edit(
                    change, read, attachment, first=first, blob_race=blob_race
                )
            except _WriteFailed as failed:
                write_failures += 1
                if write_failures > self.write_policy.retries:
                    raise failed.error from None
                delay = self.write_policy.delay(write_failures)
                output.debug(f"{sig_ref}: our write failed, checking again in {delay:.2f}s")
                await asyncio.sleep(delay)
                continue
            except RegistryError as exc:
                if exc.status != 400 or exc.code not in BLOB_RACE_CODES:
                    raise
                blob_race, lost_races = exc, lost_races + 1
                output.debug(f"{sig_ref}: a blob changed under our write, again ({attempt})")
                await change.after_blob_race()
                continue
            if result == "changed":
                blob_race, lost_races = None, lost_races + 1
                output.debug(f"{sig_ref}: changed before our write, merging again ({attempt})")
                continue
            if result == "stale":
                blob_race, lost_races = None, lost_races + 1
                output.debug(f"{sig_ref}: the check before our write is stale, merging again")
                continue
            change.writes += 1
            change.manifest_digest = result
            change.written_at = self.last_write
            return
        if blob_race is not None:
            raise blob_race  # the registry's own words: a blob it does not find
        raise change.gave_up(MAX_MERGE_ATTEMPTS)

    async def _write_edit(
        self,
        change: Change,
        read: TagRead,
        attachment: Attachment | None,
        *,
        first: bool,
        blob_race: RegistryError | None,
    ) -> str | Literal["changed", "stale"]:
        """Write the change's edit of what `read` found; the new digest ("" for a delete),
        or why not.

        The check the write relies on: the read itself on a first attempt into an existing tag;
        a HEAD after a lost race and before creating a tag (a 404 may be false), sent beside
        the uploads (it does not depend on them, and the PUT still waits for both). Either is
        checked again if the uploads took too long."""
        sig_ref = change.sig_ref
        edit = await change.edit(read, attachment, first=first, blob_race=blob_race is not None)
        check = read
        if not first or read.manifest is None:
            check = await self._check_beside(sig_ref, edit.uploads)
        else:
            await asyncio.gather(*edit.uploads)
        if self._too_old(check):
            # The uploads took long (retries, a loaded registry): check again rather than
            # send a write that the deadline would stop, or that lands on a stale read.
            output.debug(f"{sig_ref}: the check before our write is stale, checking again")
            check = await self.read_head(sig_ref)
        if check.digest != read.digest:
            return "changed"
        if edit.manifest is None:
            return await self._delete(sig_ref, check)
        return await self._put(sig_ref, edit.manifest, check, change.tag_format.media_type)

    async def _check_beside(
        self, sig_ref: Reference, uploads: tuple[Awaitable[str], ...]
    ) -> TagRead:
        """The HEAD a write needs, sent beside the uploads when it would still be fresh once
        they are done (recent uploads took well under its freshness), else after them: a
        check that went stale waiting is one more HEAD (a loaded registry's slow uploads)."""
        early = self._check_fits_beside_uploads()
        head = asyncio.ensure_future(self.read_head(sig_ref)) if early else None
        waited = time.monotonic()
        try:
            await asyncio.gather(*uploads)
        except BaseException:
            if head is not None:
                head.cancel()
                with contextlib.suppress(asyncio.CancelledError, HangarError):
                    await head
            raise
        self.upload_waits.append(time.monotonic() - waited)
        return await head if head is not None else await self.read_head(sig_ref)

    def _check_fits_beside_uploads(self) -> bool:
        if len(self.upload_waits) < 4:
            return True
        slow = statistics.quantiles(self.upload_waits, n=4)[2]  # the upper quartile
        return slow + self._typical_round_trip() < EARLY_CHECK_SHARE * self.fresh_for()

    def _too_old(self, check: TagRead) -> bool:
        """Would a PUT sent now (taking a typical round trip) start past the check's
        freshness?"""
        return time.monotonic() + self._typical_round_trip() > check.fresh_until

    async def _put(
        self, sig_ref: Reference, data: bytes, check: TagRead, media_type: str = OCI_MANIFEST
    ) -> str | Literal["stale"]:
        deadline = check.fresh_until
        started = time.monotonic()
        try:
            digest = await self.store.put_manifest(sig_ref, data, media_type, deadline=deadline)
        except StaleRequestError:
            return "stale"
        except (ServerError, UnreachableError, RegistryTimeoutError) as exc:
            # Retried only while the check was fresh: the merge loop checks again and retries.
            raise _WriteFailed(exc) from exc
        self.last_write = time.monotonic()
        self.slowest_put = max(self.slowest_put, self.last_write - started)
        return digest

    async def _delete(self, sig_ref: Reference, check: TagRead) -> Literal["", "changed", "stale"]:
        """DELETE the manifest `check` found, by digest: a tag another writer moved on in the
        meantime is not touched (the registry only untags what names that digest)."""
        assert check.digest is not None
        started = time.monotonic()
        try:
            await self.store.delete_manifest(sig_ref, check.digest, deadline=check.fresh_until)
        except StaleRequestError:
            return "stale"
        except NotFoundError:
            return "changed"  # gone already: read again to see what is there
        except (ServerError, UnreachableError, RegistryTimeoutError) as exc:
            raise _WriteFailed(exc) from exc
        self.last_write = time.monotonic()
        self.slowest_put = max(self.slowest_put, self.last_write - started)
        return ""

    async def read(self, sig_ref: Reference) -> TagRead:
        sent = time.monotonic()
        fresh_until = sent + self.fresh_for()
        try:
            current: Manifest | None = await self.store.get_manifest(sig_ref)
        except NotFoundError:
            current = None  # "not signed yet", whatever the registry's 404 dialect
        self.round_trips.append(time.monotonic() - sent)
        return TagRead(current, fresh_until)

    async def read_head(self, sig_ref: Reference) -> TagRead:
        """A HEAD: the digest only (a Manifest without bytes)."""
        sent = time.monotonic()
        fresh_until = sent + self.fresh_for()
        head = await self.store.head_manifest(sig_ref)
        self.round_trips.append(time.monotonic() - sent)
        return TagRead(Manifest(b"", head[1], head[0]) if head else None, fresh_until)

    def fresh_for(self) -> float:
        """How long a check of a tag may be trusted for a write (see CHECK_FRESH_RTTS)."""
        return max(CHECK_FRESH_MIN, CHECK_FRESH_RTTS * self._typical_round_trip())

    def _typical_round_trip(self) -> float:
        """The lower quartile of recent tag reads. Not the median: a process that is stalled
        again and again (swapped out, stopped) sees many of its round trips stretched by the
        stalls, and a bound grown from those would let its stale writes through."""
        samples = self.round_trips
        if len(samples) < 2:
            return samples[0] if samples else 0.0
        return statistics.quantiles(samples, n=4)[0]
