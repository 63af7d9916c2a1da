"""Sign one image line: resolve its manifest, pick the digests to sign, write attachments.

A `.sig` tag is a read-modify-write target shared with other writers (other hangar runs, cosign,
skopeo). Distribution has no conditional PUT, so a lost update is prevented as well as the API
allows: writes to one tag are serialized inside a run; before the PUT the tag is checked to
still be what the merge was based on; after the PUT it is read back, and when another writer
replaced it, ours is merged into theirs and written again. At the end of a run every tag written
is checked once more (`confirm`).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from hangar import __version__, output
from hangar.errors import HangarError
from hangar.imagelist import ListEntry
from hangar.jobs import ImageResult
from hangar.manifest import OCI_MANIFEST
from hangar.reference import Reference
from hangar.registry.client import Manifest, RegistryClient
from hangar.registry.errors import NotFoundError
from hangar.sigstore.attachment import (
    MAX_SIGNATURE_BLOB,
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING_MEDIA_TYPE,
    Attachment,
    NewSignature,
    append_signatures,
    parse_attachment,
    signature_tag,
)
from hangar.sigstore.keys import PrivateKey
from hangar.sigstore.payload import build_payload, parse_payload
from hangar.targets import Target, select_targets

IdentityMode = Literal["tag", "digest", "repository"]
MAX_MERGE_ATTEMPTS = 8
CREATOR = f"hangar {__version__}"


@dataclass(frozen=True)
class SignOptions:
    oses: list[str]
    arches: list[str]
    identity_mode: IdentityMode = "tag"
    sign_index: bool = True
    force: bool = False


@dataclass
class _Written:
    sig_ref: Reference
    manifest_digest: str
    layer_digest: str
    new: NewSignature


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

    def __post_init__(self) -> None:
        self.public_key = self.key.public_key()

    async def sign_entry(self, entry: ListEntry, number: int) -> ImageResult:
        ref = entry.reference
        assert ref is not None
        manifest = await self.client.get_manifest(ref)
        options = self.options
        targets = await select_targets(
            self.client,
            ref,
            manifest,
            options.oses,
            options.arches,
            include_index=options.sign_index,
        )
        if not targets:
            wanted = f"{','.join(self.options.oses)}/{','.join(self.options.arches)}"
            output.info(f"no matching platform ({wanted}), skipped [{ref}]", image=number)
            return ImageResult("skipped", "no matching platform, skipped")
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
                action = await self._sign_digest(ref, target, identity)
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

    async def _sign_digest(self, ref: Reference, target: Target, identity: str) -> str:
        sig_ref = ref.with_tag(signature_tag(target.digest))
        async with self.locks.hold(f"{sig_ref.name}:{sig_ref.tag}"):
            return await self._write_signature(sig_ref, target.digest, identity)

    async def _write_signature(self, sig_ref: Reference, digest: str, identity: str) -> str:
        current = await self._fetch(sig_ref)
        attachment = parse_attachment(current.data) if current else None
        skip_check = attachment is None or self.options.force
        if not skip_check and await self._already_signed(sig_ref, attachment, digest, identity):
            return "already-signed"
        new = self._new_signature(identity, digest)
        # A fresh payload (its timestamp, our key) is new content: no HEAD first.
        layer_digest = await self.client.push_blob(
            sig_ref.registry, sig_ref.repository, new.payload, check_exists=False
        )
        put_digest = await self._merge_in(sig_ref, new, layer_digest, known=(current,))
        self.written.append(_Written(sig_ref, put_digest, layer_digest, new))
        return "signed"

    async def _merge_in(
        self,
        sig_ref: Reference,
        new: NewSignature,
        layer_digest: str,
        *,
        known: tuple[Manifest | None] | None = None,
    ) -> str:
        """Write `new` into the tag until the tag holds it; returns the digest that does.

        `known` is the tag's content if it was just read (saves a GET).
        """
        for attempt in range(MAX_MERGE_ATTEMPTS):
            current = known[0] if known and attempt == 0 else await self._fetch(sig_ref)
            attachment = parse_attachment(current.data) if current else None
            if current and attachment and _has_layer(attachment, layer_digest, new):
                return current.digest  # already there (an earlier attempt landed after all)
            put_digest = await self._put_merged(sig_ref, current, attachment, new)
            if put_digest is None:
                output.debug(f"{sig_ref}: changed before our write, merging again ({attempt + 1})")
                continue
            if await self._landed(sig_ref, put_digest, layer_digest, new):
                return put_digest
            output.debug(f"{sig_ref}: replaced by another writer, merging again ({attempt + 1})")
        raise HangarError(
            f"could not write the signature of {sig_ref.name} to tag {sig_ref.tag}: it kept "
            f"changing under {MAX_MERGE_ATTEMPTS} concurrent writes",
            hint="run the command again; signatures already written are kept",
        )

    async def _fetch(self, sig_ref: Reference) -> Manifest | None:
        try:
            return await self.client.get_manifest(sig_ref)
        except NotFoundError:
            return None  # "not signed yet", whatever the registry's 404 dialect

    async def _put_merged(
        self,
        sig_ref: Reference,
        current: Manifest | None,
        attachment: Attachment | None,
        new: NewSignature,
    ) -> str | None:
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
            sig_ref.registry, sig_ref.repository, config_bytes, check_exists=False
        )
        # Narrow the lost-update window: write only if the tag is still what we merged into.
        head = await self.client.head_manifest(sig_ref)
        if (head[0] if head else None) != (current.digest if current else None):
            return None
        return await self.client.put_manifest(sig_ref, manifest_bytes, OCI_MANIFEST)

    async def _landed(
        self, sig_ref: Reference, put_digest: str, layer_digest: str, new: NewSignature
    ) -> bool:
        head = await self.client.head_manifest(sig_ref)
        if head is not None and head[0] == put_digest:
            return True
        current = await self._fetch(sig_ref)
        return current is not None and _has_layer(parse_attachment(current.data), layer_digest, new)

    async def _already_signed(
        self, sig_ref: Reference, attachment: Attachment, digest: str, identity: str
    ) -> bool:
        for layer in attachment.layers:
            signature = layer.signature
            if layer.media_type != SIMPLESIGNING_MEDIA_TYPE or signature is None:
                continue
            if layer.size > MAX_SIGNATURE_BLOB:
                continue
            payload = await self.client.get_blob(
                sig_ref.registry, sig_ref.repository, layer.digest, max_size=MAX_SIGNATURE_BLOB
            )
            if not self.public_key.verify(signature, payload):
                continue
            try:
                parsed = parse_payload(payload)
            except HangarError:
                continue
            if parsed.digest == digest and parsed.identity == identity:
                return True
        return False

    def _new_signature(self, identity: str, digest: str) -> NewSignature:
        payload = build_payload(identity, digest, creator=CREATOR, timestamp=int(time.time()))
        return NewSignature(payload=payload, signature=self.key.sign(payload))

    async def confirm(self, concurrency: int = 8) -> list[str]:
        """Check every tag written in this run once more; merge ours back where another
        writer's stale read-modify-write dropped it. Returns the tags that could not be fixed.
        """
        semaphore = asyncio.Semaphore(concurrency)

        async def confirm_one(item: _Written) -> str | None:
            async with semaphore:
                head = await self.client.head_manifest(item.sig_ref)
                if head is not None and head[0] == item.manifest_digest:
                    return None
                try:
                    async with self.locks.hold(f"{item.sig_ref.name}:{item.sig_ref.tag}"):
                        await self._merge_in(item.sig_ref, item.new, item.layer_digest)
                except HangarError as exc:
                    output.error(f"{item.sig_ref}: {exc}")
                    return str(item.sig_ref)
                return None

        results = await asyncio.gather(*(confirm_one(item) for item in self.written))
        return [ref for ref in results if ref is not None]


def _has_layer(attachment: Attachment, layer_digest: str, new: NewSignature) -> bool:
    annotation = base64.b64encode(new.signature).decode()
    return any(
        layer.digest == layer_digest and layer.annotations.get(SIGNATURE_ANNOTATION) == annotation
        for layer in attachment.layers
    )
