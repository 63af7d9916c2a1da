"""hangar.sigstore.keys against keys and signatures made by containers/image and cosign, and
every supported key type: sign, verify, PEM forms, refusals."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from hangar.errors import KeyFileError
from hangar.sigstore.encrypted_key import load_private_key_bytes
from hangar.sigstore.keys import PrivateKey, PublicKey, load_public_key_bytes
from tests.support import paths
from tests.support.keys import (
    KEY_TYPES,
    PASS,
    UNSUPPORTED,
    assert_key_error,
    crypto_key,
    make_envelope,
    pem_block,
    pkcs8,
    read_private,
    read_public,
)

VECTORS = paths.VECTORS
CIMAGE_KEYS = VECTORS / "cimage-keys"
COSIGN_KEYS = VECTORS / "cosign-keys"
ATTACHMENT = VECTORS / "cimage-attachment"
CIMAGE_FIXTURES = paths.CIMAGE_FIXTURES
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"


def verify_with_cryptography(key, signature: bytes, data: bytes) -> None:
    """The signature format the Go verifiers check, without hangar's key code (raises if wrong)."""
    public = key.public_key()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        decode_dss_signature(signature)  # DER, not r||s
        public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        public.verify(signature, data)  # pure Ed25519


# --- vectors made by containers/image and cosign -----------------------------------------------


def test_cimage_key2_passphrase_is_utf8_with_inner_space() -> None:
    key = read_private(CIMAGE_KEYS / "key2.private", "päss phrase".encode())
    assert key.public_key() == read_public(CIMAGE_KEYS / "key2.pub")


def test_cimage_key3_opens_only_with_the_untrimmed_first_line() -> None:
    path = CIMAGE_KEYS / "key3.private"
    with pytest.raises(KeyFileError) as excinfo:
        read_private(path, b"spaced passphrase")
    assert_key_error(excinfo, str(path), "wrong passphrase")
    key = read_private(path, b"  spaced passphrase ")
    assert key.public_key() == read_public(CIMAGE_KEYS / "key3.pub")


def test_cimage_key4_opens_only_with_the_carriage_return_skopeo_kept() -> None:
    path = CIMAGE_KEYS / "key4.private"
    assert (CIMAGE_KEYS / "key4.passphrase").read_bytes() == b"crlf passphrase\r\n"
    with pytest.raises(KeyFileError) as excinfo:
        read_private(path, b"crlf passphrase")
    assert_key_error(excinfo, str(path), "wrong passphrase")
    key = read_private(path, b"crlf passphrase\r")
    assert key.public_key() == read_public(CIMAGE_KEYS / "key4.pub")


@pytest.mark.parametrize("name", ["pemcosignkey.key", "pemsigstorekey.key"])
def test_cosign_test_keys_load(name: str) -> None:
    key = read_private(COSIGN_KEYS / name, b"hello")
    assert key.key_type == "ecdsa-p256"
    signature = key.sign(b"data")
    assert key.public_key().verify(signature, b"data")


def test_cosign_sec1_inner_key_is_refused_as_cosign_does() -> None:
    path = COSIGN_KEYS / "pemcosigneckey.key"
    with pytest.raises(KeyFileError) as excinfo:
        read_private(path, b"hello")
    assert_key_error(excinfo, str(path), "SEC1", "not PKCS#8", "ParseECPrivateKey")


def _attachment_layers() -> list[tuple[bytes, bytes]]:
    """(payload bytes, raw signature) of each layer of the c/image-written .sig manifest."""
    manifest = json.loads((ATTACHMENT / "sig-manifest.json").read_bytes())
    payloads = {}
    for path in ATTACHMENT.glob("payload-*.json"):
        data = path.read_bytes()
        payloads["sha256:" + hashlib.sha256(data).hexdigest()] = data
    return [
        (payloads[layer["digest"]], base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION]))
        for layer in manifest["layers"]
    ]


