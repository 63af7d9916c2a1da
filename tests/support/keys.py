"""Sigstore key material for tests, made without hangar's own key code: an envelope writer over
hashlib.scrypt and libsodium's secretbox, keys of every supported type, a field-by-field check
of a generated pair, and readers of vector files over hangar's pure byte loaders."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import textwrap
from collections.abc import Callable
from pathlib import Path

import nacl.bindings
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x25519

from hangar.sigstore.encrypted_key import load_private_key_bytes
from hangar.sigstore.keys import PrivateKey, PublicKey, load_public_key_bytes

PASS = b"test passphrase"


def scrypt(passphrase: bytes, salt: bytes, n: int, r: int = 8, p: int = 1) -> bytes:
    return hashlib.scrypt(passphrase, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=512 * 1024**2)


def pkcs8(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_envelope(
    plaintext: bytes,
    passphrase: bytes = PASS,
    *,
    pem_type: str = "ENCRYPTED COSIGN PRIVATE KEY",
    n: int = 32768,
    r: int = 8,
    p: int = 1,
    mutate: Callable[[dict], None] | None = None,
) -> bytes:
    """The envelope of docs/formats.md, built with hashlib.scrypt and libsodium directly."""
    salt = os.urandom(32)
    nonce = os.urandom(24)
    key = scrypt(passphrase, salt, n, r, p)
    sealed = nacl.bindings.crypto_secretbox(plaintext, nonce, key)  # tag || ciphertext
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    document = {
        "kdf": {"name": "scrypt", "params": {"N": n, "r": r, "p": p}, "salt": b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
        "ciphertext": b64(sealed),
    }
    if mutate is not None:
        mutate(document)
    return pem_block(pem_type, json.dumps(document).encode())


def pem_block(pem_type: str, body: bytes) -> bytes:
    lines = textwrap.wrap(base64.b64encode(body).decode(), 64)
    return (
        f"-----BEGIN {pem_type}-----\n" + "\n".join(lines) + f"\n-----END {pem_type}-----\n"
    ).encode()


def assert_key_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> None:
    """The message names the key and the problem, one line, and has a hint."""
    text = str(excinfo.value)
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    assert "\n" not in text
    assert excinfo.value.hint


def write_file(tmp_path: Path, name: str, data: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    path.chmod(mode)
    return path


def read_private(path: Path, passphrase: bytes) -> PrivateKey:
    """A private key file through the pure loader, named by its path as hangar.keys.files does."""
    return load_private_key_bytes(path.read_bytes(), passphrase, source=str(path))


def read_public(path: Path) -> PublicKey:
    return load_public_key_bytes(path.read_bytes(), source=str(path))


# --- keys of every supported type, generated once ----------------------------------------------

KEY_TYPES = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ecdsa-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "ecdsa-p521": lambda: ec.generate_private_key(ec.SECP521R1()),
    "rsa-2048": lambda: rsa.generate_private_key(65537, 2048),
    "rsa-3072": lambda: rsa.generate_private_key(65537, 3072),
    "rsa-4096": lambda: rsa.generate_private_key(65537, 4096),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}
_generated: dict[str, object] = {}


def crypto_key(key_type: str):
    if key_type not in _generated:
        _generated[key_type] = KEY_TYPES[key_type]()
    return _generated[key_type]


UNSUPPORTED = [
    (lambda: ec.generate_private_key(ec.SECP256K1()), "unsupported ECDSA curve secp256k1"),
    (lambda: ec.generate_private_key(ec.SECP224R1()), "unsupported ECDSA curve secp224r1"),
    (lambda: rsa.generate_private_key(65537, 1024), "unsupported RSA key size 1024 bits"),
    (lambda: rsa.generate_private_key(65537, 2560), "unsupported RSA key size 2560 bits"),
    (ed448.Ed448PrivateKey.generate, "unsupported key type"),
    (x25519.X25519PrivateKey.generate, "unsupported key type"),
    (lambda: dsa.generate_private_key(2048), "unsupported key type"),
]


# --- what generate_key_pair writes ---------------------------------------------------------------

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
