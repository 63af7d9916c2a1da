"""The `.sig` write protocol: add a signature to a tag that other writers share, and check at
the end of the run that it is still there.

A `.sig` tag is a read-modify-write target shared with other writers (other hangar runs, cosign,
skopeo), and distribution has no conditional PUT, so a lost update is prevented as well as the
API allows:

- writes to one tag are serialized inside a run (attachments.locks.TagLocks);
- the tag's read is the check the write is based on: the payload is uploaded while the tag is
  read (it does not depend on the tag), the config and the manifest follow within a few round
  trips, and no PUT is sent on a check older than `fresh_for()` (the merge starts again);
- a 404 on the read is confirmed by a HEAD before the PUT (sent as the 404 comes in, beside
  the uploads, and as fresh as any check): a false 404 (a lagging replica, a confused proxy)
  must never make us write a fresh attachment over a real one;
  while most tags are new, the config a new tag gets is uploaded beside the read too;
- after losing a race (the tag changed, the check went stale, a write failed) the merge loop
  reads again and checks the tag with a HEAD (beside the uploads) before the PUT;
- another writer can still overwrite ours after our PUT (its check came before our PUT, its PUT
  after it), but only within its own bounded check-to-write window. So at the end of the run
  (`confirm`), once that window has passed since our last write, every tag written is checked
  (one HEAD), ours merged back where it went missing, and those rewrites checked the same way.
  A signature that cannot be confirmed is reported, and its line fails.

In the common case (no `.sig` yet, or one this key has not signed) a signature costs the tag
read, two blob uploads (POST + PUT each), the PUT and the final HEAD, plus the 404's HEAD for a
new tag and the existing config (and payloads, to see whether this key signed already) for an
existing one.

The parts: hangar.attachments.merge (the read-check-write loop, freshness), attachment_signature
(AddSignature, the Change `sign` makes), attachment_confirm (the end-of-run check); this module
is the writer that `sign` and `sign remove` use.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from hangar import output
from hangar.attachments.blobs import fetch_layer_blobs, missing_layers_error, unreadable_warning
from hangar.attachments.confirm import FinalCheck
from hangar.attachments.journal import WriteJournal, Written
from hangar.attachments.merge import (
    BLOB_RACE_CODES,
    Change,
    SignatureStore,
    TagMerger,
    TagRead,
)
from hangar.attachments.signature import AddSignature, already_signed, may_be_signature
from hangar.errors import HangarError
from hangar.reference import Reference
from hangar.registry.errors import RegistryError
from hangar.registry.retry import RetryPolicy
from hangar.sigstore.attachment import (
    Attachment,
    NewSignature,
    append_signatures,
    parse_attachment,
)
from hangar.sigstore.keys import Verifier
from hangar.sigstore.verify import has_signature

Outcome = Literal["signed", "already-signed"]
# Records read back from the journal at a time by `confirm` (memory stays flat).
CONFIRM_BATCH = 2048


@dataclass(frozen=True, slots=True)
class _Inspection:
    signed: bool  # this key already signed the digest as the identity
    missing: HangarError | None  # layers whose blob the registry lacks: it refuses our write


class AttachmentWriter(TagMerger):
    """Writes signatures into `.sig` tags through `store`, and confirms them at the end."""

    def __init__(
        self,
        store: SignatureStore,
        key: Verifier,
        *,
        force: bool = False,
        write_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(store, write_policy=write_policy)
        self.key = key  # the public key of the signer: "already signed" means by this key
        self.force = force  # add a signature even where this key already signed
        self.journal = WriteJournal()
        self.applied: list[Change] = []  # changes made through `apply`, for `confirm`
        self._outcomes = {"signed": 0, "already-signed": 0}
        self._tags = {"new": 0, "existing": 0}  # what first reads found

    # -- writing -----------------------------------------------------------------------------

    async def write(
        self,
        sig_ref: Reference,
        digest: str,
        identity: str,
        new: NewSignature,
        line: str = "",
        *,
        landed: Callable[[], None] | None = None,
    ) -> Outcome:
        """Add `new` (a signature of `digest` as `identity`) to the tag `sig_ref`, unless this
        key signed it already (never with `force`). HangarError when it cannot be written.
        `landed` is called the moment the registry holds it, before anything else is awaited:
        whatever happens to the caller afterwards (cancelled, timed out), it was told."""
        item = Written(sig_ref, digest, identity, new, line)
        async with self.locks.hold(item.lock_key):
            outcome = await self._write(item, landed)
        self._outcomes[outcome] += 1
        return outcome

    async def _write(self, item: Written, landed: Callable[[], None] | None = None) -> Outcome:
        # Uploads that do not depend on the tag start beside its read (see _speculate).
        payload: asyncio.Future[str] | None = None
        fresh_config: asyncio.Future[str] | None = None
        if self._speculate():
            payload = asyncio.ensure_future(self._upload_payload(item))
            if self._tags["new"] >= self._tags["existing"]:
                fresh_config = asyncio.ensure_future(self._upload_fresh_config(item))
        try:
            read = await self.read(item.sig_ref)
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
                if merged is not None:
                    # Journaled at once: cancelled from here on, the final check still
                    # confirms it and the report still has it.
                    self.journal.append(item)
                    if landed is not None:
                        landed()
        except BaseException:
            for task in (payload, fresh_config):
                if task is not None:
                    await _settle_task(task, cancel=True)
            raise
        for task in (payload, fresh_config):
            if task is not None:
                await _settle_task(task)  # an unneeded upload may fail: it changes nothing
        return outcome

    async def apply(self, change: Change) -> bool:
        """Apply another kind of change (see Change) through the same protocol as `write`:
        serialized per tag, merged into each fresh read, checked at the end by `confirm`.
        True when a write was made. HangarError when it cannot be made."""
        async with self.locks.hold(change.lock_key):
            writes = change.writes
            await self.merge(change)
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
        known: TagRead | None = None,
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
        change = AddSignature(self.store, item, self._equivalent, payload, fresh_config)
        await self.merge(change, known=known)
        return None if change.equivalent else item.manifest_digest

    async def _inspect(self, item: Written, attachment: Attachment | None) -> _Inspection:
        """The tag as first read: every layer's blob fetched as podman/CRI-O fetch them (one
        that cannot be read makes them reject the image whatever we add: say so), and whether
        this key signed already (never with `force`)."""
        if attachment is None:
            return _Inspection(signed=False, missing=None)
        blobs = await fetch_layer_blobs(self.store, item.sig_ref, attachment)
        if (warning := unreadable_warning(blobs)) is not None:
            output.warn(f"{item.sig_ref.name}@{item.digest}: .sig attachment {warning}")
        candidates = ((b.layer, b.data) for b in blobs if may_be_signature(b.layer))
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

    # -- the end-of-run check ----------------------------------------------------------------

    async def confirm(self, concurrency: int = 8) -> list[str]:
        """Check every tag written in this run once more (hangar.attachments.confirm): the
        list lines whose signature (or other change) could not be confirmed."""
        return await FinalCheck(self, concurrency).run(self._written_changes())

    def _written_changes(self) -> Iterator[list[Change]]:
        """What this run wrote, CONFIRM_BATCH at a time: the journal's signatures, then the
        changes made through `apply`."""
        for batch in self.journal.batches(CONFIRM_BATCH):
            yield [AddSignature(self.store, item, self._equivalent) for item in batch]
        for start in range(0, len(self.applied), CONFIRM_BATCH):
            yield self.applied[start : start + CONFIRM_BATCH]
        # Read back whole: what the rounds of the check rewrite they hold themselves.
        self.journal.close()
        self.applied = []


async def _settle_task(task: asyncio.Future, *, cancel: bool = False) -> None:
    """Let a side task end without leaking it: its failure is the caller's to ignore here
    (the main path raised, or no longer needs it)."""
    if cancel:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, HangarError):
        await task
