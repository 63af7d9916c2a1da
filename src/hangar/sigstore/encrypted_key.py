"""The encrypted private key file of cosign and containers/image: read, write, generate.

A PEM block (`ENCRYPTED SIGSTORE PRIVATE KEY` as cosign writes, or `ENCRYPTED COSIGN PRIVATE
KEY` as c/image, skopeo and hangar write) whose body is a JSON envelope: scrypt derives a
32-byte key from the passphrase, NaCl secretbox (XSalsa20-Poly1305) holds a PKCS#8 DER private
key. docs/formats.md shows the envelope. Pure: bytes and passphrases in, keys out; where the
bytes and the passphrase come from is hangar.keys.files' and hangar.keys.passphrase's job.

Every failure a user can cause is a KeyFileError naming the key and what to do. No message
ever contains a passphrase or key material.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass

import nacl.exceptions
import nacl.secret
import nacl.utils
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from hangar.errors import KeyFileError
from hangar.sigstore.keys import PrivateKey, PublicKey, UnsupportedKeyError
from hangar.sigstore.pem import (
    COSIGN_PEM_TYPE,
    DAMAGED,
    MAKERS,
    PRIVATE_PEM_TYPES,
    PUBLIC_PEM_TYPES,
    SIGSTORE_PEM_TYPE,
    SUPPORTED_HINT,
    b64decode,
    der_element_tags,
    pem_encode,
    read_block,
)

SCRYPT_PARAMS = frozenset({(32768, 8, 1), (65536, 8, 1), (131072, 8, 1)})
KDF_NAME = "scrypt"
CIPHER_NAME = "nacl/secretbox"
SALT_SIZE = 32
NONCE_SIZE = nacl.secret.SecretBox.NONCE_SIZE  # 24
TAG_SIZE = nacl.secret.SecretBox.MACBYTES  # 16


class WrongPassphraseError(KeyFileError):
    """The envelope is intact but the passphrase does not open it."""


@dataclass(frozen=True, repr=False)
class Envelope:
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
            "`hangar import-key-pair -k FILE` (or `cosign import-key-pair --key FILE`), which "
            "writes an encrypted sigstore key"
        )
    if pem_type == "ENCRYPTED PRIVATE KEY":
        return (
            "this is a PKCS#8-encrypted key, not a sigstore key; convert it with "
            "`hangar import-key-pair -k FILE --key-passphrase-file PASS`"
        )
    if pem_type == "CERTIFICATE":
        return f"this is a certificate, not a private key; {MAKERS}"
    return f"expected {SIGSTORE_PEM_TYPE} or {COSIGN_PEM_TYPE}; {MAKERS}"


def parse_envelope(pem: bytes, source: str) -> Envelope:
    """Everything that can be checked without the passphrase, so that a wrong file is reported
    before anyone is asked to type a passphrase."""
    where = _private_where(source)
    pem_type, body = read_block(pem, where, PRIVATE_PEM_TYPES)
    if pem_type not in PRIVATE_PEM_TYPES:
        raise KeyFileError(
            f'{where}: unsupported PEM type "{pem_type}"', hint=_private_type_hint(pem_type)
        )
    if body is None:
        raise KeyFileError(f"{where}: the PEM body is not valid base64", hint=DAMAGED)
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise KeyFileError(
            f"{where}: the encrypted envelope is not valid JSON", hint=DAMAGED
        ) from None
    if not isinstance(document, dict):
        raise KeyFileError(f"{where}: the encrypted envelope is not a JSON object", hint=DAMAGED)
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
            hint=DAMAGED,
        )
    ciphertext = _json_bytes(document, "ciphertext", where, "ciphertext")
    if len(ciphertext) <= TAG_SIZE:
        raise KeyFileError(f"{where}: the ciphertext is truncated", hint=DAMAGED)
    return Envelope(salt, n, r, p, nonce, ciphertext)


def _json_object(parent: dict, name: str, where: str, label: str | None = None) -> dict:
    value = parent.get(name)
    if not isinstance(value, dict):
        raise KeyFileError(
            f'{where}: the encrypted envelope has no "{label or name}" object', hint=DAMAGED
        )
    return value


def _json_int(parent: dict, name: str, where: str) -> int:
    value = parent.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise KeyFileError(
            f'{where}: scrypt parameter "{name}" is missing or not an integer', hint=DAMAGED
        )
    return value


def _json_bytes(parent: dict, name: str, where: str, label: str) -> bytes:
    value = parent.get(name)
    decoded = b64decode(value) if isinstance(value, str) else None
    if decoded is None:
        raise KeyFileError(
            f'{where}: "{label}" in the encrypted envelope is missing or not valid base64',
            hint=DAMAGED,
        )
    return decoded


def _check_name(section: dict, expected: str, what: str, where: str) -> None:
    name = section.get("name")
    if name == expected:
        return
    shown = json.dumps(name)[:60]
    raise KeyFileError(
        f"{where}: unsupported {what} {shown} (only {expected} is supported)",
        hint=f"cosign and containers/image write {KDF_NAME} with {CIPHER_NAME}; {MAKERS}",
    )


def _derive(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=nacl.secret.SecretBox.KEY_SIZE, n=n, r=r, p=p).derive(
        passphrase
    )


def _decrypt(envelope: Envelope, passphrase: bytes, source: str) -> bytes:
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
    tags = der_element_tags(plaintext, 2)
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
        raise KeyFileError(f"{where}: the decrypted key is not a PKCS#8 private key", hint=MAKERS)
    try:
        key = serialization.load_der_private_key(plaintext, password=None)
    except UnsupportedAlgorithm:
        raise KeyFileError(f"{where}: unsupported key type", hint=SUPPORTED_HINT) from None
    except (ValueError, TypeError):
        raise KeyFileError(
            f"{where}: the decrypted key is not a valid PKCS#8 private key", hint=MAKERS
        ) from None
    try:
        return PrivateKey(key)  # type: ignore[arg-type]
    except UnsupportedKeyError as exc:
        raise KeyFileError(f"{where}: {exc.reason}", hint=SUPPORTED_HINT) from None


def load_private_key_bytes(pem: bytes, passphrase: bytes, *, source: str = "key") -> PrivateKey:
    """Decrypt an encrypted sigstore/cosign private key. KeyFileError on any failure."""
    envelope = parse_envelope(pem, source)
    return _private_key_from_pkcs8(_decrypt(envelope, passphrase, source), source)


def open_envelope(
    envelope: Envelope, candidates: Iterable[bytes], source: str, *, origin: str, hint: str
) -> PrivateKey:
    """The key opened with the first of `candidates` that fits; WrongPassphraseError naming
    `origin` (where the passphrases came from) and giving `hint` when none does."""
    for candidate in candidates:
        try:
            plaintext = _decrypt(envelope, candidate, source)
        except WrongPassphraseError:
            continue
        return _private_key_from_pkcs8(plaintext, source)
    raise WrongPassphraseError(
        f"{_private_where(source)}: wrong passphrase (read from {origin})", hint=hint
    )


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
    return pem_encode(COSIGN_PEM_TYPE, body)


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
