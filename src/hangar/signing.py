"""Sign one image line: resolve its manifest, pick the digests to sign, write attachments.

A `.sig` tag is a read-modify-write target shared with other writers (other hangar runs, cosign,
skopeo). Distribution has no conditional PUT, so a lost update is prevented as well as the API
allows: writes to one tag are serialized inside a run; just before the PUT the tag is checked
(HEAD) to still be what the merge was based on, and a check older than a few round trips is not
trusted; after the PUT the tag is read back, and when another writer replaced it, ours is
merged into theirs and written again. Another writer can still overwrite ours after our
read-back (its check came before our PUT, its PUT after our read-back), but only within its own
bounded check-to-write window. So at the end of a run (`confirm`), once that window has passed
since our last write, every tag written is checked again, ours merged back where it went
missing, and those rewrites checked the same way.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import random
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from hangar import __version__, output
from hangar.attachment_blobs import (
    LayerBlob,
    fetch_layer_blobs,
    missing_layers_error,
    unreadable_warning,
)
from hangar.errors import HangarError
from hangar.imagelist import ListEntry
from hangar.jobs import ImageResult
from hangar.manifest import OCI_MANIFEST
from hangar.reference import Reference
from hangar.registry.client import Manifest, RegistryClient
from hangar.registry.errors import (
    NotFoundError,
    RegistryError,
    RegistryTimeoutError,
    ServerError,
    StaleRequestError,
    UnreachableError,
)
from hangar.registry.retry import RetryPolicy, base_delay_from_env
from hangar.sigstore.attachment import (
    MAX_SIGNATURE_BLOB,
    SIGNATURE_ANNOTATION,
    Attachment,
    NewSignature,
    append_signatures,
    has_signature,
    parse_attachment,
    signature_tag,
)
from hangar.sigstore.keys import PrivateKey
from hangar.sigstore.payload import build_payload
from hangar.targets import Target, select_targets, skipped_for_platform, with_attestations

IdentityMode = Literal["tag", "digest", "repository"]
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
# A HEAD check is fresh for CHECK_FRESH_RTTS typical round trips to the registry (the median of
# recent tag reads), and at least CHECK_FRESH_MIN seconds, counted from when it was sent; no PUT
# is sent on a check older than that (the merge starts again). This bounds how long after its
# check any hangar writer's PUT can land, which is what `confirm` waits out. (A process stalled
# for seconds between its check and its write was seen to wipe three other keys' signatures
# before this bound existed.) Relative to the round trip, so a distant registry still works.
CHECK_FRESH_MIN = 0.25
CHECK_FRESH_RTTS = 4
ROUND_TRIP_SAMPLES = 64
# `confirm` waits the freshness bound after our last write, plus twice the slowest PUT seen
# (the registry's own delay in applying a write), at least SETTLE_MIN, at most SETTLE_MAX.
SETTLE_MIN = 0.3
SETTLE_MAX = 10.0
# Rounds of confirm that may rewrite; a last one only checks.
CONFIRM_ROUNDS = 3
CREATOR = f"hangar {__version__}"


@dataclass(frozen=True)
class SignOptions:
    oses: list[str]
    arches: list[str]
    identity_mode: IdentityMode = "tag"
    sign_index: bool = True
    force: bool = False
    sign_attestations: bool = False


@dataclass(slots=True)  # one per signature written, kept for the final check: keep it small
class _Written:
    sig_ref: Reference
    manifest_digest: str  # the tag's digest when it last held our signature, as we know
    layer_digest: str
    new: NewSignature
    digest: str  # the manifest signed
    identity: str
    writes: int = 0  # PUTs made for this signature
    line: str = field(default_factory=lambda: _current_line.get())  # the list line, as written


# The list line being signed, for the failed file, should the final check lose its signature.
_current_line: contextvars.ContextVar[str] = contextvars.ContextVar("hangar_line", default="")


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


def identity_for(ref: Reference, digest: str, mode: IdentityMode) -> str:
    """The docker-reference written into the payload (interop.md section 4)."""
    if mode == "repository":
        return ref.name
    if mode == "tag" and ref.tag and not ref.digest:
        return f"{ref.name}:{ref.tag}"
    return f"{ref.name}@{digest}"


@dataclass
class Signer:
    client: RegistryClient
    key: PrivateKey
    options: SignOptions
    locks: TagLocks = field(default_factory=TagLocks)
    written: list[_Written] = field(default_factory=list)
    last_write: float = 0.0  # time.monotonic() of our last PUT's answer
    slowest_put: float = 0.0  # seconds
    round_trips: deque[float] = field(default_factory=lambda: deque(maxlen=ROUND_TRIP_SAMPLES))
    # Backoff between merges whose PUT failed (the client retries a PUT only while its check
    # is fresh): the client's policy, $HANGAR_RETRY_BASE_DELAY included.
    write_policy: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(base_delay=base_delay_from_env())
    )

    def __post_init__(self) -> None:
        self.public_key = self.key.public_key()

    async def sign_entry(self, entry: ListEntry, number: int) -> ImageResult:
        ref = entry.reference
        assert ref is not None
        _current_line.set(entry.text)  # each job runs in its own task, so its own context
        manifest = await self.client.get_manifest(ref)
        options = self.options
        selection = await select_targets(
            self.client,
            ref,
            manifest,
            options.oses,
            options.arches,
            include_index=options.sign_index,
        )
        if not selection.targets:
            return skipped_for_platform(ref, selection, number)
        targets = selection.targets
        if options.sign_attestations:
            targets = with_attestations(manifest, targets)
        return await self._sign_targets(ref, targets, number)

    async def _sign_targets(
        self, ref: Reference, targets: list[Target], number: int
    ) -> ImageResult:
        details: list[dict[str, Any]] = []
        written = 0
        errors: list[str] = []
        for target in targets:
            identity = identity_for(ref, target.digest, self.options.identity_mode)
            record: dict[str, Any] = {
                "digest": target.digest,
                "platform": target.label,
                "identity": identity,
            }
            try:
                action = await self._sign_digest(ref, target, identity, number)
            except HangarError as exc:
                record.update(action="failed", error=str(exc))
                errors.append(f"{target.label} {target.digest}: {exc}")
            else:
                record["action"] = action
                written += action == "signed"
                verb = "Signed" if action == "signed" else "Already signed"
                output.info(f"{verb} [{ref.name}@{target.digest}] ({target.label})", image=number)
            details.append(record)
        if errors:
            return ImageResult("failed", "; ".join(errors), written, details)
        status = "signed" if written else "already-signed"
        return ImageResult(status, "", written, details)

    async def _sign_digest(
        self, ref: Reference, target: Target, identity: str, number: int | None = None
    ) -> str:
        sig_ref = ref.with_tag(signature_tag(target.digest))
        async with self.locks.hold(f"{sig_ref.name}:{sig_ref.tag}"):
            return await self._write_signature(sig_ref, target.digest, identity, number)

    async def _write_signature(
        self, sig_ref: Reference, digest: str, identity: str, number: int | None = None
    ) -> str:
        current = await self._fetch(sig_ref)
        attachment = parse_attachment(current.data) if current else None
        missing: HangarError | None = None  # why the registry may refuse our write
        if attachment is not None:
            blobs = await fetch_layer_blobs(self.client, sig_ref, attachment)
            missing = missing_layers_error(blobs)
            if (warning := unreadable_warning(blobs)) is not None:
                output.warn(f"{sig_ref.name}@{digest}: .sig attachment {warning}", image=number)
            if not self.options.force and self._signed_in(blobs, digest, identity):
                return "already-signed"
        new = self._new_signature(identity, digest)
        # A fresh payload (its timestamp, our key) is new content: no HEAD first.
        layer_digest = await self.client.push_blob(
            sig_ref.registry, sig_ref.repository, new.payload, check_exists=False
        )
        written = _Written(sig_ref, "", layer_digest, new, digest, identity)
        try:
            merged = await self._merge_in(written, known=(current,))
        except RegistryError as exc:
            # A layer blob we could not read is truly gone when the registry refuses the
            # manifest for it (a 404 on our GET alone may be a proxy's or a mirror's).
            if missing is not None and exc.status == 400 and exc.code in BLOB_RACE_CODES:
                raise missing from None
            raise
        if merged is None:
            return "already-signed"
        self.written.append(written)
        return "signed"

    async def _merge_in(
        self, item: _Written, *, known: tuple[Manifest | None] | None = None
    ) -> str | None:
        """Write `item.new` into the tag until the tag holds it; returns the digest that does,
        or None when the tag turned out to hold an equivalent signature of ours already.

        `known` is the tag's content if it was just read (saves a GET). Gives up after
        MAX_MERGE_ATTEMPTS lost races, or when the PUT keeps failing (the client's retries).
        """
        sig_ref, new, layer_digest = item.sig_ref, item.new, item.layer_digest
        blob_race: RegistryError | None = None  # the last race lost was on a blob
        lost_races = write_failures = attempt = 0
        while lost_races < MAX_MERGE_ATTEMPTS:
            if attempt > 0:
                await asyncio.sleep(random.uniform(0, min(MERGE_JITTER * 2**attempt, 1.0)))
            checked = known is not None and attempt == 0  # the caller judged this content
            attempt += 1
            current = known[0] if checked and known else await self._fetch(sig_ref)
            attachment = parse_attachment(current.data) if current else None
            if current and attachment and _has_layer(attachment, layer_digest, new):
                item.manifest_digest = current.digest
                return current.digest  # already there (an earlier attempt landed after all)
            if not checked and attachment and await self._equivalent(item, attachment):
                # What we first read was not the whole story (a false 404, a concurrent
                # writer with this key): the key's signature is there, a second one is noise.
                return None
            if known is None:  # the confirm pass: another writer dropped our signature
                output.debug(f"{sig_ref}: confirm: our signature is missing, writing it again")
            try:
                put_digest = await self._put_merged(
                    sig_ref, current, attachment, new, blobs_may_exist=blob_race is not None
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
                # Ours must exist; upload it only if missing, so its link is not rewritten.
                await self.client.push_blob(sig_ref.registry, sig_ref.repository, new.payload)
                continue
            if put_digest is None:
                blob_race, lost_races = None, lost_races + 1
                output.debug(f"{sig_ref}: changed before our write, merging again ({attempt})")
                continue
            item.writes += 1
            item.manifest_digest = put_digest
            if await self._landed(sig_ref, put_digest, layer_digest, new):
                return put_digest
            blob_race, lost_races = None, lost_races + 1
            output.debug(f"{sig_ref}: replaced by another writer, merging again ({attempt})")
        if blob_race is not None:
            raise blob_race  # the registry's own words: a blob it does not find
        raise HangarError(
            f"could not write the signature of {sig_ref.name} to tag {sig_ref.tag}: it kept "
            f"changing under {MAX_MERGE_ATTEMPTS} concurrent writes",
            hint="run the command again; signatures already written are kept",
        )

    async def _fetch(self, sig_ref: Reference) -> Manifest | None:
        started = time.monotonic()
        try:
            current = await self.client.get_manifest(sig_ref)
        except NotFoundError:
            current = None  # "not signed yet", whatever the registry's 404 dialect
        self.round_trips.append(time.monotonic() - started)
        return current

    def fresh_for(self) -> float:
        """How long a check of a tag may be trusted for a write (see CHECK_FRESH_RTTS)."""
        typical = statistics.median(self.round_trips) if self.round_trips else 0.0
        return max(CHECK_FRESH_MIN, CHECK_FRESH_RTTS * typical)

    async def _put_merged(
        self,
        sig_ref: Reference,
        current: Manifest | None,
        attachment: Attachment | None,
        new: NewSignature,
        *,
        blobs_may_exist: bool = False,
    ) -> str | None:
        """PUT the merge of `new` into `current`; None when the tag moved on meanwhile.

        `blobs_may_exist`: HEAD the config before uploading it (after a blob race, an upload
        of existing bytes would rewrite the link another writer's PUT is checking)."""
        config = None
        if attachment is not None:
            config = await self.client.get_blob(
                sig_ref.registry,
                sig_ref.repository,
                attachment.config["digest"],
                max_size=MAX_SIGNATURE_BLOB,
            )
        manifest_bytes, config_bytes = append_signatures(attachment, config, [new])
        # The config lists the new payload digest, so it is new content too.
        await self.client.push_blob(
            sig_ref.registry, sig_ref.repository, config_bytes, check_exists=blobs_may_exist
        )
        # Narrow the lost-update window: write only if the tag is still what we merged into,
        # as the registry said a moment ago.
        deadline = self.fresh_for()  # from round trips before this one: a stall stands out
        checked = time.monotonic()
        deadline += checked
        head = await self.client.head_manifest(sig_ref)
        started = time.monotonic()
        self.round_trips.append(started - checked)
        if (head[0] if head else None) != (current.digest if current else None):
            return None
        try:
            digest = await self.client.put_manifest(
                sig_ref, manifest_bytes, OCI_MANIFEST, deadline=deadline
            )
        except StaleRequestError:
            output.debug(f"{sig_ref}: the check before our write is stale, merging again")
            return None
        except (ServerError, UnreachableError, RegistryTimeoutError) as exc:
            # Retried only while the check was fresh: the merge loop checks again and retries.
            raise _WriteFailed(exc) from exc
        self.last_write = time.monotonic()
        self.slowest_put = max(self.slowest_put, self.last_write - started)
        return digest

    async def _landed(
        self, sig_ref: Reference, put_digest: str, layer_digest: str, new: NewSignature
    ) -> bool:
        head = await self.client.head_manifest(sig_ref)
        if head is not None and head[0] == put_digest:
            return True
        current = await self._fetch(sig_ref)
        return current is not None and _has_layer(parse_attachment(current.data), layer_digest, new)

    async def _equivalent(self, item: _Written, attachment: Attachment) -> bool:
        """Does the tag already hold a signature of this key for the same digest and identity?
        (Never with --force, which asks for a new one whatever is there.)"""
        if self.options.force:
            return False
        return await self._already_signed(item.sig_ref, attachment, item.digest, item.identity)

    async def _already_signed(
        self, sig_ref: Reference, attachment: Attachment, digest: str, identity: str
    ) -> bool:
        blobs = await fetch_layer_blobs(self.client, sig_ref, attachment)
        return self._signed_in(blobs, digest, identity)

    def _signed_in(self, blobs: list[LayerBlob], digest: str, identity: str) -> bool:
        """Does a layer already sign `digest` as `identity` with our key? A layer that cannot
        be read is another writer's, kept as it is when we merge: never a reason to fail."""
        layers = ((blob.layer, blob.data) for blob in blobs)
        return has_signature(layers, digest=digest, identity=identity, key=self.public_key)

    def _new_signature(self, identity: str, digest: str) -> NewSignature:
        payload = build_payload(identity, digest, creator=CREATOR, timestamp=int(time.time()))
        return NewSignature(payload=payload, signature=self.key.sign(payload))

    async def confirm(self, concurrency: int = 8) -> list[str]:
        """Check every tag written in this run once more, after other writers' PUTs based on
        a check made before ours have had time to land; merge ours back where one dropped it,
        and check those rewrites the same way. Returns the list lines whose signature could
        not be confirmed (each error is logged).
        """
        semaphore = asyncio.Semaphore(max(1, concurrency))
        pending = list(self.written)
        lost: list[str] = []
        for round_number in range(CONFIRM_ROUNDS + 1):
            if not pending:
                break
            await self._settle()
            final = round_number == CONFIRM_ROUNDS
            outcomes = await asyncio.gather(
                *(self._confirm_one(item, semaphore, rewrite=not final) for item in pending)
            )
            lost += [item.line for item, o in zip(pending, outcomes, strict=True) if o == "lost"]
            pending = [item for item, o in zip(pending, outcomes, strict=True) if o == "rewritten"]
        return lost

    async def _settle(self) -> None:
        """Wait until a write of another hangar that checked the tag before our last PUT
        would be visible (the freshness bound, plus the registry's own delay)."""
        settle = min(max(self.fresh_for() + 2 * self.slowest_put, SETTLE_MIN), SETTLE_MAX)
        wait = self.last_write + settle - time.monotonic()
        if wait > 0:
            output.debug(f"confirm: waiting {wait:.2f}s for concurrent writes to land")
            await asyncio.sleep(wait)

    async def _confirm_one(
        self, item: _Written, semaphore: asyncio.Semaphore, *, rewrite: bool
    ) -> Literal["ok", "rewritten", "lost"]:
        writes = item.writes
        async with semaphore:
            try:
                head = await self.client.head_manifest(item.sig_ref)
                if head is not None and head[0] == item.manifest_digest:
                    return "ok"
                output.debug(f"{item.sig_ref}: confirm: the tag moved on, checking our signature")
                async with self.locks.hold(f"{item.sig_ref.name}:{item.sig_ref.tag}"):
                    if rewrite:
                        await self._merge_in(item)
                    elif not await self._still_there(item):
                        raise HangarError(
                            f"another writer dropped our signature {CONFIRM_ROUNDS} times",
                            hint="run the same command again; it adds only what is missing",
                        )
            except HangarError as exc:  # a registry error too: the signature is not confirmed
                output.error(f"{item.sig_ref}: {exc}")
                return "lost"
        return "rewritten" if item.writes > writes else "ok"

    async def _still_there(self, item: _Written) -> bool:
        current = await self._fetch(item.sig_ref)
        attachment = parse_attachment(current.data) if current else None
        if current is None or attachment is None:
            return False
        return _has_layer(attachment, item.layer_digest, item.new) or await self._equivalent(
            item, attachment
        )


class _WriteFailed(Exception):
    """The PUT of a merge failed (5xx, connection, timeout) within its check's freshness."""

    def __init__(self, error: RegistryError) -> None:
        super().__init__(str(error))
        self.error = error


def _has_layer(attachment: Attachment, layer_digest: str, new: NewSignature) -> bool:
    annotation = base64.b64encode(new.signature).decode()
    return any(
        layer.digest == layer_digest and layer.annotations.get(SIGNATURE_ANNOTATION) == annotation
        for layer in attachment.layers
    )
