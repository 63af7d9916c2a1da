"""The `.sig` attachment: the OCI manifest at tag `sha256-<hex>.sig` holding one layer per
signature (docs/formats.md shows one). Parse it, append signatures, merge after a concurrent
write, drop layers.

Rewriting keeps everything another tool put there: top-level fields (annotations, subject,
artifactType...), every existing layer descriptor (same keys, order and values: numbers keep
their text) and every config field. Output is compact JSON as Go's encoding/json writes it, so
an attachment written by c/image or cosign is re-encoded byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from hangar.errors import HangarError
from hangar.manifest import OCI_CONFIG, OCI_MANIFEST, sha256_digest
from hangar.sigstore.payload import JsonFloat, encode_go_json

SIMPLESIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
MAX_LAYERS = 1000  # cosign's cap on a signature manifest
MAX_SIGNATURE_BLOB = 4 * 1024 * 1024  # c/image's iolimits.MaxSignatureBodySize
# ggcr (cosign) appends one history entry per signature layer, with a zero time.
COSIGN_HISTORY_ENTRY = {"created": "0001-01-01T00:00:00Z"}

_SHA256_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_STD_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


def signature_tag(digest: str) -> str:
    """The tag holding the signatures of the manifest with this digest."""
    if not _SHA256_DIGEST.fullmatch(digest):
        raise HangarError(
            f"cannot name the signature tag of {digest!r}: not a sha256 digest",
            hint="give the manifest digest as sha256:<64 lowercase hex characters>",
        )
    return digest.replace(":", "-", 1) + ".sig"


def decode_signature(value: str | None) -> bytes | None:
    """Standard base64, strict as Go's base64.StdEncoding (which skips CR and LF)."""
    if not isinstance(value, str):
        return None
    text = value.replace("\r", "").replace("\n", "")
    if not _STD_BASE64.fullmatch(text):  # Python alone would take "QUJD=" and the like
        return None
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


@dataclass
class SignatureLayer:
    """One layer descriptor of the attachment; `raw` is the descriptor exactly as found."""

    media_type: str
    digest: str
    size: int  # -1 when the descriptor holds no integer size
    annotations: dict[str, str]
    raw: dict = field(repr=False)

    @property
    def signature(self) -> bytes | None:
        """The raw signature; None when the annotation is missing or not valid base64."""
        return decode_signature(self.annotations.get(SIGNATURE_ANNOTATION))

    @property
    def signature_annotation(self) -> str | None:
        return self.annotations.get(SIGNATURE_ANNOTATION)


@dataclass
class Attachment:
    document: dict  # the whole manifest
    raw: bytes  # the manifest bytes as fetched
    layers: list[SignatureLayer]
    config: dict  # the config descriptor


@dataclass(frozen=True, slots=True)
class NewSignature:
    payload: bytes
    signature: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.payload)

    def layer(self) -> SignatureLayer:
        """The layer descriptor append_signatures writes for this signature."""
        annotations = {SIGNATURE_ANNOTATION: base64.b64encode(self.signature).decode("ascii")}
        raw = {
            "mediaType": SIMPLESIGNING_MEDIA_TYPE,
            "digest": self.digest,
            "size": len(self.payload),
            "annotations": dict(annotations),
        }
        return _layer_from_descriptor(raw)


# --- reading ---------------------------------------------------------------------------------


