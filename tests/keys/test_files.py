"""hangar.keys.files: key files on disk (missing, directory, unreadable, huge, world-readable),
and the signing key opened with the passphrase files containers/image's tests ship."""

from __future__ import annotations

from pathlib import Path

import pytest

from hangar.errors import KeyFileError
from hangar.keys import files as keyfiles
from hangar.keys.files import load_private_key, load_public_key, read_signing_key
from hangar.sigstore.keys import PrivateKey
from tests.support import paths
from tests.support.keys import PASS, assert_key_error, crypto_key, make_envelope, pkcs8
from tests.support.keys import write_file as _write

CIMAGE_KEYS = paths.VECTORS / "cimage-keys"


@pytest.mark.parametrize("name", ["key1", "key2", "key3"])
def test_cimage_keys_open_with_their_passphrase_files(name: str) -> None:
    key = read_signing_key(CIMAGE_KEYS / f"{name}.private", str(CIMAGE_KEYS / f"{name}.passphrase"))
    public = load_public_key(CIMAGE_KEYS / f"{name}.pub")
    assert key.key_type == "ecdsa-p256"
    assert key.public_key() == public
    assert key.public_key().fingerprint == public.fingerprint
    assert public.verify(key.sign(b"payload"), b"payload")


def test_content_errors_name_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "junk.key", b"hello, I am not a key\n")
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(path, PASS)
    assert_key_error(excinfo, f"private key {path}", "not a PEM file")
    with pytest.raises(KeyFileError) as excinfo:
        load_public_key(path)
    assert_key_error(excinfo, f"public key {path}", "not a PEM file")


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
    path = _write(tmp_path, "image.tar", b"\0" * (keyfiles.MAX_KEY_FILE_SIZE + 10))
    with pytest.raises(KeyFileError) as excinfo:
        load_private_key(path, PASS)
    assert_key_error(excinfo, str(path), "not a key")


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
