"""Sigstore key pairs exactly as cosign and containers/image read and write them.

Private key: a PEM block (`ENCRYPTED SIGSTORE PRIVATE KEY` or `ENCRYPTED COSIGN PRIVATE KEY`)
whose body is a JSON envelope: scrypt derives a 32-byte key from the passphrase, NaCl secretbox
(XSalsa20-Poly1305) holds a PKCS#8 DER private key. Public key: PEM `PUBLIC KEY` (PKIX) or
`RSA PUBLIC KEY` (PKCS#1). Signatures are what the Go verifiers check: ECDSA with SHA-256 (DER)
on every curve, RSA PKCS#1 v1.5 with SHA-256, pure Ed25519.

Every failure a user can cause is a KeyFileError naming the key and what to do. No message
ever contains a passphrase or key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.secret
import nacl.utils
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from hangar.errors import KeyFileError
from hangar.sigstore import passphrase as passphrase_policy

SIGSTORE_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"  # what cosign writes
COSIGN_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"  # what c/image, skopeo and hangar v1.8 write
PRIVATE_PEM_TYPES = (SIGSTORE_PEM_TYPE, COSIGN_PEM_TYPE)
PUBLIC_PEM_TYPES = ("PUBLIC KEY", "RSA PUBLIC KEY")
# The only scrypt costs the Go readers (secure-systems-lab `encrypted`) accept.
SCRYPT_PARAMS = frozenset({(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)})
KDF_NAME = "scrypt"
CIPHER_NAME = "nacl/secretbox"
SALT_SIZE = 32
NONCE_SIZE = nacl.secret.SecretBox.NONCE_SIZE  # 24
TAG_SIZE = nacl.secret.SecretBox.MACBYTES  # 16
PEM_COLUMNS = 64
# Key files are a few hundred bytes; a cap stops a mistyped path (an image tarball) early.
MAX_KEY_FILE_SIZE = 1024 * 1024

_CURVES = {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384", "secp521r1": "ecdsa-p521"}
_RSA_SIZES = (2048, 3072, 4096)
_MAKERS = (
    "use a key made by `hangar generate-sigstore-key`, `cosign generate-key-pair` or "
    "`skopeo generate-sigstore-key`"
)
_SUPPORTED_HINT = (
    "use ECDSA P-256 as cosign and skopeo generate, or P-384, P-521, RSA 2048/3072/4096, Ed25519"
)

_DAMAGED = "the file is damaged: copy it again from where the key pair was made"

_PrivateKeyTypes = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_PublicKeyTypes = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class WrongPassphraseError(KeyFileError):
    """The envelope is intact but the passphrase does not open it."""


class UnsupportedKeyError(ValueError):
    """A key type, curve or size that cosign and containers/image do not verify."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _key_type(key: object) -> str:
    """Name a supported key ("ecdsa-p256", "rsa-2048", "ed25519"); refuse anything else."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        name = _CURVES.get(key.curve.name)
        if name is None:
            raise UnsupportedKeyError(f"unsupported ECDSA curve {key.curve.name}")
        return name
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size not in _RSA_SIZES:
            raise UnsupportedKeyError(f"unsupported RSA key size {key.key_size} bits")
        return f"rsa-{key.key_size}"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "").replace("PublicKey", "")
    raise UnsupportedKeyError(f"unsupported key type {kind or 'unknown'}")


class PublicKey:
    """A public key that verifies signatures as containers/image and cosign do."""

    __slots__ = ("_key", "key_type")

    def __init__(self, key: _PublicKeyTypes) -> None:
        self.key_type = _key_type(key)  # raises UnsupportedKeyError (a ValueError)
        self._key = key

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when `signature` is valid over `data`; never raises for a bad signature."""
        try:
            self._verify(signature, data)
        except (InvalidSignature, ValueError, TypeError, OverflowError):
            return False
        return True

    def _verify(self, signature: bytes, data: bytes) -> None:
        key = self._key
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(_ecdsa_der(signature), data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, data)

    def verifies_as_raw_ecdsa(self, signature: bytes, data: bytes) -> bool:
        """True when `signature` is a valid ECDSA signature in raw r||s form, which podman and
        CRI-O refuse (verify() refuses it too): for a precise reason, never for acceptance."""
        key = self._key
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        der = _raw_ecdsa_as_der(signature)
        if der is None or der == signature:
            return False
        try:
            key.verify(der, data, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True

    def der(self) -> bytes:
        """DER SubjectPublicKeyInfo."""
        return self._key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def fingerprint(self) -> str:
        """sha256 hex of the DER SubjectPublicKeyInfo."""
        return hashlib.sha256(self.der()).hexdigest()

    def pem(self) -> bytes:
        """PEM `PUBLIC KEY` (PKIX), as cosign writes a .pub file."""
        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.der() == self.der()

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return f"PublicKey({self.key_type}, sha256:{self.fingerprint[:16]})"


def _ecdsa_der(signature: bytes) -> bytes:
    """The signature, when it is ASN.1 DER. podman/CRI-O builds in the field (containers/image
    5.29 with sigstore 1.7) verify ECDSA with VerifyASN1 only, so a raw r||s (IEEE P1363)
    signature is refused here too, even though newer sigstore versions take it."""
    try:
        decode_dss_signature(signature)
    except ValueError:
        raise InvalidSignature("not an ASN.1 DER ECDSA signature") from None
    return signature


def _raw_ecdsa_as_der(signature: bytes) -> bytes | None:
    """A raw r||s signature re-encoded as DER, to say why such a signature is refused."""
    if not signature or len(signature) > 132 or len(signature) % 2:
        return None
    half = len(signature) // 2
    r = int.from_bytes(signature[:half], "big")
    s = int.from_bytes(signature[half:], "big")
    return encode_dss_signature(r, s)


class PrivateKey:
    """A decrypted signing key. Holds key material: never log it or write it anywhere."""

    __slots__ = ("_key", "key_type")

    def __init__(self, key: _PrivateKeyTypes) -> None:
        self.key_type = _key_type(key)  # raises UnsupportedKeyError (a ValueError)
        self._key = key

    def sign(self, data: bytes) -> bytes:
        """Sign as the verifiers expect: ECDSA/SHA-256 (DER), RSA PKCS#1 v1.5/SHA-256, Ed25519."""
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(hashes.SHA256()))
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return key.sign(data)

    def public_key(self) -> PublicKey:
        return PublicKey(self._key.public_key())

    def __repr__(self) -> str:
        return f"PrivateKey({self.key_type})"


