"""Sigstore public and private keys as cosign and containers/image use them, once decoded.

Public key: PEM `PUBLIC KEY` (PKIX) or `RSA PUBLIC KEY` (PKCS#1). Signatures are what the Go
verifiers check: ECDSA with SHA-256 (DER) on every curve, RSA PKCS#1 v1.5 with SHA-256, pure
Ed25519. The encrypted private key file is read and written by hangar.sigstore.encrypted_key;
reading key files from disk is hangar.keys.files' job.

Every failure a user can cause is a KeyFileError naming the key and what to do. No message
ever contains key material.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from hangar.errors import KeyFileError
from hangar.sigstore.pem import (
    DAMAGED,
    PRIVATE_PEM_TYPES,
    PUBLIC_PEM_TYPES,
    SUPPORTED_HINT,
    der_element_tags,
    read_block,
)

_CURVES = {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384", "secp521r1": "ecdsa-p521"}
_RSA_SIZES = (2048, 3072, 4096)

_PrivateKeyTypes = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_PublicKeyTypes = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


class Verifier(Protocol):
    """A public key as verification needs it: PublicKey, or anything with this method.

    A verifier may also offer `verifies_as_raw_ecdsa(signature, data) -> bool` (PublicKey
    does), used only to say precisely why a raw r||s ECDSA signature is refused."""

    def verify(self, signature: bytes, data: bytes) -> bool: ...


class SigningKey(Protocol):
    """A private key as signing needs it, whatever holds it: PrivateKey (a key file), or a key
    in a token (hangar.keys.hsm). `sign` returns what the verifiers check (ECDSA as ASN.1
    DER); it may block (a token call), so callers on an event loop run it in a thread."""

    def sign(self, data: bytes) -> bytes: ...

    def public_key(self) -> PublicKey: ...


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
    pem_type, der = read_block(pem, where, PUBLIC_PEM_TYPES)
    if pem_type not in PUBLIC_PEM_TYPES:
        raise KeyFileError(
            f'{where}: unsupported PEM type "{pem_type}"', hint=_public_type_hint(pem_type)
        )
    if der is None:
        raise KeyFileError(f"{where}: the PEM body is not valid base64", hint=DAMAGED)
    # PKIX starts with the AlgorithmIdentifier SEQUENCE, PKCS#1 with the modulus INTEGER:
    # the Go readers parse each PEM type with exactly one of the two.
    expected_tag = 0x30 if pem_type == "PUBLIC KEY" else 0x02
    tags = der_element_tags(der, 1)
    try:
        if tags != [expected_tag]:
            raise ValueError("structure does not match the PEM type")
        key = serialization.load_der_public_key(der)
    except UnsupportedAlgorithm:
        raise KeyFileError(f"{where}: unsupported key type", hint=SUPPORTED_HINT) from None
    except (ValueError, TypeError):
        raise KeyFileError(
            f'{where}: the PEM body is not a valid "{pem_type}" structure', hint=DAMAGED
        ) from None
    try:
        return PublicKey(key)  # type: ignore[arg-type]
    except UnsupportedKeyError as exc:
        raise KeyFileError(f"{where}: {exc.reason}", hint=SUPPORTED_HINT) from None
