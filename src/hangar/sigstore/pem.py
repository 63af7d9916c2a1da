"""PEM and DER sniffing shared by the key readers: find the first PEM block as Go's pem.Decode
does, decode its body, and tell key encodings apart by their first DER tags (PKCS#8 from SEC1,
PKIX from PKCS#1), so that a wrong file gets a precise message before any real parsing.

Also the hints every key error ends with. Pure: bytes in, values out.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from hangar.errors import KeyFileError

SIGSTORE_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"  # what cosign writes
COSIGN_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"  # what c/image, skopeo and hangar v1.8 write
PRIVATE_PEM_TYPES = (SIGSTORE_PEM_TYPE, COSIGN_PEM_TYPE)
PUBLIC_PEM_TYPES = ("PUBLIC KEY", "RSA PUBLIC KEY")
PEM_COLUMNS = 64

MAKERS = (
    "use a key made by `hangar generate-sigstore-key`, `cosign generate-key-pair` or "
    "`skopeo generate-sigstore-key`"
)
SUPPORTED_HINT = (
    "use ECDSA P-256 as cosign and skopeo generate, or P-384, P-521, RSA 2048/3072/4096, Ed25519"
)
DAMAGED = "the file is damaged: copy it again from where the key pair was made"


@dataclass(frozen=True)
class _PemBlock:
    type: str
    body: bytes | None  # None: the END line is missing (a truncated file)


_BEGIN_LINE = re.compile(rb"^-----BEGIN ([^\r\n]*?)-----[ \t]*\r?$", re.MULTILINE)


def _find_pem_block(data: bytes) -> _PemBlock | None:
    """The first PEM block, skipping text before it as Go's pem.Decode does."""
    begin = _BEGIN_LINE.search(data)
    if begin is None:
        return None
    pem_type = begin.group(1).decode("ascii", "replace")
    end = data.find(b"-----END " + begin.group(1) + b"-----", begin.end())
    if end < 0:
        return _PemBlock(pem_type, None)
    return _PemBlock(pem_type, data[begin.end() : end])


def pem_encode(pem_type: str, der: bytes) -> bytes:
    text = base64.b64encode(der).decode("ascii")
    lines = [text[i : i + PEM_COLUMNS] for i in range(0, len(text), PEM_COLUMNS)]
    return (
        f"-----BEGIN {pem_type}-----\n" + "\n".join(lines) + f"\n-----END {pem_type}-----\n"
    ).encode("ascii")


def looks_public(data: bytes) -> bool:
    """Whether the bytes hold a public key PEM block (anywhere)."""
    return any(f"-----BEGIN {kind}-----".encode() in data for kind in PUBLIC_PEM_TYPES)


def read_block(data: bytes, where: str, expected: tuple[str, ...]) -> tuple[str, bytes | None]:
    """(PEM type, decoded body or None when it is not base64) of the first block; errors for
    an empty, non-PEM or truncated file. The caller checks the type before the body."""
    if not data.strip():
        raise KeyFileError(f"{where}: the file is empty", hint=MAKERS)
    block = _find_pem_block(data)
    if block is None:
        if data.lstrip().startswith(b"-----BEGIN"):
            raise KeyFileError(f"{where}: truncated PEM header", hint=DAMAGED)
        raise KeyFileError(
            f"{where}: not a PEM file (no -----BEGIN line)",
            hint=f"expected PEM {' or '.join(expected)}; {MAKERS}",
        )
    if block.type in expected and block.body is None:
        raise KeyFileError(f"{where}: truncated (no -----END {block.type}----- line)", hint=DAMAGED)
    if block.body is None:
        return block.type, None  # truncated, but of a type the caller refuses anyway
    return block.type, b64decode(b"".join(block.body.split()))


def b64decode(text: bytes | str) -> bytes | None:
    """Strict standard base64, None when it is not."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def der_element_tags(der: bytes, count: int) -> list[int]:
    """Tags of the first `count` elements inside an outer DER SEQUENCE: enough to tell PKCS#8
    (INTEGER, SEQUENCE) from SEC1 (INTEGER, OCTET STRING) and PKIX from PKCS#1."""
    position = _der_content_start(der, 0)
    if position is None or der[0] != 0x30:
        return []
    tags: list[int] = []
    while len(tags) < count and position < len(der):
        tags.append(der[position])
        start = _der_content_start(der, position)
        if start is None:
            break
        position = start + _der_length(der, position)
    return tags


def _der_content_start(der: bytes, position: int) -> int | None:
    if position + 2 > len(der):
        return None
    first = der[position + 1]
    if first < 0x80:
        return position + 2
    return position + 2 + (first & 0x7F)


def _der_length(der: bytes, position: int) -> int:
    first = der[position + 1]
    if first < 0x80:
        return first
    size = first & 0x7F
    return int.from_bytes(der[position + 2 : position + 2 + size], "big")