def load_document(data: bytes, what: str) -> dict:
    """A JSON object, numbers kept as written so that re-encoding changes nothing."""
    try:
        # Decode here: json.loads would also take UTF-16/32 and skip a BOM; Go takes neither.
        document = json.loads(
            data.decode("utf-8"),
            parse_float=JsonFloat,
            parse_constant=_refuse_constant,
            parse_int=_parse_int,
        )
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise HangarError(
            f"{what} is not valid JSON ({_short(exc)})",
            hint="the registry returned something else than a signature attachment",
        ) from None
    if not isinstance(document, dict):
        raise HangarError(f"{what} is not a JSON object", hint="it cannot be a signature store")
    return document


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _parse_int(text: str) -> int | JsonFloat:
    if text == "-0":  # int() would lose the sign; keep the text
        return JsonFloat(text)
    return int(text)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def parse_attachment(raw: bytes) -> Attachment:
    """Parse the manifest found at a `.sig` tag; HangarError when it is not one."""
    document = load_document(raw, "the signature attachment manifest")
    media_type = document.get("mediaType", OCI_MANIFEST)
    if media_type != OCI_MANIFEST or "manifests" in document:
        raise HangarError(
            f"the signature attachment is a {media_type!r} document, not an OCI image manifest",
            hint="something other than cosign or containers/image wrote this .sig tag",
        )
    config = document.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("digest"), str):
        raise HangarError(
            "the signature attachment manifest has no config descriptor",
            hint="something other than cosign or containers/image wrote this .sig tag",
        )
    layers = document.get("layers", [])
    if not isinstance(layers, list) or not all(isinstance(item, dict) for item in layers):
        raise HangarError(
            "the signature attachment manifest's layers are not a list of descriptors",
            hint="something other than cosign or containers/image wrote this .sig tag",
        )
    if len(layers) > MAX_LAYERS:
        raise HangarError(
            f"the signature attachment holds {len(layers)} layers, more than {MAX_LAYERS}",
            hint="cosign refuses such attachments too; remove old signatures from the .sig tag",
        )
    return Attachment(document, raw, [_layer_from_descriptor(item) for item in layers], config)


def _layer_from_descriptor(raw: dict) -> SignatureLayer:
    media_type = raw.get("mediaType")
    digest = raw.get("digest")
    size = raw.get("size")
    annotations = raw.get("annotations")
    return SignatureLayer(
        media_type=media_type if isinstance(media_type, str) else "",
        digest=digest if isinstance(digest, str) else "",
        size=size if isinstance(size, int) and not isinstance(size, bool) else -1,
        annotations=(
            {key: value for key, value in annotations.items() if isinstance(value, str)}
            if isinstance(annotations, dict)
            else {}
        ),
        raw=raw,
    )


# --- writing ---------------------------------------------------------------------------------


def append_signatures(
    attachment: Attachment | None, config: bytes | None, new: list[NewSignature]
) -> tuple[bytes, bytes]:
    """The attachment with `new` appended: (manifest bytes, config bytes) to upload.

    `config` is the current config blob (None to start a fresh one, c/image's shape). A new
    signature already present (same payload digest and signature annotation) is not added twice.
    The config's `rootfs.diff_ids` gets the payload digests; `history` gets one cosign-style
    entry per new layer, only when the config already has a history. The manifest's config
    descriptor gets the new config's digest and size; every other field is kept.
    """
    existing = attachment.layers if attachment else []
    added = missing_layers(attachment, [signature.layer() for signature in new])
    if len(existing) + len(added) > MAX_LAYERS:
        raise HangarError(
            f"the signature attachment would hold {len(existing) + len(added)} layers, "
            f"more than {MAX_LAYERS}",
            hint="cosign refuses such attachments; remove old signatures from the .sig tag",
        )
    config_document = _config_document(config, existing)
    _extend_config(config_document, added)
    config_bytes = encode_go_json(config_document)
    manifest = _manifest_document(attachment)
    manifest["config"] = _config_descriptor(manifest.get("config"), config_bytes)
    manifest["layers"] = [layer.raw for layer in existing] + [layer.raw for layer in added]
    return encode_go_json(manifest), config_bytes


def _manifest_document(attachment: Attachment | None) -> dict:
    if attachment is None:  # what c/image writes: OCI1FromComponents
        return {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": None,
            "layers": [],
        }
    return dict(attachment.document)  # shallow: only config and layers are replaced


def _config_descriptor(current: Any, config_bytes: bytes) -> dict:
    descriptor = dict(current) if isinstance(current, dict) else {}
    descriptor.setdefault("mediaType", OCI_CONFIG)
    descriptor["digest"] = sha256_digest(config_bytes)
    descriptor["size"] = len(config_bytes)
    return descriptor


