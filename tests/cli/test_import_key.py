"""`hangar import-key-pair`: PEM private keys in the four forms openssl and CAs write, into the
sigstore envelope. The result is decrypted here with scrypt and libsodium directly (not
hangar's code) and must hold the same key, as PKCS#8; and `hangar sign` opens it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.support.cli import run_hangar
from tests.support.errors_doc import documented, error_lines
from tests.support.keys import parse_generated_private_key, pkcs8

NEW = b"new passphrase 1"
OLD = b"old passphrase 2"


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


def _secret(path: Path, data: bytes) -> Path:
    path.write_bytes(data + b"\n")
    path.chmod(0o600)
    return path


EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(65537, 2048)
FORMS = {
    "pkcs1-rsa": (RSA_KEY, serialization.PrivateFormat.TraditionalOpenSSL, None),
    "pkcs8-ec": (EC_KEY, serialization.PrivateFormat.PKCS8, None),
    "sec1-ec": (EC_KEY, serialization.PrivateFormat.TraditionalOpenSSL, None),
    "encrypted-pkcs8-ec": (EC_KEY, serialization.PrivateFormat.PKCS8, OLD),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_each_pem_form_imports_into_the_sigstore_envelope(
    home: Path, tmp_path: Path, form: str
) -> None:
    key, private_format, password = FORMS[form]
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    source = tmp_path / "key.pem"
    source.write_bytes(key.private_bytes(serialization.Encoding.PEM, private_format, encryption))
    header = source.read_text().splitlines()[0]
    assert (
        header
        == {
            "pkcs1-rsa": "-----BEGIN RSA PRIVATE KEY-----",
            "pkcs8-ec": "-----BEGIN PRIVATE KEY-----",
            "sec1-ec": "-----BEGIN EC PRIVATE KEY-----",
            "encrypted-pkcs8-ec": "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        }[form]
    )
    args = ["import-key-pair", "-k", str(source), "-p", str(tmp_path / "imported")]
    args += ["--passphrase-file", str(_secret(tmp_path / "new", NEW))]
    if password:
        args += ["--key-passphrase-file", str(_secret(tmp_path / "old", password))]
    result = run_hangar(args, home)
    assert result.returncode == 0, result.stderr
    private, public = tmp_path / "imported.key", tmp_path / "imported.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert pkcs8_of(private.read_bytes()) == pkcs8(key)
    assert public.read_bytes() == key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # and hangar's own reader opens it: public-key of the new file is the .pub
    shown = run_hangar(
        ["public-key", "-k", str(private), "--sigstore-passphrase-file", str(tmp_path / "new")],
        home,
    )
    assert shown.returncode == 0 and shown.stdout == public.read_text(), shown.stderr


def pkcs8_of(pem: bytes) -> bytes:
    return parse_generated_private_key(pem, NEW)


def test_a_wrong_passphrase_for_the_encrypted_key_writes_nothing(
    home: Path, tmp_path: Path
) -> None:
    source = tmp_path / "key.pem"
    source.write_bytes(
        EC_KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(OLD),
        )
    )
    result = run_hangar(
        [
            "import-key-pair",
            "-k",
            str(source),
            "-p",
            str(tmp_path / "imported"),
            "--key-passphrase-file",
            str(_secret(tmp_path / "old", b"not it")),
            "--passphrase-file",
            str(_secret(tmp_path / "new", NEW)),
        ],
        home,
    )
    assert result.returncode == 1
    (line,) = error_lines(result.stderr)
    assert "wrong passphrase" in line and "not it" not in line
    assert not list(tmp_path.glob("imported*"))
    documented("import-key-wrong-passphrase", 1, line, {str(tmp_path): "TMP"})


def test_an_unsupported_key_is_refused(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "k1.pem"
    source.write_bytes(
        ec.generate_private_key(ec.SECP256K1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    result = run_hangar(
        [
            "import-key-pair",
            "-k",
            str(source),
            "-p",
            str(tmp_path / "imported"),
            "--passphrase-file",
            str(_secret(tmp_path / "new", NEW)),
        ],
        home,
    )
    assert result.returncode == 1
    (line,) = error_lines(result.stderr)
    assert "unsupported ECDSA curve secp256k1" in line
    assert not list(tmp_path.glob("imported*"))
    documented("import-key-unsupported", 1, line, {str(tmp_path): "TMP"})
