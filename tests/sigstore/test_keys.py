"""hangar.sigstore.keys against data made by other tools, and against an envelope writer written
here independently (hashlib.scrypt + libsodium's secretbox), for every supported key type."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import textwrap
from collections.abc import Callable
from pathlib import Path

import nacl.bindings
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from hangar.errors import KeyFileError
from hangar.sigstore import keys
from hangar.sigstore.keys import (
    PrivateKey,
    PublicKey,
    encrypt_private_key,
    generate_key_pair,
    load_private_key,
    load_private_key_bytes,
    load_public_key,
    load_public_key_bytes,
    read_signing_key,
)
from tests.support import paths
from tests.support.envelope import check_generated_pair, pkcs8, scrypt

VECTORS = paths.VECTORS
CIMAGE_KEYS = VECTORS / "cimage-keys"
COSIGN_KEYS = VECTORS / "cosign-keys"
ATTACHMENT = VECTORS / "cimage-attachment"
CIMAGE_FIXTURES = Path("/usr/share/gocode/src/github.com/containers/image/signature/fixtures")
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PASS = b"test passphrase"


# --- an envelope writer independent of keys.py -------------------------------------------------


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
    """The interop.md section 3 envelope, built with hashlib.scrypt and libsodium directly."""
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


def verify_with_cryptography(key, signature: bytes, data: bytes) -> None:
    """The signature format interop.md requires, checked without keys.py (raises if wrong)."""
    public = key.public_key()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        decode_dss_signature(signature)  # DER, not r||s
        public.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        public.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        public.verify(signature, data)  # pure Ed25519


# --- vectors made by containers/image and cosign -----------------------------------------------


@pytest.mark.parametrize("name", ["key1", "key2", "key3"])
def test_cimage_keys_open_with_their_passphrase_files(name: str) -> None:
    key = read_signing_key(CIMAGE_KEYS / f"{name}.private", str(CIMAGE_KEYS / f"{name}.passphrase"))
    public = load_public_key(CIMAGE_KEYS / f"{name}.pub")
    assert key.key_type == "ecdsa-p256"
    assert key.public_key() == public
    assert key.public_key().fingerprint == public.fingerprint
    assert public.verify(key.sign(b"payload"), b"payload")


def test_cimage_key2_passphrase_is_utf8_with_inner_space() -> None:
    key = load_private_key(CIMAGE_KEYS / "key2.private", "päss phrase".encode())
    assert key.public_key() == load_public_key(CIMAGE_KEYS / "key2.pub")


def test_cimage_key3_opens_only_with_the_untrimmed_first_line() -> None:
    path = CIMAGE_KEYS / "key3.private"
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(path, b"spaced passphrase")
    assert_key_error(excinfo, str(path), "wrong passphrase")
    key = load_private_key(path, b"  spaced passphrase ")
    assert key.public_key() == load_public_key(CIMAGE_KEYS / "key3.pub")


def test_cimage_key4_opens_only_with_the_carriage_return_skopeo_kept() -> None:
    path = CIMAGE_KEYS / "key4.private"
    assert (CIMAGE_KEYS / "key4.passphrase").read_bytes() == b"crlf passphrase\r\n"
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(path, b"crlf passphrase")
    assert_key_error(excinfo, str(path), "wrong passphrase")
    key = load_private_key(path, b"crlf passphrase\r")
    assert key.public_key() == load_public_key(CIMAGE_KEYS / "key4.pub")


@pytest.mark.parametrize("name", ["pemcosignkey.key", "pemsigstorekey.key"])
def test_cosign_test_keys_load(name: str) -> None:
    key = load_private_key(COSIGN_KEYS / name, b"hello")
    assert key.key_type == "ecdsa-p256"
    signature = key.sign(b"data")
    assert key.public_key().verify(signature, b"data")


def test_cosign_sec1_inner_key_is_refused_as_cosign_does() -> None:
    path = COSIGN_KEYS / "pemcosigneckey.key"
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(path, b"hello")
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
    key1 = load_public_key(CIMAGE_KEYS / "key1.pub")
    key2 = load_public_key(CIMAGE_KEYS / "key2.pub")
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
    cosign_pub = load_public_key(CIMAGE_FIXTURES / "cosign.pub")
    assert cosign_pub.verify(signature, payload)
    assert not load_public_key(CIMAGE_KEYS / "key1.pub").verify(signature, payload)


def test_signature_by_an_unknown_cosign_key_fails() -> None:
    payload, signature = _cimage_fixture_signature(CIMAGE_FIXTURES / "unknown-cosign-key.signature")
    assert not load_public_key(CIMAGE_FIXTURES / "cosign.pub").verify(signature, payload)


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


@pytest.mark.parametrize("n", [32768, 65536, 131072])
def test_every_accepted_scrypt_cost_opens(n: int) -> None:
    envelope = make_envelope(pkcs8(crypto_key("ecdsa-p256")), n=n)
    assert load_private_key_bytes(envelope, PASS).key_type == "ecdsa-p256"


def test_empty_passphrase_is_a_passphrase() -> None:
    envelope = make_envelope(pkcs8(crypto_key("ed25519")), b"")
    assert load_private_key_bytes(envelope, b"").key_type == "ed25519"


def test_text_around_the_pem_block_is_ignored() -> None:
    envelope = make_envelope(pkcs8(crypto_key("ecdsa-p256")))
    wrapped = b"comment line\n" + envelope.replace(b"\n", b"\r\n") + b"trailer\n"
    assert load_private_key_bytes(wrapped, PASS).key_type == "ecdsa-p256"


# --- errors --------------------------------------------------------------------------------------


def _write(tmp_path: Path, name: str, data: bytes, mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_wrong_passphrase(tmp_path: Path) -> None:
    path = _write(tmp_path, "k.key", make_envelope(pkcs8(crypto_key("ecdsa-p256"))))
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(path, b"not the passphrase")
    assert_key_error(excinfo, f"private key {path}", "wrong passphrase")
    assert "not the passphrase" not in str(excinfo.value)


@pytest.mark.parametrize(
    ("pem_type", "hint"),
    [
        ("PUBLIC KEY", "this is a public key"),
        ("RSA PUBLIC KEY", "this is a public key"),
        ("PRIVATE KEY", "unencrypted private key"),
        ("EC PRIVATE KEY", "unencrypted private key"),
        ("RSA PRIVATE KEY", "unencrypted private key"),
        ("ENCRYPTED PRIVATE KEY", "PKCS#8-encrypted"),
        ("CERTIFICATE", "certificate"),
        ("SOMETHING ELSE", "expected ENCRYPTED SIGSTORE PRIVATE KEY or ENCRYPTED COSIGN"),
    ],
)
def test_unsupported_private_pem_types(tmp_path: Path, pem_type: str, hint: str) -> None:
    path = _write(tmp_path, "k.key", pem_block(pem_type, b"\x30\x03\x02\x01\x00"))
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(path, PASS)
    assert_key_error(excinfo, str(path), f'unsupported PEM type "{pem_type}"')
    assert hint in excinfo.value.hint


def test_public_key_file_given_as_private_key() -> None:
    path = CIMAGE_KEYS / "key1.pub"
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(path, PASS)
    assert_key_error(excinfo, str(path), '"PUBLIC KEY"', "this is a public key")


def test_unencrypted_pkcs8_key_gets_the_import_hint() -> None:
    pem = crypto_key("ecdsa-p256").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key_bytes(pem, PASS, source="plain.pem")
    assert_key_error(excinfo, "private key plain.pem", "cosign import-key-pair")


def _set(path: str, value: object) -> Callable[[dict], None]:
    def mutate(document: dict) -> None:
        *parents, last = path.split(".")
        node = document
        for name in parents:
            node = node[name]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value

    return mutate


_DELETE = object()


@pytest.mark.parametrize(
    ("mutate", "fragments"),
    [
        (_set("kdf.name", "argon2"), ['unsupported key derivation "argon2"', "only scrypt"]),
        (_set("cipher.name", "aes-gcm"), ['unsupported cipher "aes-gcm"', "nacl/secretbox"]),
        (_set("kdf.params.N", 16384), ["unsupported scrypt parameters N=16384 r=8 p=1"]),
        (_set("kdf.params.N", 262144), ["unsupported scrypt parameters N=262144 r=8 p=1"]),
        (_set("kdf.params.r", 16), ["unsupported scrypt parameters N=32768 r=16 p=1"]),
        (_set("kdf.params.p", 2), ["unsupported scrypt parameters N=32768 r=8 p=2"]),
        (_set("kdf.params.N", 32768.0), ['scrypt parameter "N"', "not an integer"]),
        (_set("kdf.params.r", _DELETE), ['scrypt parameter "r"', "missing"]),
        (_set("kdf", _DELETE), ['no "kdf" object']),
        (_set("cipher", "nacl"), ['no "cipher" object']),
        (_set("kdf.salt", "%%%"), ['"kdf.salt"', "not valid base64"]),
        (_set("cipher.nonce", base64.b64encode(b"n" * 12).decode()), ["nonce is 12 bytes"]),
        (_set("ciphertext", _DELETE), ['"ciphertext"', "missing"]),
        (_set("ciphertext", base64.b64encode(b"t" * 16).decode()), ["ciphertext is truncated"]),
    ],
)
def test_envelope_errors(mutate: Callable[[dict], None], fragments: list[str]) -> None:
    pem = make_envelope(pkcs8(crypto_key("ecdsa-p256")), mutate=mutate)
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key_bytes(pem, PASS, source="bad.key")
    assert_key_error(excinfo, "private key bad.key", *fragments)


def test_unsupported_scrypt_parameters_mention_what_is_accepted() -> None:
    pem = make_envelope(pkcs8(crypto_key("ecdsa-p256")), mutate=_set("kdf.params.N", 1024))
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key_bytes(pem, PASS, source="bad.key")
    assert "N=32768, 65536 or 131072" in excinfo.value.hint


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not base64 at all!", "not valid base64"),
        (None, "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
    ],
)
def test_corrupt_body(body: bytes | None, fragment: str) -> None:
    if body is None:
        pem = pem_block("ENCRYPTED COSIGN PRIVATE KEY", b'{"kdf": {"name": "scry')
    elif body.startswith(b"["):
        pem = pem_block("ENCRYPTED COSIGN PRIVATE KEY", body)
    else:
        pem = b"-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n" + body
        pem += b"\n-----END ENCRYPTED COSIGN PRIVATE KEY-----\n"
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key_bytes(pem, PASS, source="bad.key")
    assert_key_error(excinfo, "private key bad.key", fragment)


def test_truncated_key_file(tmp_path: Path) -> None:
    whole = make_envelope(pkcs8(crypto_key("ecdsa-p256")))
    path = _write(tmp_path, "cut.key", whole[: len(whole) // 2])
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(path, PASS)
    assert_key_error(excinfo, str(path), "truncated", "-----END ENCRYPTED COSIGN PRIVATE KEY-----")


def test_truncated_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "cut.key", b"-----BEGIN ENCRYPTED COS")
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(path, PASS)
    assert_key_error(excinfo, str(path), "truncated")


@pytest.mark.parametrize("content", [b"", b"  \n\n"])
def test_empty_key_file(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path, "empty.key", content)
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(path, PASS)
    assert_key_error(excinfo, str(path), "the file is empty")
    with pytest.raises(KeyFileError) as excinfo:
        load_public_key(path)
    assert_key_error(excinfo, f"public key {path}", "the file is empty")


def test_not_a_pem_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "junk.key", b"hello, I am not a key\n")
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(path, PASS)
    assert_key_error(excinfo, str(path), "not a PEM file")


def test_missing_key_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.key"
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(path, PASS)
    assert_key_error(excinfo, str(path), "does not exist")
    with pytest.raises(KeyFileError) as excinfo:
        read_signing_key(path, None)  # the file is checked before any passphrase is asked for
    assert_key_error(excinfo, str(path), "does not exist")
    with pytest.raises(KeyFileError) as excinfo:
        load_public_key(path)
    assert_key_error(excinfo, f"public key {path}", "does not exist")


def test_unreadable_key_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(tmp_path, PASS)
    assert_key_error(excinfo, str(tmp_path), "is a directory")
    # Tests run as root, which reads any mode; /proc/self/mem fails on read (EIO).
    with pytest.raises(KeyFileError) as excinfo:
        load_public_key("/proc/self/mem")
    assert_key_error(excinfo, "public key /proc/self/mem", "cannot read it")


def test_huge_file_is_not_read_as_a_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "image.tar", b"\0" * (keys.MAX_KEY_FILE_SIZE + 10))
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(path, PASS)
    assert_key_error(excinfo, str(path), "not a key")


def test_decrypted_content_that_is_not_pkcs8() -> None:
    pem = make_envelope(b"\x01\x02 definitely not DER")
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key_bytes(pem, PASS, source="odd.key")
    assert_key_error(excinfo, "private key odd.key", "not a PKCS#8 private key")


def test_pkcs1_rsa_inside_the_envelope_is_refused() -> None:
    traditional = crypto_key("rsa-2048").private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key_bytes(make_envelope(traditional), PASS, source="pkcs1.key")
    assert_key_error(excinfo, "private key pkcs1.key", "not a PKCS#8")


UNSUPPORTED = [
    (lambda: ec.generate_private_key(ec.SECP256K1()), "unsupported ECDSA curve secp256k1"),
    (lambda: ec.generate_private_key(ec.SECP224R1()), "unsupported ECDSA curve secp224r1"),
    (lambda: rsa.generate_private_key(65537, 1024), "unsupported RSA key size 1024 bits"),
    (lambda: rsa.generate_private_key(65537, 2560), "unsupported RSA key size 2560 bits"),
    (ed448.Ed448PrivateKey.generate, "unsupported key type"),
    (x25519.X25519PrivateKey.generate, "unsupported key type"),
    (lambda: dsa.generate_private_key(2048), "unsupported key type"),
]


@pytest.mark.parametrize(("make", "fragment"), UNSUPPORTED)
def test_unsupported_private_key_types(make: Callable[[], object], fragment: str) -> None:
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key_bytes(make_envelope(pkcs8(make())), PASS, source="odd.key")
    assert_key_error(excinfo, "private key odd.key", fragment)
    assert "P-256" in excinfo.value.hint


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
        load_public_key(path)
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


def test_world_readable_private_key_gets_a_warning(tmp_path: Path, capsys) -> None:
    pem = make_envelope(pkcs8(crypto_key("ecdsa-p256")))
    private = _write(tmp_path, "open.key", pem, 0o644)
    load_private_key(private, PASS)
    assert f"[WARN] private key {private} is readable by every user" in capsys.readouterr().err
    private.chmod(0o600)
    load_private_key(private, PASS)
    assert capsys.readouterr().err == ""
    public = _write(
        tmp_path, "k.pub", PrivateKey(crypto_key("ecdsa-p256")).public_key().pem(), 0o644
    )
    load_public_key(public)
    assert capsys.readouterr().err == ""


# --- what generate_key_pair writes ---------------------------------------------------------------


def test_generated_key_pair_format_field_by_field() -> None:
    private_pem, public_pem = generate_key_pair(b"a good passphrase")
    check_generated_pair(private_pem, public_pem, b"a good passphrase")
    key = load_private_key_bytes(private_pem, b"a good passphrase")
    public = load_public_key_bytes(public_pem)
    assert key.public_key() == public
    assert public.verify(key.sign(b"data"), b"data")


def test_generated_keys_use_fresh_salt_nonce_and_key() -> None:
    first, first_pub = generate_key_pair(b"same")
    second, second_pub = generate_key_pair(b"same")
    assert first != second
    assert first_pub != second_pub


def test_encrypt_private_key_refuses_costs_the_go_readers_refuse() -> None:
    for n, r, p in [(16384, 8, 1), (65536, 4, 1), (65536, 8, 2)]:
        with pytest.raises(ValueError):
            encrypt_private_key(pkcs8(crypto_key("ecdsa-p256")), PASS, n=n, r=r, p=p)


def test_encrypt_private_key_is_read_by_the_independent_reader() -> None:
    der = pkcs8(crypto_key("ecdsa-p384"))
    pem = encrypt_private_key(der, PASS, n=32768)
    body = base64.b64decode(b"".join(pem.split(b"\n")[1:-2]))
    document = json.loads(body)
    assert document["kdf"]["params"] == {"N": 32768, "r": 8, "p": 1}
    key = scrypt(PASS, base64.b64decode(document["kdf"]["salt"]), 32768)
    plaintext = nacl.bindings.crypto_secretbox_open(
        base64.b64decode(document["ciphertext"]), base64.b64decode(document["cipher"]["nonce"]), key
    )
    assert plaintext == der


def test_key_objects_do_not_show_key_material() -> None:
    key = PrivateKey(crypto_key("ecdsa-p256"))
    assert repr(key) == "PrivateKey(ecdsa-p256)"
    assert repr(key.public_key()).startswith("PublicKey(ecdsa-p256, sha256:")
    assert isinstance(key.public_key(), PublicKey)