# ---------------------------------------------------------------------------------------------
# PEM


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


def _pem_encode(pem_type: str, der: bytes) -> bytes:
    text = base64.b64encode(der).decode("ascii")
    lines = [text[i : i + PEM_COLUMNS] for i in range(0, len(text), PEM_COLUMNS)]
    return (
        f"-----BEGIN {pem_type}-----\n" + "\n".join(lines) + f"\n-----END {pem_type}-----\n"
    ).encode("ascii")


def _read_block(data: bytes, where: str, expected: tuple[str, ...]) -> tuple[str, bytes | None]:
    """(PEM type, decoded body or None when it is not base64) of the first block; errors for
    an empty, non-PEM or truncated file. The caller checks the type before the body."""
    if not data.strip():
        raise KeyFileError(f"{where}: the file is empty", hint=_MAKERS)
    block = _find_pem_block(data)
    if block is None:
        if data.lstrip().startswith(b"-----BEGIN"):
            raise KeyFileError(f"{where}: truncated PEM header", hint=_DAMAGED)
        raise KeyFileError(
            f"{where}: not a PEM file (no -----BEGIN line)",
            hint=f"expected PEM {' or '.join(expected)}; {_MAKERS}",
        )
    if block.type in expected and block.body is None:
        raise KeyFileError(
            f"{where}: truncated (no -----END {block.type}----- line)", hint=_DAMAGED
        )
    if block.body is None:
        return block.type, None  # truncated, but of a type the caller refuses anyway
    return block.type, _b64decode(b"".join(block.body.split()))