def test_cimage_attachment_signatures_verify_with_the_matching_key_only() -> None:
    layers = _attachment_layers()
    key1 = read_public(CIMAGE_KEYS / "key1.pub")
    key2 = read_public(CIMAGE_KEYS / "key2.pub")
    assert len(layers) == 2
    (payload1, signature1), (payload2, signature2) = layers
    assert payload1 == (ATTACHMENT / "payload-1.json").read_bytes()
    assert payload2 == (ATTACHMENT / "payload-2.json").read_bytes()
    assert key1.verify(signature1, payload1)
    assert key2.verify(signature2, payload2)
    assert not key2.verify(signature1, payload1)
    assert not key1.verify(signature2, payload2)
    assert not key1.verify(signature1, payload1 + b" ")


def _cimage_fixture_signature(path: Path) -> tuple[bytes, bytes]:
    """c/image's `dir:` signature file: NUL, "sigstore-json", newline, JSON."""
    data = path.read_bytes()
    prefix = b"\x00sigstore-json\n"
    assert data.startswith(prefix)
    document = json.loads(data[len(prefix) :])
    payload = base64.b64decode(document["payload"])
    return payload, base64.b64decode(document["annotations"][SIGNATURE_ANNOTATION])


@pytest.mark.parametrize(
    "fixture",
    ["dir-img-cosign-valid/signature-1", "dir-img-cosign-valid-2/signature-1"],
)
def test_cosign_made_signatures_from_cimage_fixtures_verify(fixture: str) -> None:
    payload, signature = _cimage_fixture_signature(CIMAGE_FIXTURES / fixture)
    cosign_pub = read_public(CIMAGE_FIXTURES / "cosign.pub")
    assert cosign_pub.verify(signature, payload)
    assert not read_public(CIMAGE_KEYS / "key1.pub").verify(signature, payload)


def test_signature_by_an_unknown_cosign_key_fails() -> None:
    payload, signature = _cimage_fixture_signature(CIMAGE_FIXTURES / "unknown-cosign-key.signature")
    assert not read_public(CIMAGE_FIXTURES / "cosign.pub").verify(signature, payload)


# --- round trip of every key type ---------------------------------------------------------------


@pytest.mark.parametrize(
    "pem_type", ["ENCRYPTED COSIGN PRIVATE KEY", "ENCRYPTED SIGSTORE PRIVATE KEY"]
)
@pytest.mark.parametrize("key_type", sorted(KEY_TYPES))
def test_every_key_type_round_trips(key_type: str, pem_type: str) -> None:
    original = crypto_key(key_type)
    key = load_private_key_bytes(make_envelope(pkcs8(original), pem_type=pem_type), PASS)
    assert key.key_type == key_type
    data = b'{"critical":{},"optional":null}'
    signature = key.sign(data)
    verify_with_cryptography(original, signature, data)
    public = load_public_key_bytes(key.public_key().pem())
    assert public.key_type == key_type
    assert public.verify(signature, data)
    assert not public.verify(signature, data + b"x")
    spki = original.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public.fingerprint == hashlib.sha256(spki).hexdigest()
    assert public.pem().startswith(b"-----BEGIN PUBLIC KEY-----\n")


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ecdsa-p384", "ecdsa-p521"])
def test_ecdsa_raw_r_s_signatures_are_refused_as_containers_image_does(key_type: str) -> None:
    """containers/image 5.29 (sigstore 1.7, VerifyASN1) refuses r||s; only DER verifies.
    verifies_as_raw_ecdsa recognizes a valid r||s signature, to say why it is refused."""
    original = crypto_key(key_type)
    public = PrivateKey(original).public_key()
    der = original.sign(b"data", ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    size = (original.curve.key_size + 7) // 8
    raw = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    assert public.verify(der, b"data")
    assert not public.verify(raw, b"data")
    assert public.verifies_as_raw_ecdsa(raw, b"data")
    assert not public.verifies_as_raw_ecdsa(raw, b"other")
    assert not public.verifies_as_raw_ecdsa(raw[:-1], b"data")
    assert not public.verifies_as_raw_ecdsa(der, b"data")  # DER is not raw


@pytest.mark.parametrize("key_type", sorted(KEY_TYPES))
@pytest.mark.parametrize(
    "signature", [b"", b"\x00", b"\x30\x06\x02\x01\x01\x02\x01\x01", b"\xff" * 64, b"A" * 513]
)
def test_verify_returns_false_for_garbage_and_never_raises(key_type: str, signature: bytes) -> None:
    public = PrivateKey(crypto_key(key_type)).public_key()
    assert public.verify(signature, b"data") is False


def test_signature_of_another_key_fails() -> None:
    one = PrivateKey(crypto_key("ecdsa-p256"))
    other = PrivateKey(ec.generate_private_key(ec.SECP256R1()))
    assert not other.public_key().verify(one.sign(b"data"), b"data")


def test_rsa_public_key_pkcs1_pem_loads_and_verifies() -> None:
    original = crypto_key("rsa-2048")
    pkcs1 = original.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.PKCS1
    )
    assert pkcs1.startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    public = load_public_key_bytes(pkcs1, source="rsa.pub")
    assert public.key_type == "rsa-2048"
    assert public == PrivateKey(original).public_key()
    assert public.verify(PrivateKey(original).sign(b"data"), b"data")
    assert public.pem().startswith(b"-----BEGIN PUBLIC KEY-----")


