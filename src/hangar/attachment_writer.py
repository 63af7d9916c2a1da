"""The `.sig` write protocol: add a signature to a tag that other writers share, and check at
the end of the run that it is still there.

A `.sig` tag is a read-modify-write target shared with other writers (other hangar runs, cosign,
skopeo), and distribution has no conditional PUT, so a lost update is prevented as well as the
API allows:

- writes to one tag are serialized inside a run (TagLocks);
- the tag's read is the check the write is based on: the payload is uploaded while the tag is
  read (it does not depend on the tag), the config and the manifest follow within a few round
  trips, and no PUT is sent on a check older than `fresh_for()` (the merge starts again);
- a 404 on the read is confirmed by a HEAD just before the PUT: a false 404 (a lagging
  replica, a confused proxy) must never make us write a fresh attachment over a real one;
  while most tags are new, the config a new tag gets is uploaded beside the read too;
- after losing a race (the tag changed, the check went stale, a write failed) the merge loop
  reads again and checks the tag with a HEAD just before the PUT;
- another writer can still overwrite ours after our PUT (its check came before our PUT, its PUT
  after it), but only within its own bounded check-to-write window. So at the end of the run
  (`confirm`), once that window has passed since our last write, every tag written is checked
  (one HEAD), ours merged back where it went missing, and those rewrites checked the same way.
  A signature that cannot be confirmed is reported, and its line fails.

In the common case (no `.sig` yet, or one this key has not signed) a signature costs the tag
read, two blob uploads (POST + PUT each), the PUT and the final HEAD, plus the 404's HEAD for a
new tag and the existing config (and payloads, to see whether this key signed already) for an
existing one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

from hangar import output
from hangar.attachment_blobs import fetch_layer_blobs, missing_layers_error, unreadable_warning
from hangar.errors import HangarError
from hangar.manifest import OCI_MANIFEST
from hangar.reference import Reference
from hangar.registry.client import Manifest
from hangar.registry.errors import (
    AuthenticationError,
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    RegistryTimeoutError,
    ServerError,
    StaleRequestError,
    TooLargeError,
    UnreachableError,
)
from hangar.registry.retry import RetryPolicy, base_delay_from_env
from hangar.sigstore.attachment import (
    MAX_SIGNATURE_BLOB,
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING_MEDIA_TYPE,
    Attachment,
    NewSignature,
    SignatureLayer,
    append_signatures,
    parse_attachment,
)
from hangar.sigstore.keys import Verifier
from hangar.sigstore.verify import has_signature
from hangar.write_journal import WriteJournal, Written

Outcome = Literal["signed", "already-signed"]
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
# `confirm` waits the freshness bound after our last write, plus twice the slowest PUT seen
# (the registry's own delay in applying a write), at least SETTLE_MIN, at most SETTLE_MAX.
SETTLE_MIN = 0.3
SETTLE_MAX = 10.0
# Rounds of confirm that may rewrite; a last one only checks.
CONFIRM_ROUNDS = 3
# Records read back from the journal at a time by `confirm` (memory stays flat).
CONFIRM_BATCH = 2048
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
# Payload blobs of existing layers fetched at once when looking for this key's signature.
PAYLOAD_FETCHES = 8


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


class TagLocks:
    """One asyncio lock per `.sig` tag, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


@dataclass(frozen=True, slots=True)
class _Read:
    """What a tag held, and when the request that said so was sent."""

    manifest: Manifest | None
    # time.monotonic() after which no write may rely on this read: set when the request is
    # sent, from round trips measured before it, so that a stall during this very request
    # (a frozen process) cannot stretch its own bound.
    fresh_until: float

    @property
    def digest(self) -> str | None:
        return self.manifest.digest if self.manifest else None


@dataclass(frozen=True, slots=True)
class _Inspection:
    signed: bool  # this key already signed the digest as the identity
    missing: HangarError | None  # layers whose blob the registry lacks: it refuses our write


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