def _b64decode(text: bytes | str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _der_element_tags(der: bytes, count: int) -> list[int]:
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


# ---------------------------------------------------------------------------------------------
# Private keys


@dataclass(frozen=True, repr=False)
class _Envelope:
    salt: bytes
    n: int
    r: int
    p: int
    nonce: bytes
    ciphertext: bytes


def _private_where(source: str) -> str:
    return f"private key {source}"


def _private_type_hint(pem_type: str) -> str:
    if pem_type in PUBLIC_PEM_TYPES:
        return (
            "this is a public key; -k takes the private key of the pair (the .key file); "
            "give the .pub to `hangar sign validate -p`"
        )
    if pem_type in ("PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "OPENSSH PRIVATE KEY"):
        return (
            "this is an unencrypted private key; convert it with "
            "`cosign import-key-pair --key FILE`, which writes an encrypted sigstore key"
        )
    if pem_type == "ENCRYPTED PRIVATE KEY":
        return (
            "this is a PKCS#8-encrypted key, not a sigstore key; decrypt it with "
            "`openssl pkcs8` and convert it with `cosign import-key-pair --key FILE`"
        )
    if pem_type == "CERTIFICATE":
        return f"this is a certificate, not a private key; {_MAKERS}"
    return f"expected {SIGSTORE_PEM_TYPE} or {COSIGN_PEM_TYPE}; {_MAKERS}"


def _parse_envelope(pem: bytes, source: str) -> _Envelope:
    """Everything that can be checked without the passphrase, so that a wrong file is reported
    before anyone is asked to type a passphrase."""
    where = _private_where(source)
    pem_type, body = _read_block(pem, where, PRIVATE_PEM_TYPES)
    if pem_type not in PRIVATE_PEM_TYPES:
        raise KeyFileError(
            f'{where}: unsupported PEM type "{pem_type}"', hint=_private_type_hint(pem_type)
        )
    if body is None:
        raise KeyFileError(f"{where}: the PEM body is not valid base64", hint=_DAMAGED)
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise KeyFileError(
            f"{where}: the encrypted envelope is not valid JSON", hint=_DAMAGED
        ) from None
    if not isinstance(document, dict):
        raise KeyFileError(f"{where}: the encrypted envelope is not a JSON object", hint=_DAMAGED)
    kdf = _json_object(document, "kdf", where)
    cipher = _json_object(document, "cipher", where)
    _check_name(kdf, KDF_NAME, "key derivation", where)
    params = _json_object(kdf, "params", where, "kdf.params")
    n, r, p = (_json_int(params, name, where) for name in ("N", "r", "p"))
    if (n, r, p) not in SCRYPT_PARAMS:
        raise KeyFileError(
            f"{where}: unsupported scrypt parameters N={n} r={r} p={p}",
            hint="cosign and containers/image accept only N=32768, 65536 or 131072 with r=8 "
            "p=1; create the key again with `hangar generate-sigstore-key`",
        )
    salt = _json_bytes(kdf, "salt", where, "kdf.salt")
    _check_name(cipher, CIPHER_NAME, "cipher", where)
    nonce = _json_bytes(cipher, "nonce", where, "cipher.nonce")
    if len(nonce) != NONCE_SIZE:
        raise KeyFileError(
            f"{where}: the cipher nonce is {len(nonce)} bytes, {CIPHER_NAME} needs {NONCE_SIZE}",
            hint=_DAMAGED,
        )
    ciphertext = _json_bytes(document, "ciphertext", where, "ciphertext")
    if len(ciphertext) <= TAG_SIZE:
        raise KeyFileError(f"{where}: the ciphertext is truncated", hint=_DAMAGED)
    return _Envelope(salt, n, r, p, nonce, ciphertext)


def _json_object(parent: dict, name: str, where: str, label: str | None = None) -> dict:
    value = parent.get(name)
    if not isinstance(value, dict):
        raise KeyFileError(
            f'{where}: the encrypted envelope has no "{label or name}" object', hint=_DAMAGED
        )
    return value


def _json_int(parent: dict, name: str, where: str) -> int:
    value = parent.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise KeyFileError(
            f'{where}: scrypt parameter "{name}" is missing or not an integer', hint=_DAMAGED
        )
    return value


def _json_bytes(parent: dict, name: str, where: str, label: str) -> bytes:
    value = parent.get(name)
    decoded = _b64decode(value) if isinstance(value, str) else None
    if decoded is None:
        raise KeyFileError(
            f'{where}: "{label}" in the encrypted envelope is missing or not valid base64',
            hint=_DAMAGED,
        )
    return decoded


def _check_name(section: dict, expected: str, what: str, where: str) -> None:
    name = section.get("name")
    if name == expected:
        return
    shown = json.dumps(name)[:60]
    raise KeyFileError(
        f"{where}: unsupported {what} {shown} (only {expected} is supported)",
        hint=f"cosign and containers/image write {KDF_NAME} with {CIPHER_NAME}; {_MAKERS}",
    )


def _derive(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=nacl.secret.SecretBox.KEY_SIZE, n=n, r=r, p=p).derive(
        passphrase
    )


def _decrypt(envelope: _Envelope, passphrase: bytes, source: str) -> bytes:
    key = _derive(passphrase, envelope.salt, envelope.n, envelope.r, envelope.p)
    try:
        return nacl.secret.SecretBox(key).decrypt(envelope.ciphertext, envelope.nonce)
    except nacl.exceptions.CryptoError:
        raise WrongPassphraseError(
            f"{_private_where(source)}: wrong passphrase (decryption failed)",
            hint="give the passphrase the key was created with",
        ) from None


def _private_key_from_pkcs8(plaintext: bytes, source: str) -> PrivateKey:
    where = _private_where(source)
    tags = _der_element_tags(plaintext, 2)
    if tags == [0x02, 0x04]:
        # Accepting it would bless keys that cosign and c/image refuse to sign with.
        raise KeyFileError(
            f"{where}: the decrypted key is SEC1 (EC PRIVATE KEY DER), not PKCS#8 as sigstore "
            "keys must be; cosign refuses it too (x509: use ParseECPrivateKey instead for "
            "this key format)",
            hint="create a new pair with `hangar generate-sigstore-key`, or convert the key "
            "to PKCS#8 with `openssl pkcs8 -topk8 -nocrypt` and import it with "
            "`cosign import-key-pair --key FILE`",
        )
    if tags != [0x02, 0x30]:
        raise KeyFileError(f"{where}: the decrypted key is not a PKCS#8 private key", hint=_MAKERS)
    try:
        key = serialization.load_der_private_key(plaintext, password=None)
    except UnsupportedAlgorithm:
        raise KeyFileError(f"{where}: unsupported key type", hint=_SUPPORTED_HINT) from None
    except (ValueError, TypeError):
        raise KeyFileError(
            f"{where}: the decrypted key is not a valid PKCS#8 private key", hint=_MAKERS
        ) from None
    try:
        return PrivateKey(key)  # type: ignore[arg-type]
    except UnsupportedKeyError as exc:
        raise KeyFileError(f"{where}: {exc.reason}", hint=_SUPPORTED_HINT) from None


def load_private_key_bytes(pem: bytes, passphrase: bytes, *, source: str = "key") -> PrivateKey:
    """Decrypt an encrypted sigstore/cosign private key. KeyFileError on any failure."""
    envelope = _parse_envelope(pem, source)
    return _private_key_from_pkcs8(_decrypt(envelope, passphrase, source), source)


def load_private_key(path: str | os.PathLike[str], passphrase: bytes) -> PrivateKey:
    """Read and decrypt a private key file. KeyFileError on any failure."""
    pem = _read_key_file(path, "private key")
    return load_private_key_bytes(pem, passphrase, source=str(path))


def read_signing_key(path: str | os.PathLike[str], passphrase_file: str | None) -> PrivateKey:
    """The signing key with the whole passphrase policy (see hangar.sigstore.passphrase):
    the file is checked first, then the passphrase is read, then the key is decrypted."""
    source = str(path)
    pem = _read_key_file(path, "private key")
    envelope = _parse_envelope(pem, source)
    secret = passphrase_policy.read_passphrase(passphrase_file, key_path=source)
    for candidate in secret.candidates:
        try:
            plaintext = _decrypt(envelope, candidate, source)
        except WrongPassphraseError:
            continue
        return _private_key_from_pkcs8(plaintext, source)
    raise WrongPassphraseError(
        f"{_private_where(source)}: wrong passphrase (read from {secret.origin})",
        hint=secret.hint,
    )


def _looks_public(data: bytes) -> bool:
    return any(f"-----BEGIN {kind}-----".encode() in data for kind in PUBLIC_PEM_TYPES)


def _read_key_file(path: str | os.PathLike[str], what: str) -> bytes:
    """The bytes of a key file, with errors that name it; warns on a world-readable private
    key."""
    where = f"{what} {path}"
    file = Path(path)
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE_SIZE + 1)
            # A .pub given to -k is an error of its own: no permissions advice before it.
            if what == "private key" and not _looks_public(data):
                passphrase_policy.warn_if_world_readable(handle.fileno(), f"private key {path}")
    except FileNotFoundError:
        raise KeyFileError(f"{where}: the file does not exist", hint="check the path") from None
    except IsADirectoryError:
        raise KeyFileError(
            f"{where}: is a directory, not a file", hint="give the path of the key file"
        ) from None
    except OSError as exc:
        raise KeyFileError(
            f"{where}: cannot read it ({exc.strerror or exc})",
            hint="check the path and the file's permissions",
        ) from None
    if len(data) > MAX_KEY_FILE_SIZE:
        raise KeyFileError(
            f"{where}: the file is larger than {MAX_KEY_FILE_SIZE} bytes, not a key",
            hint="check the path",
        )
    return data


# ---------------------------------------------------------------------------------------------
# Public keys


def _public_type_hint(pem_type: str) -> str:
    if pem_type in PRIVATE_PEM_TYPES or "PRIVATE KEY" in pem_type:
        return (
            "this is a private key; validation needs the public key of the pair, the .pub "
            "file; keep the private key to yourself"
        )
    if pem_type == "CERTIFICATE":
        return "this is a certificate; extract its key with `openssl x509 -pubkey -noout`"
    return 'expected PEM "PUBLIC KEY" or "RSA PUBLIC KEY"'


def load_public_key_bytes(pem: bytes, *, source: str = "key") -> PublicKey:
    """Parse a PEM `PUBLIC KEY` (PKIX) or `RSA PUBLIC KEY` (PKCS#1). KeyFileError on failure."""
    where = f"public key {source}"
    pem_type, der = _read_block(pem, where, PUBLIC_PEM_TYPES)
    if pem_type not in PUBLIC_PEM_TYPES:
        raise KeyFileError(
            f'{where}: unsupported PEM type "{pem_type}"', hint=_public_type_hint(pem_type)
        )
    if der is None:
        raise KeyFileError(f"{where}: the PEM body is not valid base64", hint=_DAMAGED)
    # PKIX starts with the AlgorithmIdentifier SEQUENCE, PKCS#1 with the modulus INTEGER:
    # the Go readers parse each PEM type with exactly one of the two.
    expected_tag = 0x30 if pem_type == "PUBLIC KEY" else 0x02
    tags = _der_element_tags(der, 1)
    try:
        if tags != [expected_tag]:
            raise ValueError("structure does not match the PEM type")
        key = serialization.load_der_public_key(der)
    except UnsupportedAlgorithm:
        raise KeyFileError(f"{where}: unsupported key type", hint=_SUPPORTED_HINT) from None
    except (ValueError, TypeError):
        raise KeyFileError(
            f'{where}: the PEM body is not a valid "{pem_type}" structure', hint=_DAMAGED
        ) from None
    try:
        return PublicKey(key)  # type: ignore[arg-type]
    except UnsupportedKeyError as exc:
        raise KeyFileError(f"{where}: {exc.reason}", hint=_SUPPORTED_HINT) from None


def load_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """Read a public key file. KeyFileError on any failure."""
    return load_public_key_bytes(_read_key_file(path, "public key"), source=str(path))


# ---------------------------------------------------------------------------------------------
# Writing


def encrypt_private_key(
    pkcs8_der: bytes, passphrase: bytes, *, n: int = 65536, r: int = 8, p: int = 1
) -> bytes:
    """Wrap a PKCS#8 DER key in the envelope cosign and c/image read; PEM
    `ENCRYPTED COSIGN PRIVATE KEY` with 64-column lines."""
    if (n, r, p) not in SCRYPT_PARAMS:
        raise ValueError(f"scrypt N={n} r={r} p={p} would make a key the Go readers refuse")
    salt = os.urandom(SALT_SIZE)
    nonce = nacl.utils.random(NONCE_SIZE)
    box = nacl.secret.SecretBox(_derive(passphrase, salt, n, r, p))
    ciphertext = box.encrypt(pkcs8_der, nonce).ciphertext  # tag first, as Go's secretbox.Seal
    envelope = {
        "kdf": {"name": KDF_NAME, "params": {"N": n, "r": r, "p": p}, "salt": _b64(salt)},
        "cipher": {"name": CIPHER_NAME, "nonce": _b64(nonce)},
        "ciphertext": _b64(ciphertext),
    }
    body = json.dumps(envelope, separators=(",", ":")).encode("ascii")  # Go's json.Marshal form
    return _pem_encode(COSIGN_PEM_TYPE, body)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def generate_key_pair(passphrase: bytes) -> tuple[bytes, bytes]:
    """A new ECDSA P-256 pair, as cosign and skopeo generate: (private PEM, public PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return encrypt_private_key(pkcs8, passphrase), PublicKey(key.public_key()).pem()
