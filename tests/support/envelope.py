"""The cosign private key envelope (scrypt + NaCl secretbox in PEM) read and checked field by
field with hashlib.scrypt and libsodium directly, independent of hangar.sigstore.keys."""

from __future__ import annotations

import base64
import hashlib
import re

import nacl.bindings
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def scrypt(passphrase: bytes, salt: bytes, n: int, r: int = 8, p: int = 1) -> bytes:
    return hashlib.scrypt(passphrase, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=512 * 1024**2)


def pkcs8(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


ENVELOPE_TEXT = re.compile(
    r'\{"kdf":\{"name":"scrypt","params":\{"N":65536,"r":8,"p":1\},"salt":"(?P<salt>[A-Za-z0-9+/=]+)"\},'
    r'"cipher":\{"name":"nacl/secretbox","nonce":"(?P<nonce>[A-Za-z0-9+/=]+)"\},'
    r'"ciphertext":"(?P<ciphertext>[A-Za-z0-9+/=]+)"\}'
)


def parse_generated_private_key(pem: bytes, passphrase: bytes) -> bytes:
    """Check every field of a generated private key and return the decrypted PKCS#8 DER."""
    lines = pem.decode("ascii").split("\n")
    assert lines[0] == "-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----"
    assert lines[-2] == "-----END ENCRYPTED COSIGN PRIVATE KEY-----"
    assert lines[-1] == ""  # ends with a newline
    body_lines = lines[1:-2]
    assert all(len(line) == 64 for line in body_lines[:-1])
    assert 0 < len(body_lines[-1]) <= 64
    envelope_text = base64.b64decode("".join(body_lines), validate=True).decode()
    match = ENVELOPE_TEXT.fullmatch(envelope_text)
    assert match, envelope_text
    salt = base64.b64decode(match["salt"], validate=True)
    nonce = base64.b64decode(match["nonce"], validate=True)
    sealed = base64.b64decode(match["ciphertext"], validate=True)
    assert len(salt) == 32
    assert len(nonce) == 24
    key = scrypt(passphrase, salt, 65536)
    return nacl.bindings.crypto_secretbox_open(sealed, nonce, key)


def check_generated_pair(private_pem: bytes, public_pem: bytes, passphrase: bytes) -> None:
    plaintext = parse_generated_private_key(private_pem, passphrase)
    inner = serialization.load_der_private_key(plaintext, password=None)
    assert isinstance(inner, ec.EllipticCurvePrivateKey)
    assert inner.curve.name == "secp256r1"
    assert plaintext == pkcs8(inner)  # PKCS#8 (not SEC1) inside
    assert public_pem == inner.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