class Change(Protocol):
    """One edit of a `.sig` tag (add a signature, drop some layers), applied by the merge loop
    to whatever the tag holds at each fresh read, never to an older one."""

    @property
    def sig_ref(self) -> Reference: ...

    @property
    def line(self) -> str:
        """The list line, for the failed file."""
        ...

    what: str  # "signature": for messages ("our signature is missing")
    manifest_digest: str  # the tag's digest after our last write ("" once we deleted it)
    writes: int  # writes made (PUTs, DELETEs)

    @property
    def lock_key(self) -> str: ...

    async def in_place(self, read: _Read, attachment: Attachment | None, *, first: bool) -> bool:
        """True when the tag, as read, needs no write for this change (it is there already,
        or there is nothing to do). `first`: the caller judged this read already."""
        ...

    async def edit(
        self, read: _Read, attachment: Attachment | None, *, first: bool, blob_race: bool
    ) -> Edit:
        """The write that applies the change to the tag as read (in_place was False)."""
        ...

    async def after_blob_race(self) -> None:
        """A PUT was refused on a blob another writer was re-linking: make sure ours exist."""
        ...

    def gave_up(self) -> HangarError:
        """The error when the tag kept changing under MAX_MERGE_ATTEMPTS writes."""
        ...

    def undone(self) -> HangarError:
        """The error when other writers kept undoing the change through every confirm round."""
        ...


async def already_signed(
    store: SignatureStore,
    sig_ref: Reference,
    attachment: Attachment,
    *,
    digest: str,
    identity: str,
    key: Verifier,
) -> bool:
    """Does a layer already sign `digest` as `identity` with `key`? (cosign's idempotency.)

    Fetches each distinct payload that could be such a signature, a few at a time; a payload
    that cannot be read is another writer's layer (kept as it is when we merge), not a reason
    to fail. The verdict itself is attachment.has_signature.
    """
    candidates = [layer for layer in attachment.layers if _may_be_signature(layer)]
    digests = list(dict.fromkeys(layer.digest for layer in candidates))
    gate = asyncio.Semaphore(PAYLOAD_FETCHES)

    async def fetch(layer_digest: str) -> bytes | None:
        async with gate:
            try:
                return await store.get_blob(
                    sig_ref.registry, sig_ref.repository, layer_digest, max_size=MAX_SIGNATURE_BLOB
                )
            except (NotFoundError, DigestMismatchError, TooLargeError) as exc:
                output.debug(f"{sig_ref}: layer {layer_digest} not checked: {exc}")
                return None

    payloads = dict(zip(digests, await asyncio.gather(*map(fetch, digests)), strict=True))
    return has_signature(
        ((layer, payloads[layer.digest]) for layer in candidates),
        digest=digest,
        identity=identity,
        key=key,
    )


def _may_be_signature(layer: SignatureLayer) -> bool:
    return (
        layer.media_type == SIMPLESIGNING_MEDIA_TYPE
        and layer.signature is not None
        and layer.size <= MAX_SIGNATURE_BLOB
    )


def _has_layer(attachment: Attachment, item: Written) -> bool:
    annotation = base64.b64encode(item.new.signature).decode()
    layer_digest = item.new.digest
    return any(
        layer.digest == layer_digest and layer.annotations.get(SIGNATURE_ANNOTATION) == annotation
        for layer in attachment.layers
    )


