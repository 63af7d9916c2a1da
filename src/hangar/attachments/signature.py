"""The signature side of the `.sig` write protocol (see hangar.attachments.writer): whether a
tag holds this key's signature already, and AddSignature, the Change that `sign` makes."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable

from hangar import output
from hangar.attachments.journal import Written
from hangar.attachments.merge import SIG_TAG, Edit, SignatureStore, TagRead
from hangar.errors import HangarError
from hangar.reference import Reference
from hangar.registry.errors import DigestMismatchError, NotFoundError, TooLargeError
from hangar.sigstore.attachment import (
    MAX_SIGNATURE_BLOB,
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING_MEDIA_TYPE,
    Attachment,
    SignatureLayer,
    append_signatures,
)
from hangar.sigstore.keys import Verifier
from hangar.sigstore.verify import has_signature

# Payload blobs of existing layers fetched at once when looking for this key's signature.
PAYLOAD_FETCHES = 8


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
    to fail. The verdict itself is verify.has_signature.
    """
    candidates = [layer for layer in attachment.layers if may_be_signature(layer)]
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


def may_be_signature(layer: SignatureLayer) -> bool:
    return (
        layer.media_type == SIMPLESIGNING_MEDIA_TYPE
        and layer.signature is not None
        and layer.size <= MAX_SIGNATURE_BLOB
    )


def has_layer(attachment: Attachment, item: Written) -> bool:
    annotation = base64.b64encode(item.new.signature).decode()
    layer_digest = item.new.digest
    return any(
        layer.digest == layer_digest and layer.annotations.get(SIGNATURE_ANNOTATION) == annotation
        for layer in attachment.layers
    )


class AddSignature:
    """The change `sign` makes: add `item.new` to the tag (a Change; see AttachmentWriter)."""

    tag_format = SIG_TAG

    def __init__(
        self,
        store: SignatureStore,
        item: Written,
        equivalent: Callable[[Written, Attachment], Awaitable[bool]],
        payload: Awaitable[str] | None = None,
        fresh_config: Awaitable[str] | None = None,
    ) -> None:
        self.store = store
        self.item = item
        self.is_equivalent = equivalent  # does the tag hold this key's signature already?
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

    @property
    def written_at(self) -> float:
        return self.item.written_at

    @written_at.setter
    def written_at(self, value: float) -> None:
        self.item.written_at = value

    async def in_place(self, read: TagRead, attachment: Attachment | None, *, first: bool) -> bool:
        if read.manifest and attachment and has_layer(attachment, self.item):
            self.item.manifest_digest = read.manifest.digest
            return True  # already there (an earlier attempt landed)
        if not first and attachment and await self.is_equivalent(self.item, attachment):
            # What we first read was not the whole story (a false 404, a concurrent
            # writer with this key): the key's signature is there, a second one is noise.
            self.equivalent = True
            return True
        return False

    async def edit(
        self, read: TagRead, attachment: Attachment | None, *, first: bool, blob_race: bool
    ) -> Edit:
        """After a blob race the config is checked before its upload (an upload of existing
        bytes would rewrite the link another writer's PUT is checking)."""
        store, sig_ref = self.store, self.item.sig_ref
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
        await self.store.push_blob(sig_ref.registry, sig_ref.repository, self.item.new.payload)

    def gave_up(self, attempts: int) -> HangarError:
        sig_ref = self.item.sig_ref
        return HangarError(
            f"could not write the signature of {sig_ref.name} to tag {sig_ref.tag}: it kept "
            f"changing under {attempts} concurrent writes",
            hint="run the command again; signatures already written are kept",
        )

    def undone(self, rounds: int) -> HangarError:
        return HangarError(
            f"another writer dropped our signature {rounds} times",
            hint="run the same command again; it adds only what is missing",
        )