# --- public key errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "fragment"), UNSUPPORTED)
def test_unsupported_public_key_types(make: Callable[[], object], fragment: str) -> None:
    pem = (
        make()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyFileError) as excinfo:
        load_public_key_bytes(pem, source="odd.pub")
    assert_key_error(excinfo, "public key odd.pub", fragment)


@pytest.mark.parametrize("path", [CIMAGE_KEYS / "key1.private", COSIGN_KEYS / "pemsigstorekey.key"])
def test_private_key_given_as_public_key(path: Path) -> None:
    with pytest.raises(KeyFileError) as excinfo:
        read_public(path)
    assert_key_error(excinfo, f"public key {path}", "unsupported PEM type")
    assert "this is a private key" in excinfo.value.hint


def test_unencrypted_private_key_given_as_public_key() -> None:
    pem = crypto_key("ed25519").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyFileError) as excinfo:
        load_public_key_bytes(pem, source="k.pem")
    assert "this is a private key" in excinfo.value.hint


@pytest.mark.parametrize(
    ("pem", "fragment"),
    [
        (b"-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n", "not valid base64"),
        (pem_block("PUBLIC KEY", b"\x30\x03\x02\x01\x00"), 'not a valid "PUBLIC KEY"'),
        (b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYI\n", "truncated"),
        (pem_block("CERTIFICATE", b"\x30\x00"), 'unsupported PEM type "CERTIFICATE"'),
    ],
)
def test_public_key_errors(pem: bytes, fragment: str) -> None:
    with pytest.raises(KeyFileError) as excinfo:
        load_public_key_bytes(pem, source="k.pub")
    assert_key_error(excinfo, "public key k.pub", fragment)


def test_pem_type_must_match_the_public_key_structure() -> None:
    """As the Go readers: PKIX under PUBLIC KEY, PKCS#1 under RSA PUBLIC KEY, never crossed."""
    public = crypto_key("rsa-2048").public_key()
    pkcs1 = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    spki = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for pem in (pem_block("PUBLIC KEY", pkcs1), pem_block("RSA PUBLIC KEY", spki)):
        with pytest.raises(KeyFileError) as excinfo:
            load_public_key_bytes(pem, source="k.pub")
        assert_key_error(excinfo, "public key k.pub", "not a valid")


def test_key_objects_do_not_show_key_material() -> None:
    key = PrivateKey(crypto_key("ecdsa-p256"))
    assert repr(key) == "PrivateKey(ecdsa-p256)"
    assert repr(key.public_key()).startswith("PublicKey(ecdsa-p256, sha256:")
    assert isinstance(key.public_key(), PublicKey)