class _AddSignature:
    """The change `sign` makes: add `item.new` to the tag (a Change; see AttachmentWriter)."""

    def __init__(
        self,
        writer: AttachmentWriter,
        item: Written,
        payload: Awaitable[str] | None,
        fresh_config: Awaitable[str] | None,
    ) -> None:
        self.writer = writer
        self.item = item
        self.payload = payload  # the payload upload, to finish before a PUT refers to it
        self.fresh_config = fresh_config  # a new tag's config, uploaded beside the read
        self.equivalent = False  # the tag turned out to hold this key's signature already
        self.what = "signature"

    @property
    def sig_ref(self) -> Reference:
        return self.item.sig_ref

    @property
    def line(self) -> str:
        return self.item.line

    @property
    def lock_key(self) -> str:
        return self.item.lock_key

    @property
    def manifest_digest(self) -> str:
        return self.item.manifest_digest

    @manifest_digest.setter
    def manifest_digest(self, value: str) -> None:
        self.item.manifest_digest = value

    @property
    def writes(self) -> int:
        return self.item.writes

    @writes.setter
    def writes(self, value: int) -> None:
        self.item.writes = value

    async def in_place(self, read: _Read, attachment: Attachment | None, *, first: bool) -> bool:
        if read.manifest and attachment and _has_layer(attachment, self.item):
            self.item.manifest_digest = read.manifest.digest
            return True  # already there (an earlier attempt landed)
        if not first and attachment and await self.writer._equivalent(self.item, attachment):
            # What we first read was not the whole story (a false 404, a concurrent
            # writer with this key): the key's signature is there, a second one is noise.
            self.equivalent = True
            return True
        return False

    async def edit(
        self, read: _Read, attachment: Attachment | None, *, first: bool, blob_race: bool
    ) -> Edit:
        """After a blob race the config is checked before its upload (an upload of existing
        bytes would rewrite the link another writer's PUT is checking)."""
        store, sig_ref = self.writer.store, self.item.sig_ref
        config = None
        if attachment is not None:
            config = await store.get_blob(
                sig_ref.registry,
                sig_ref.repository,
                attachment.config["digest"],
                max_size=MAX_SIGNATURE_BLOB,
            )
        manifest_bytes, config_bytes = append_signatures(attachment, config, [self.item.new])
        config_upload: Awaitable[str]
        if attachment is None and first and self.fresh_config is not None:
            config_upload = self.fresh_config  # the same bytes, uploaded beside the read
        else:  # the config lists the new payload digest, so it is new content too
            config_upload = store.push_blob(
                sig_ref.registry, sig_ref.repository, config_bytes, check_exists=blob_race
            )
        uploads = (config_upload, *([self.payload] if self.payload is not None else []))
        return Edit(manifest_bytes, uploads)

    async def after_blob_race(self) -> None:
        # Ours must exist; upload it only if missing, so its link is not rewritten.
        sig_ref = self.item.sig_ref
        await self.writer.store.push_blob(
            sig_ref.registry, sig_ref.repository, self.item.new.payload
        )

    def gave_up(self) -> HangarError:
        sig_ref = self.item.sig_ref
        return HangarError(
            f"could not write the signature of {sig_ref.name} to tag {sig_ref.tag}: it kept "
            f"changing under {MAX_MERGE_ATTEMPTS} concurrent writes",
            hint="run the command again; signatures already written are kept",
        )

    def undone(self) -> HangarError:
        return HangarError(
            f"another writer dropped our signature {CONFIRM_ROUNDS} times",
            hint="run the same command again; it adds only what is missing",
        )


