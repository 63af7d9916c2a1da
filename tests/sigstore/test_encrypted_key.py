"""hangar.sigstore.encrypted_key against an envelope writer written independently
(tests.support.keys): every accepted cost, every envelope error, what generation writes."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import nacl.bindings
import pytest
from cryptography.hazmat.primitives import serialization

from hangar.errors import KeyFileError
from hangar.sigstore.encrypted_key import (
    WrongPassphraseError,
    encrypt_private_key,
    generate_key_pair,
    load_private_key_bytes,
    open_envelope,
    parse_envelope,
)
from hangar.sigstore.keys import load_public_key_bytes
from tests.support import paths
from tests.support.keys import (
    PASS,
    UNSUPPORTED,
    assert_key_error,
    check_generated_pair,
    crypto_key,
    make_envelope,
    pem_block,
    pkcs8,
    read_private,
    read_public,
    scrypt,
)
from tests.support.keys import write_file as _write

CIMAGE_KEYS = paths.VECTORS / "cimage-keys"


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


def test_open_envelope_tries_each_passphrase_then_names_where_they_came_from() -> None:
    pem = make_envelope(pkcs8(crypto_key("ecdsa-p256")))
    envelope = parse_envelope(pem, "k.key")
    key = open_envelope(envelope, [b"first try", PASS], "k.key", origin="here", hint="h")
    assert key.key_type == "ecdsa-p256"
    with pytest.raises(WrongPassphraseError) as excinfo:
        open_envelope(envelope, [b"one", b"two"], "k.key", origin="the file F", hint="check F")
    assert excinfo.value.message == "private key k.key: wrong passphrase (read from the file F)"
    assert excinfo.value.hint == "check F"


# --- errors --------------------------------------------------------------------------------------


def test_wrong_passphrase(tmp_path: Path) -> None:
    path = _write(tmp_path, "k.key", make_envelope(pkcs8(crypto_key("ecdsa-p256"))))
    with pytest.raises(KeyFileError) as excinfo:
        read_private(path, b"not the passphrase")
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
        read_private(path, PASS)
    assert_key_error(excinfo, str(path), f'unsupported PEM type "{pem_type}"')
    assert hint in excinfo.value.hint


def test_public_key_file_given_as_private_key() -> None:
    path = CIMAGE_KEYS / "key1.pub"
    with pytest.raises(KeyFileError) as excinfo:
        read_private(path, PASS)
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
        read_private(path, PASS)
    assert_key_error(excinfo, str(path), "truncated", "-----END ENCRYPTED COSIGN PRIVATE KEY-----")


def test_truncated_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "cut.key", b"-----BEGIN ENCRYPTED COS")
    with pytest.raises(KeyFileError) as excinfo:
        read_private(path, PASS)
    assert_key_error(excinfo, str(path), "truncated")


@pytest.mark.parametrize("content", [b"", b"  \n\n"])
def test_empty_key_file(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path, "empty.key", content)
    with pytest.raises(KeyFileError) as excinfo:
        read_private(path, PASS)
    assert_key_error(excinfo, str(path), "the file is empty")
    with pytest.raises(KeyFileError) as excinfo:
        read_public(path)
    assert_key_error(excinfo, f"public key {path}", "the file is empty")


def test_not_a_pem_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "junk.key", b"hello, I am not a key\n")
    with pytest.raises(KeyFileError) as excinfo:
        read_private(path, PASS)
    assert_key_error(excinfo, str(path), "not a PEM file")


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


@pytest.mark.parametrize(("make", "fragment"), UNSUPPORTED)
def test_unsupported_private_key_types(make: Callable[[], object], fragment: str) -> None:
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key_bytes(make_envelope(pkcs8(make())), PASS, source="odd.key")
    assert_key_error(excinfo, "private key odd.key", fragment)
    assert "P-256" in excinfo.value.hint


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