def _config_document(config: bytes | None, existing: list[SignatureLayer]) -> dict:
    if config is not None:
        return load_document(config, "the signature attachment config")
    # c/image's shape (imgspecv1.Image with RootFS.Type "layers"); existing layers, if any
    # (an attachment whose config could not be read), keep their diff_ids.
    return {
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer.digest for layer in existing]},
    }


def _extend_config(document: dict, added: list[SignatureLayer]) -> None:
    rootfs = document.get("rootfs")
    if not isinstance(rootfs, dict):
        rootfs = document["rootfs"] = {"type": "layers", "diff_ids": []}
    diff_ids = rootfs.get("diff_ids")
    if not isinstance(diff_ids, list):
        diff_ids = rootfs["diff_ids"] = []
    diff_ids.extend(layer.digest for layer in added)
    history = document.get("history")
    if isinstance(history, list):
        history.extend(dict(COSIGN_HISTORY_ENTRY) for _ in added)


def drop_layers(
    attachment: Attachment, config: bytes, drop: set[int]
) -> tuple[bytes, bytes] | None:
    """The attachment without the layers at positions `drop`: (manifest bytes, config bytes),
    or None when no layer would remain (the tag is to be deleted).

    The config's `rootfs.diff_ids` (one per layer, in order) lose the same positions, and so
    does `history` when its non-empty-layer entries are one per layer; every other layer,
    field and number is kept as it was. A config whose diff_ids do not pair with the layers
    is refused rather than guessed at.
    """
    layers = attachment.layers
    kept = [layer.raw for index, layer in enumerate(layers) if index not in drop]
    if not kept:
        return None
    document = load_document(config, "the signature attachment config")
    rootfs = document.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if (
        not isinstance(rootfs, dict)
        or not isinstance(diff_ids, list)
        or len(diff_ids) != len(layers)
    ):
        raise HangarError(
            "the signature attachment config does not list one diff_id per layer, so layers "
            "cannot be removed from it safely",
            hint="something other than cosign or containers/image wrote this .sig tag; "
            "inspect it with `hangar inspect`",
        )
    rootfs["diff_ids"] = [value for index, value in enumerate(diff_ids) if index not in drop]
    history = document.get("history")
    if isinstance(history, list):
        document["history"] = _history_without(history, len(layers), drop)
    config_bytes = encode_go_json(document)
    manifest = dict(attachment.document)
    manifest["config"] = _config_descriptor(manifest.get("config"), config_bytes)
    manifest["layers"] = kept
    return encode_go_json(manifest), config_bytes


def _history_without(history: list, layer_count: int, drop: set[int]) -> list:
    """`history` without the entries of dropped layers (entries marked empty_layer belong to
    no layer). Left as it is when its entries do not pair with the layers."""
    layer_entries = [
        position
        for position, entry in enumerate(history)
        if not (isinstance(entry, dict) and entry.get("empty_layer") is True)
    ]
    if len(layer_entries) != layer_count:
        return history
    gone = {layer_entries[index] for index in drop}
    return [entry for position, entry in enumerate(history) if position not in gone]


# --- merging and idempotency -----------------------------------------------------------------


def _layer_key(layer: SignatureLayer) -> tuple[str, str | None]:
    return layer.digest, layer.signature_annotation


def missing_layers(current: Attachment | None, ours: list[SignatureLayer]) -> list[SignatureLayer]:
    """Our layers that `current` lacks (same payload digest and signature annotation).

    After another writer replaced the tag, append these to what is there now. Duplicates
    within `ours` are returned once.
    """
    present = {_layer_key(layer) for layer in current.layers} if current else set()
    missing: list[SignatureLayer] = []
    for layer in ours:
        key = _layer_key(layer)
        if key not in present:
            present.add(key)
            missing.append(layer)
    return missing