class AttachmentWriter:
    """Writes signatures into `.sig` tags through `store`, and confirms them at the end."""

    def __init__(
        self,
        store: SignatureStore,
        key: Verifier,
        *,
        force: bool = False,
        write_policy: RetryPolicy | None = None,
    ) -> None:
        self.store = store
        self.key = key  # the public key of the signer: "already signed" means by this key
        self.force = force  # add a signature even where this key already signed
        self.locks = TagLocks()
        self.journal = WriteJournal()
        self.applied: list[Change] = []  # changes made through `apply`, for `confirm`
        self.last_write = 0.0  # time.monotonic() of our last PUT's answer
        self.slowest_put = 0.0  # seconds
        self.round_trips: deque[float] = deque(maxlen=ROUND_TRIP_SAMPLES)
        # Backoff between merges whose PUT failed (the client retries a PUT only while its
        # check is fresh): the client's policy, $HANGAR_RETRY_BASE_DELAY included.
        self.write_policy = write_policy or RetryPolicy(base_delay=base_delay_from_env())
        self._outcomes = {"signed": 0, "already-signed": 0}
        self._tags = {"new": 0, "existing": 0}  # what first reads found

    # -- writing -----------------------------------------------------------------------------

    async def write(
        self, sig_ref: Reference, digest: str, identity: str, new: NewSignature, line: str = ""
    ) -> Outcome:
        """Add `new` (a signature of `digest` as `identity`) to the tag `sig_ref`, unless this
        key signed it already (never with `force`). HangarError when it cannot be written."""
        item = Written(sig_ref, digest, identity, new, line)
        async with self.locks.hold(item.lock_key):
            outcome = await self._write(item)
        self._outcomes[outcome] += 1
        return outcome

    async def _write(self, item: Written) -> Outcome:
        # Uploads that do not depend on the tag start beside its read (see _speculate).
        payload: asyncio.Future[str] | None = None
        fresh_config: asyncio.Future[str] | None = None
        if self._speculate():
            payload = asyncio.ensure_future(self._upload_payload(item))
            if self._tags["new"] >= self._tags["existing"]:
                fresh_config = asyncio.ensure_future(self._upload_fresh_config(item))
        try:
            read = await self._read(item.sig_ref)
            self._tags["new" if read.manifest is None else "existing"] += 1
            attachment = parse_attachment(read.manifest.data) if read.manifest else None
            inspection = await self._inspect(item, attachment)
            if inspection.signed:
                outcome: Outcome = "already-signed"
            else:
                if payload is None:
                    payload = asyncio.ensure_future(self._upload_payload(item))
                try:
                    merged = await self._merge_in(
                        item, known=read, payload=payload, fresh_config=fresh_config
                    )
                except RegistryError as exc:
                    # A layer blob we could not read is truly gone when the registry refuses
                    # the manifest for it (a 404 on our GET alone may be a proxy's or mirror's).
                    missing = inspection.missing
                    if missing and exc.status == 400 and exc.code in BLOB_RACE_CODES:
                        raise missing from None
                    raise
                outcome = "signed" if merged is not None else "already-signed"
        except BaseException:
            for task in (payload, fresh_config):
                if task is not None:
                    await _settle_task(task, cancel=True)
            raise
        for task in (payload, fresh_config):
            if task is not None:
                await _settle_task(task)  # an unneeded upload may fail: it changes nothing
        if outcome == "signed":
            self.journal.append(item)
        return outcome

    async def apply(self, change: Change) -> bool:
        """Apply another kind of change (see Change) through the same protocol as `write`:
        serialized per tag, merged into each fresh read, checked at the end by `confirm`.
        True when a write was made. HangarError when it cannot be made."""
        async with self.locks.hold(change.lock_key):
            writes = change.writes
            await self._merge(change)
        if change.writes == writes:
            return False
        self.applied.append(change)
        return True

    def _speculate(self) -> bool:
        """Upload the payload while the tag is read? Yes unless most tags so far were signed
        already (a re-run), where that upload would be wasted. The config a new tag would get
        goes too while most tags so far were new."""
        return self.force or self._outcomes["signed"] >= self._outcomes["already-signed"]

    async def _upload_fresh_config(self, item: Written) -> str:
        _, config = append_signatures(None, None, [item.new])
        sig_ref = item.sig_ref
        return await self.store.push_blob(
            sig_ref.registry, sig_ref.repository, config, check_exists=False
        )

    async def _upload_payload(self, item: Written) -> str:
        # A fresh payload (its timestamp, our key) is new content: no HEAD first.
        sig_ref = item.sig_ref
        return await self.store.push_blob(
            sig_ref.registry, sig_ref.repository, item.new.payload, check_exists=False
        )

    async def _merge_in(
        self,
        item: Written,
        *,
        known: _Read | None = None,
        payload: Awaitable[str] | None = None,
        fresh_config: Awaitable[str] | None = None,
    ) -> str | None:
        """Write `item.new` into the tag until a PUT of a merge holding it is made; returns
        that manifest's digest (or the tag's, when it holds ours already), or None when the tag
        turned out to hold an equivalent signature of this key.

        `known`: the tag as the caller just read it (its first attempt needs no other read);
        `payload`: the payload upload, to finish before a PUT refers to it; `fresh_config`:
        the upload of the config a new tag gets, if started already. Gives up after
        MAX_MERGE_ATTEMPTS lost races, or when the PUT keeps failing.
        """
        change = _AddSignature(self, item, payload, fresh_config)
        await self._merge(change, known=known)
        return None if change.equivalent else item.manifest_digest

    async def _merge(self, change: Change, *, known: _Read | None = None) -> None:
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
            read = known if first and known else await self._read(sig_ref)
            attachment = parse_attachment(read.manifest.data) if read.manifest else None
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
            return
        if blob_race is not None:
            raise blob_race  # the registry's own words: a blob it does not find
        raise change.gave_up()

    async def _write_edit(
        self,
        change: Change,
        read: _Read,
        attachment: Attachment | None,
        *,
        first: bool,
        blob_race: RegistryError | None,
    ) -> str | Literal["changed", "stale"]:
        """Write the change's edit of what `read` found; the new digest ("" for a delete),
        or why not.

        The check the write relies on: the read itself on a first attempt into an existing tag
        (checked again if the uploads took too long); a HEAD just before the write after a
        lost race and before creating a tag (a 404 may be false)."""
        sig_ref = change.sig_ref
        edit = await change.edit(read, attachment, first=first, blob_race=blob_race is not None)
        await asyncio.gather(*edit.uploads)
        check = read
        if not first or read.manifest is None:
            check = await self._read_head(sig_ref)
        elif self._too_old(check):
            # The uploads took long (retries, a loaded registry): check again rather than
            # send a write that the deadline would stop, or that lands on a stale read.
            output.debug(f"{sig_ref}: the check before our write is stale, checking again")
            check = await self._read_head(sig_ref)
        if check.digest != read.digest:
            return "changed"
        if edit.manifest is None:
            return await self._delete(sig_ref, check)
        return await self._put(sig_ref, edit.manifest, check)

    def _too_old(self, check: _Read) -> bool:
        """Would a PUT sent now (taking a typical round trip) start past the check's
        freshness?"""
        return time.monotonic() + self._typical_round_trip() > check.fresh_until

    async def _put(self, sig_ref: Reference, data: bytes, check: _Read) -> str | Literal["stale"]:
        deadline = check.fresh_until
        started = time.monotonic()
        try:
            digest = await self.store.put_manifest(sig_ref, data, OCI_MANIFEST, deadline=deadline)
        except StaleRequestError:
            return "stale"
        except (ServerError, UnreachableError, RegistryTimeoutError) as exc:
            # Retried only while the check was fresh: the merge loop checks again and retries.
            raise _WriteFailed(exc) from exc
        self.last_write = time.monotonic()
        self.slowest_put = max(self.slowest_put, self.last_write - started)
        return digest

    async def _delete(self, sig_ref: Reference, check: _Read) -> Literal["", "changed", "stale"]:
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

    async def _read(self, sig_ref: Reference) -> _Read:
        sent = time.monotonic()
        fresh_until = sent + self.fresh_for()
        try:
            current: Manifest | None = await self.store.get_manifest(sig_ref)
        except NotFoundError:
            current = None  # "not signed yet", whatever the registry's 404 dialect
        self.round_trips.append(time.monotonic() - sent)
        return _Read(current, fresh_until)

    async def _read_head(self, sig_ref: Reference) -> _Read:
        """A HEAD: the digest only (a Manifest without bytes)."""
        sent = time.monotonic()
        fresh_until = sent + self.fresh_for()
        head = await self.store.head_manifest(sig_ref)
        self.round_trips.append(time.monotonic() - sent)
        return _Read(Manifest(b"", head[1], head[0]) if head else None, fresh_until)

    async def _inspect(self, item: Written, attachment: Attachment | None) -> _Inspection:
        """The tag as first read: every layer's blob fetched as podman/CRI-O fetch them (one
        that cannot be read makes them reject the image whatever we add: say so), and whether
        this key signed already (never with `force`)."""
        if attachment is None:
            return _Inspection(signed=False, missing=None)
        blobs = await fetch_layer_blobs(self.store, item.sig_ref, attachment)
        if (warning := unreadable_warning(blobs)) is not None:
            output.warn(f"{item.sig_ref.name}@{item.digest}: .sig attachment {warning}")
        candidates = ((b.layer, b.data) for b in blobs if _may_be_signature(b.layer))
        signed = not self.force and has_signature(
            candidates, digest=item.digest, identity=item.identity, key=self.key
        )
        return _Inspection(signed, missing_layers_error(blobs))

    async def _equivalent(self, item: Written, attachment: Attachment) -> bool:
        """Does the tag already hold a signature of this key for the same digest and identity?
        (Never with `force`, which asks for a new one whatever is there.)"""
        if self.force:
            return False
        return await already_signed(
            self.store,
            item.sig_ref,
            attachment,
            digest=item.digest,
            identity=item.identity,
            key=self.key,
        )

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

    # -- the end-of-run check ----------------------------------------------------------------

    async def confirm(self, concurrency: int = 8) -> list[str]:
        """Check every tag written in this run once more, after other writers' PUTs based on
        a check made before ours have had time to land; merge ours back where one dropped it,
        and check those rewrites the same way. Returns the list lines whose signature could
        not be confirmed (each error is logged).
        """
        gate = asyncio.Semaphore(max(1, concurrency))
        lost: list[str] = []
        pending: list[Change] = []
        await self._settle()
        for batch in self._written_changes():
            lost_now, rewritten = await self._confirm_round(batch, gate, rewrite=True)
            lost += lost_now
            pending += rewritten
        self.journal.close()
        self.applied = []
        for round_number in range(1, CONFIRM_ROUNDS + 1):
            if not pending:
                break
            await self._settle()
            final = round_number == CONFIRM_ROUNDS
            lost_now, pending = await self._confirm_round(pending, gate, rewrite=not final)
            lost += lost_now
        return lost

    def _written_changes(self) -> Iterator[list[Change]]:
        """What this run wrote, CONFIRM_BATCH at a time: the journal's signatures, then the
        changes made through `apply`."""
        for batch in self.journal.batches(CONFIRM_BATCH):
            yield [_AddSignature(self, item, None, None) for item in batch]
        for start in range(0, len(self.applied), CONFIRM_BATCH):
            yield self.applied[start : start + CONFIRM_BATCH]

    async def _confirm_round(
        self, items: list[Change], gate: asyncio.Semaphore, *, rewrite: bool
    ) -> tuple[list[str], list[Change]]:
        """Check `items`; returns the lines lost and the items rewritten (to check again).
        Items the registry could not answer for are checked again until CONFIRM_PATIENCE."""
        lost: list[str] = []
        rewritten: list[Change] = []
        patience = time.monotonic() + CONFIRM_PATIENCE
        attempt = 0
        while items:
            outcomes = await asyncio.gather(
                *(self._confirm_one(item, gate, rewrite=rewrite) for item in items)
            )
            pairs = list(zip(items, outcomes, strict=True))
            lost += [item.line for item, outcome in pairs if outcome == "lost"]
            rewritten += [item for item, outcome in pairs if outcome == "rewritten"]
            items = [item for item, outcome in pairs if isinstance(outcome, RegistryError)]
            attempt += 1
            delay = min(self.write_policy.delay(attempt), CONFIRM_BACKOFF_MAX)
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

    async def _settle(self) -> None:
        """Wait until a write of another hangar that checked the tag before our last PUT
        would be visible (the freshness bound, plus the registry's own delay)."""
        settle = min(max(self.fresh_for() + 2 * self.slowest_put, SETTLE_MIN), SETTLE_MAX)
        wait = self.last_write + settle - time.monotonic()
        if wait > 0:
            output.debug(f"confirm: waiting {wait:.2f}s for concurrent writes to land")
            await asyncio.sleep(wait)

    async def _confirm_one(
        self, item: Change, gate: asyncio.Semaphore, *, rewrite: bool
    ) -> Literal["ok", "rewritten", "lost"] | RegistryError:
        """The item's verdict, or the error of a registry that could not answer (to retry)."""
        writes = item.writes
        async with gate:
            try:
                head = await self.store.head_manifest(item.sig_ref)
                if (head[0] if head else "") == item.manifest_digest:
                    return "ok"  # as we left it (for a deleted tag: still absent)
                output.debug(f"{item.sig_ref}: confirm: the tag moved on, checking our {item.what}")
                async with self.locks.hold(item.lock_key):
                    if rewrite:
                        await self._merge(item)
                    elif not await self._still_there(item):
                        raise item.undone()
            except _UNAVAILABLE as exc:
                return exc
            except HangarError as exc:  # a registry error too: the change is not confirmed
                output.error(f"{item.sig_ref}: {exc}")
                return "lost"
        return "rewritten" if item.writes > writes else "ok"

    async def _still_there(self, item: Change) -> bool:
        read = await self._read(item.sig_ref)
        attachment = parse_attachment(read.manifest.data) if read.manifest else None
        return await item.in_place(read, attachment, first=False)


async def _settle_task(task: asyncio.Future, *, cancel: bool = False) -> None:
    """Let a side task end without leaking it: its failure is the caller's to ignore here
    (the main path raised, or no longer needs it)."""
    if cancel:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, HangarError):
        await task
