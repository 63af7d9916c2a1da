"""Remove signatures from one image line (`hangar sign remove`): key rotation in bulk.

What to remove is a RemovalRule (the layers one key signed, the layers none of the kept keys
verifies, or every signature layer); the edit is DropLayers, a Change that the attachment
writer applies with the same protocol as a signature: judged again on every fresh read of the
tag, so a layer another writer adds in the meantime is never dropped, and confirmed at the end
of the run. Layers that are not signatures (attestations, anything else) are never removed.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass, field

from hangar import output
from hangar.attachments.bundles import ReferrersApi
from hangar.attachments.merge import SIG_TAG, Edit, SignatureStore, TagRead
from hangar.attachments.writer import AttachmentWriter
from hangar.errors import HangarError
from hangar.imagelist import ListEntry
from hangar.operations.bundle_removal import BundleRule, matching_bundles, remove_bundles
from hangar.operations.targets import Target, select_targets, skipped_for_platform
from hangar.reference import Reference
from hangar.registry.client import RegistryClient
from hangar.registry.errors import DigestMismatchError, NotFoundError, TooLargeError
from hangar.results import ImageResult, RemoveRecord, Status
from hangar.sigstore.attachment import (
    MAX_SIGNATURE_BLOB,
    SIMPLESIGNING_MEDIA_TYPE,
    Attachment,
    SignatureLayer,
    drop_layers,
    parse_attachment,
    signature_tag,
)
from hangar.sigstore.keys import PublicKey

# Payload blobs fetched at once when judging the layers of one tag.
PAYLOAD_FETCHES = 8
# The final check runs this many times -j checks at once (as sign's).
CONFIRM_WIDTH = 4


@dataclass(frozen=True)
class RemovalRule:
    """Which signature layers to remove. `remove_keys`: those that verify with one of them;
    `unverified`: those that verify with none of `keep_keys`; `everything`: all of them."""

    remove_keys: tuple[PublicKey, ...] = ()
    keep_keys: tuple[PublicKey, ...] = ()
    unverified: bool = False
    everything: bool = False

    @property
    def needs_payloads(self) -> bool:
        return not self.everything

    def reason(self, layer: SignatureLayer, payload: bytes | None) -> str | None:
        """Why this layer goes ("key sha256:...", "unverified", "all"), or None: it stays."""
        if not is_signature_layer(layer):
            return None  # attestations and anything else are never ours to remove
        if self.everything:
            return "all"
        signature = layer.signature
        if payload is None or signature is None:  # verifies with no key
            return "verifies with none of the kept keys" if self.unverified else None
        for key in self.remove_keys:
            if key.verify(signature, payload):
                return f"key sha256:{key.fingerprint}"
        if self.unverified and not any(key.verify(signature, payload) for key in self.keep_keys):
            return "verifies with none of the kept keys"
        return None


def is_signature_layer(layer: SignatureLayer) -> bool:
    return layer.media_type == SIMPLESIGNING_MEDIA_TYPE and layer.signature_annotation is not None


@dataclass(frozen=True)
class Match:
    """A layer to remove: its position in the attachment as read, and why."""

    index: int
    layer_digest: str
    reason: str


async def matching_layers(
    store: SignatureStore,
    sig_ref: Reference,
    attachment: Attachment,
    rule: RemovalRule,
    payloads: dict[str, bytes | None],
) -> list[Match]:
    """The layers of `attachment` that `rule` removes. `payloads` caches payload blobs by
    digest across reads (content-addressed, so never stale); a payload that cannot be read
    verifies with no key."""
    if rule.needs_payloads:
        wanted = {
            layer.digest
            for layer in attachment.layers
            if is_signature_layer(layer) and layer.digest not in payloads
        }
        gate = asyncio.Semaphore(PAYLOAD_FETCHES)

        async def fetch(layer_digest: str) -> None:
            async with gate:
                payloads[layer_digest] = await _payload(store, sig_ref, layer_digest)

        await asyncio.gather(*map(fetch, sorted(wanted)))
    matches = []
    for index, layer in enumerate(attachment.layers):
        reason = rule.reason(layer, payloads.get(layer.digest))
        if reason is not None:
            matches.append(Match(index, layer.digest, reason))
    return matches


async def _payload(store: SignatureStore, sig_ref: Reference, layer_digest: str) -> bytes | None:
    try:
        return await store.get_blob(
            sig_ref.registry, sig_ref.repository, layer_digest, max_size=MAX_SIGNATURE_BLOB
        )
    except (NotFoundError, DigestMismatchError, TooLargeError) as exc:
        output.debug(f"{sig_ref}: layer {layer_digest} not readable: {exc}")
        return None


@dataclass(eq=False)
class DropLayers:
    """The change `sign remove` makes to one `.sig` tag (an attachment_writer.Change): drop the
    layers `rule` matches in what the tag holds now; when none remain, delete the tag."""

    tag_format = SIG_TAG

    store: SignatureStore
    sig_ref: Reference
    rule: RemovalRule
    line: str = ""
    what: str = "removal"
    manifest_digest: str = ""
    writes: int = 0
    written_at: float = 0.0
    # What the last edit dropped, and whether it deleted the tag: after `apply`, what the
    # write that landed did (the merge loop ends on the write that lands).
    last_edit: list[Match] = field(default_factory=list)
    deleted: bool = False
    _payloads: dict[str, bytes | None] = field(default_factory=dict)
    _pending: tuple[str | None, list[Match]] = (None, [])  # (tag digest read, its matches)

    @property
    def lock_key(self) -> str:
        return f"{self.sig_ref.name}:{self.sig_ref.tag}"

    async def in_place(self, read: TagRead, attachment: Attachment | None, *, first: bool) -> bool:
        if read.manifest is None or attachment is None:
            self._pending = (None, [])
            return True  # no tag: nothing to remove (any more)
        matches = await matching_layers(
            self.store, self.sig_ref, attachment, self.rule, self._payloads
        )
        self._pending = (read.digest, matches)
        return not matches

    async def edit(
        self, read: TagRead, attachment: Attachment | None, *, first: bool, blob_race: bool
    ) -> Edit:
        digest, matches = self._pending
        assert attachment is not None and digest == read.digest and matches
        sig_ref = self.sig_ref
        config = await self.store.get_blob(
            sig_ref.registry,
            sig_ref.repository,
            attachment.config["digest"],
            max_size=MAX_SIGNATURE_BLOB,
        )
        result = drop_layers(attachment, config, {match.index for match in matches})
        self.last_edit, self.deleted = matches, result is None
        if result is None:
            return Edit(None)
        manifest_bytes, config_bytes = result
        # The config may exist already (the tag held exactly these layers once): upload only
        # if missing, so that its link is not rewritten under another writer's PUT.
        upload = self.store.push_blob(sig_ref.registry, sig_ref.repository, config_bytes)
        return Edit(manifest_bytes, (upload,))

    def release(self) -> None:
        """Forget the payloads read (kept until the end of the run for `confirm`, a change
        must stay small; confirm fetches again what it needs)."""
        self._payloads.clear()
        self._pending = (None, [])

    async def after_blob_race(self) -> None:
        return None  # our manifest refers to existing layers and a config checked first

    def gave_up(self, attempts: int) -> HangarError:
        return HangarError(
            f"could not remove signatures from {self.sig_ref.name} tag {self.sig_ref.tag}: it "
            f"kept changing under {attempts} concurrent writes",
            hint="run the command again; it removes only what is still there",
        )

    def undone(self, rounds: int) -> HangarError:
        return HangarError(
            "other writers kept putting back the signatures removed from tag "
            f"{self.sig_ref.tag} of {self.sig_ref.name}",
            hint="stop the other signers using that key, then run the same command again",
        )


@dataclass(frozen=True)
class RemoveOptions:
    oses: list[str]
    arches: list[str]
    rule: RemovalRule
    dry_run: bool = False


# The list line being worked on, for the failed file, should the final check fail it.
_current_line: contextvars.ContextVar[str] = contextvars.ContextVar("hangar_line", default="")


class Remover:
    def __init__(self, client: RegistryClient, options: RemoveOptions) -> None:
        self.client = client
        self.options = options
        self.writer = AttachmentWriter(client, _NoKey())
        rule = options.rule
        self.bundle_rule = BundleRule(
            rule.remove_keys, rule.keep_keys, rule.unverified, rule.everything
        )
        self.referrers_api = ReferrersApi()

    async def remove_entry(self, entry: ListEntry, number: int) -> ImageResult:
        ref = entry.reference
        assert ref is not None
        _current_line.set(entry.text)
        manifest = await self.client.get_manifest(ref)
        options = self.options
        selection = await select_targets(
            self.client, ref, manifest, options.oses, options.arches, include_index=True
        )
        if not selection.targets:
            return skipped_for_platform(ref, selection, number)
        targets = selection.targets
        details: list[RemoveRecord] = []
        errors: list[str] = []
        removed = 0
        for target in targets:
            record: RemoveRecord = {"digest": target.digest, "platform": target.label}
            try:
                layers = await self._remove_target(ref, target, number, record)
            except HangarError as exc:
                record["action"], record["error"] = "failed", str(exc)
                errors.append(f"{target.label} {target.digest}: {exc}")
            else:
                removed += layers
            details.append(record)
        if errors:
            return ImageResult(Status.FAILED, "; ".join(errors), removed, details)
        status = Status.REMOVED if removed else Status.NOTHING_TO_REMOVE
        return ImageResult(status, "", removed, details)

    async def _remove_target(
        self, ref: Reference, target: Target, number: int, record: RemoveRecord
    ) -> int:
        """The .sig layers, then the bundles the rule matches (hangar.operations.
        bundle_removal); how many were removed (or would be)."""
        removed = await self._remove_layers(ref, target, number, record)
        where = f"[{ref.name}@{target.digest}] ({target.label})"
        source, matches = await matching_bundles(
            self.client, ref, target.digest, self.bundle_rule, self.referrers_api
        )
        if not matches:
            return removed
        record["bundles"] = [{"digest": m.artifact, "reason": m.reason} for m in matches]
        verb = "Would remove" if self.options.dry_run else "Removed"
        if not self.options.dry_run:
            await remove_bundles(
                self.client, self.writer, ref, target.digest, matches, source, _current_line.get()
            )
        if record.get("action") == "nothing-to-remove":
            record["action"] = "would-remove" if self.options.dry_run else "removed"
        for match in matches:
            output.info(f"{verb} {where}: bundle {match.artifact}, {match.reason}", image=number)
        return removed + len(matches)

    async def _remove_layers(
        self, ref: Reference, target: Target, number: int, record: RemoveRecord
    ) -> int:
        """Remove (or with --dry-run, list) what the rule matches on this digest's tag; the
        number of layers removed (or that would be)."""
        sig_ref = ref.with_tag(signature_tag(target.digest))
        where = f"[{ref.name}@{target.digest}] ({target.label})"
        if self.options.dry_run:
            matches = await self._preview(sig_ref)
            record["action"] = "would-remove" if matches else "nothing-to-remove"
            record["layers"] = [{"digest": m.layer_digest, "reason": m.reason} for m in matches]
            for match in matches:
                output.info(
                    f"Would remove {where}: layer {match.layer_digest}, {match.reason}",
                    image=number,
                )
            if not matches:
                output.info(f"Nothing to remove {where}", image=number)
            return len(matches)
        change = DropLayers(self.client, sig_ref, self.options.rule, _current_line.get())
        wrote = await self.writer.apply(change)
        change.release()
        if not wrote:
            record["action"], record["layers"] = "nothing-to-remove", []
            output.info(f"Nothing to remove {where}", image=number)
            return 0
        removed = change.last_edit
        record["action"] = "removed-tag" if change.deleted else "removed"
        record["layers"] = [{"digest": m.layer_digest, "reason": m.reason} for m in removed]
        reasons = ", ".join(sorted({match.reason for match in removed}))
        tail = "; nothing remained, the tag is deleted" if change.deleted else ""
        output.info(f"Removed {len(removed)} signature(s) {where}: {reasons}{tail}", image=number)
        return len(removed)

    async def _preview(self, sig_ref: Reference) -> list[Match]:
        try:
            manifest = await self.client.get_manifest(sig_ref)
        except NotFoundError:
            return []
        attachment = parse_attachment(manifest.data)
        return await matching_layers(self.client, sig_ref, attachment, self.options.rule, {})

    async def confirm(self, concurrency: int = 8) -> list[str]:
        """The end-of-run check (AttachmentWriter.confirm): lines whose removal was undone."""
        if self.options.dry_run:
            return []
        return await self.writer.confirm(concurrency * CONFIRM_WIDTH)


class _NoKey:
    """The writer's signer key, which removal never uses (it adds no signature)."""

    def verify(self, signature: bytes, data: bytes) -> bool:
        return False
