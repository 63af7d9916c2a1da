"""Read every layer blob of a `.sig` attachment the way podman/CRI-O (containers/image) do.

containers/image fetches *every* layer of the attachment before it looks at any signature,
whatever the layer's media type (signatures, in-toto attestations, anything else), each capped
at 4 MiB; when one fetch fails (blob missing, over the cap, digest mismatch, a digest that is
not one) the whole image is rejected, even beside a valid signature. So a validator that
predicts those consumers, and a signer that wants its signature to count, must look at each
layer the same way. The declared size does not matter to them: the bytes served do.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Protocol

from hangar import output
from hangar.errors import HangarError
from hangar.reference import Reference
from hangar.registry.errors import DigestMismatchError, NotFoundError, TooLargeError
from hangar.sigstore.attachment import MAX_SIGNATURE_BLOB, Attachment, SignatureLayer

_BLOB_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128}")
CONSEQUENCE = (
    "podman/CRI-O reject the image when any layer of its .sig attachment cannot be read, "
    "even beside a valid signature"
)


class BlobReader(Protocol):
    """The one registry operation needed here (RegistryClient, the write protocol's store)."""

    async def get_blob(
        self, registry: str, repository: str, digest: str, *, max_size: int
    ) -> bytes: ...


@dataclass(frozen=True)
class LayerBlob:
    """One layer of the attachment and its bytes, or why they could not be read."""

    index: int  # 0-based position in the attachment
    layer: SignatureLayer
    data: bytes | None
    problem: str | None = None  # set when containers/image could not read this layer either

    def describe(self, total: int) -> str:
        """`layer 2/3 sha256:... (media type)`: enough to find it with `hangar inspect --raw`."""
        media_type = self.layer.media_type or "no media type"
        digest = self.layer.digest or "no digest"
        return f"layer {self.index + 1}/{total} {digest} ({media_type})"


async def fetch_layer_blobs(
    client: BlobReader, ref: Reference, attachment: Attachment
) -> list[LayerBlob]:
    """Every layer's bytes, capped as containers/image caps them. Registry errors other than
    the layer's own (auth, network) propagate: they are about the registry, not the layer."""
    # Layers that name the same blob share one fetch (1000 copies of a layer: one GET).
    shared: dict[str, asyncio.Future[LayerBlob]] = {}
    for index, layer in enumerate(attachment.layers):
        if layer.digest not in shared:
            shared[layer.digest] = asyncio.ensure_future(_fetch(client, ref, index, layer))
    await asyncio.gather(*shared.values())
    blobs = []
    for index, layer in enumerate(attachment.layers):
        fetched = shared[layer.digest].result()
        blobs.append(LayerBlob(index, layer, fetched.data, fetched.problem))
    return blobs


MISSING = "blob unknown to registry"


def unreadable_layers(blobs: list[LayerBlob]) -> list[LayerBlob]:
    return [blob for blob in blobs if blob.problem is not None]


def missing_layers_error(blobs: list[LayerBlob]) -> HangarError | None:
    """Layers whose blob the registry lacks: it refuses any manifest naming them (distribution
    answers MANIFEST_BLOB_UNKNOWN), so no signature can be added until they are repaired."""
    missing = [blob for blob in blobs if blob.problem == MISSING]
    if not missing:
        return None
    names = ", ".join(blob.describe(len(blobs)) for blob in missing)
    return HangarError(
        f"cannot add a signature: the .sig attachment names {names}, whose blob is not in the "
        "registry; the registry refuses to store the attachment with it, and podman/CRI-O "
        "reject the image because of it",
        hint="push that blob again, or remove that layer from the .sig tag",
    )


def unreadable_reason(blobs: list[LayerBlob]) -> str | None:
    """One line naming each unreadable layer and why, with the consequence; None if none."""
    broken = unreadable_layers(blobs)
    if not broken:
        return None
    parts = [f"{blob.describe(len(blobs))} cannot be read: {blob.problem}" for blob in broken]
    return "; ".join(parts) + f" ({CONSEQUENCE}: repair or remove that layer)"


def unreadable_warning(blobs: list[LayerBlob]) -> str | None:
    """What `sign` says about an attachment it appends to; None when every layer reads."""
    broken = unreadable_layers(blobs)
    if not broken:
        return None
    parts = [f"{blob.describe(len(blobs))} cannot be read: {blob.problem}" for blob in broken]
    return (
        "; ".join(parts)
        + f". {CONSEQUENCE}, so they will reject this image whatever signature is added: "
        "repair or remove that layer (hangar keeps every layer it did not write)"
    )


async def _fetch(
    client: BlobReader, ref: Reference, index: int, layer: SignatureLayer
) -> LayerBlob:
    if not _BLOB_DIGEST.fullmatch(layer.digest):  # never put such text in a URL
        return LayerBlob(index, layer, None, f"invalid digest {layer.digest!r}")
    try:
        data = await client.get_blob(
            ref.registry, ref.repository, layer.digest, max_size=MAX_SIGNATURE_BLOB
        )
    except NotFoundError:
        return LayerBlob(index, layer, None, MISSING)
    except TooLargeError as exc:
        output.debug(f"{ref.name}: attachment blob {layer.digest}: {exc}")
        return LayerBlob(
            index,
            layer,
            None,
            f"exceeded maximum allowed size of {MAX_SIGNATURE_BLOB} bytes "
            f"(its descriptor says {layer.size} bytes)",
        )
    except DigestMismatchError as exc:
        output.debug(f"{ref.name}: attachment blob {layer.digest}: {exc}")
        return LayerBlob(index, layer, None, "digest mismatch (the registry sent other bytes)")
    return LayerBlob(index, layer, data)
