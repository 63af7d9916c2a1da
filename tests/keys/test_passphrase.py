"""The passphrase policy: file (trimmed, then the first line as written), $COSIGN_PASSWORD,
a no-echo prompt on a terminal, else a clear error. Terminal paths run in a real pty."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hangar.errors import KeyFileError
from hangar.keys.files import load_public_key, read_signing_key
from hangar.keys.passphrase import (
    Passphrase,
    file_candidates,
    read_new_passphrase,
    read_passphrase,
)
from hangar.sigstore.encrypted_key import encrypt_private_key
from tests.support import paths
from tests.support.terminal import clean_env, run_in_pty

PYTHON = sys.executable

CIMAGE_KEYS = paths.VECTORS / "cimage-keys"

# Reads a key with the whole policy, printing errors as the CLI does (one line, exit 1).
READ_KEY_SCRIPT = """
import sys
from hangar.errors import HangarError
from hangar.keys.files import read_signing_key
try:
    key = read_signing_key(sys.argv[1], None)
except HangarError as exc:
    print(f"[ERRO] {exc}", file=sys.stderr)
    sys.exit(1)
print("loaded", key.key_type)
"""

NEW_PASSPHRASE_SCRIPT = """
import sys
from hangar.errors import HangarError
from hangar.keys.passphrase import read_new_passphrase
try:
    secret = read_new_passphrase(None)
except HangarError as exc:
    print(f"[ERRO] {exc}", file=sys.stderr)
    sys.exit(1)
print("length", len(secret))
"""


def make_key_file(directory: Path, passphrase: bytes, name: str = "k.key") -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = directory / name
    path.write_bytes(encrypt_private_key(der, passphrase, n=32768))
    path.chmod(0o600)
    return path


def write_secret(directory: Path, content: bytes, name: str = "pass.txt", mode: int = 0o600):
    path = directory / name
    path.write_bytes(content)
    path.chmod(mode)
    return path


# --- the file ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"secret\n", (b"secret",)),
        (b"secret", (b"secret",)),
        # skopeo/podman drop only the LF: a Windows file's passphrase ends in CR.
        (b"secret\r\n", (b"secret", b"secret\r")),
        (b"secret\r", (b"secret", b"secret\r")),
        (b"  spaced passphrase \n", (b"spaced passphrase", b"  spaced passphrase ")),
        (b"\tsecret\n\n", (b"secret", b"\tsecret")),
        (b"line one\nline two\n", (b"line one\nline two", b"line one")),
        (b"", (b"",)),
        (b"p\xc3\xa4ss phrase\n", ("päss phrase".encode(),)),
    ],
)
def test_file_candidates_trimmed_then_first_line(content: bytes, expected: tuple) -> None:
    assert file_candidates(content) == expected


def test_passphrase_file_beats_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", "from-env")
    secret = read_passphrase(str(write_secret(tmp_path, b"from-file\n")), key_path="k.key")
    assert secret.candidates == (b"from-file",)
    assert "passphrase file" in secret.origin
    assert "from-file" not in repr(secret)


@pytest.mark.parametrize(
    ("made_with", "file_content"),
    [
        (b"pw-12345", b"pw-12345\n"),
        (b"pw-12345", b"pw-12345\r\n"),  # the trim, first
        (b"pw-12345\r", b"pw-12345\r\n"),  # skopeo's first line: up to the LF, CR kept
        (b"pw-12345", b"  pw-12345\t\n"),  # the seed's trim
        (b"  pw-12345 ", b"  pw-12345 \n"),  # skopeo's first line, untrimmed
    ],
)
def test_read_signing_key_with_a_passphrase_file(
    tmp_path: Path, made_with: bytes, file_content: bytes
) -> None:
    key_path = make_key_file(tmp_path, made_with)
    key = read_signing_key(key_path, str(write_secret(tmp_path, file_content)))
    assert key.key_type == "ecdsa-p256"


@pytest.mark.parametrize("name", ["key1", "key2", "key3", "key4"])
def test_cimage_keys_open_from_their_own_passphrase_files(name: str) -> None:
    """skopeo made each key from its file: key3's has surrounding spaces, key4's ends in CRLF."""
    key = read_signing_key(CIMAGE_KEYS / f"{name}.private", str(CIMAGE_KEYS / f"{name}.passphrase"))
    assert key.public_key() == load_public_key(CIMAGE_KEYS / f"{name}.pub")


def test_wrong_passphrase_file(tmp_path: Path) -> None:
    key_path = make_key_file(tmp_path, b"right-one")
    secret_file = write_secret(tmp_path, b"wrong-one\n")
    with pytest.raises(KeyFileError) as excinfo:
        read_signing_key(key_path, str(secret_file))
    text = str(excinfo.value)
    assert (
        f"private key {key_path}: wrong passphrase (read from passphrase file {secret_file})"
        in text
    )
    assert "trimmed" in excinfo.value.hint
    assert "wrong-one" not in text and "right-one" not in text


def test_missing_passphrase_file(tmp_path: Path) -> None:
    key_path = make_key_file(tmp_path, b"pw-12345")
    missing = tmp_path / "nope.txt"
    with pytest.raises(KeyFileError) as excinfo:
        read_signing_key(key_path, str(missing))
    assert f"passphrase file {missing}: the file does not exist" in str(excinfo.value)
    assert "--sigstore-passphrase-file" in excinfo.value.hint


def test_passphrase_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as excinfo:
        read_passphrase(str(tmp_path), key_path="k.key")
    assert f"passphrase file {tmp_path}: is a directory" in str(excinfo.value)


def test_world_readable_passphrase_file_gets_a_warning(tmp_path: Path, capsys) -> None:
    loose = write_secret(tmp_path, b"pw\n", mode=0o644)
    read_passphrase(str(loose), key_path="k.key")
    err = capsys.readouterr().err
    assert f"[WARN] passphrase file {loose} is readable by every user" in err
    assert "chmod 600" in err
    tight = write_secret(tmp_path, b"pw\n", name="tight.txt", mode=0o600)
    read_passphrase(str(tight), key_path="k.key")
    assert capsys.readouterr().err == ""


# --- the environment -----------------------------------------------------------------------------


def test_cosign_password_is_used_when_set(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", "env-secret")
    assert read_signing_key(make_key_file(tmp_path, b"env-secret"), None).key_type == "ecdsa-p256"


def test_empty_cosign_password_is_a_passphrase(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", "")
    secret = read_passphrase(None, key_path="k.key")
    assert secret.candidates == (b"",)
    assert read_signing_key(make_key_file(tmp_path, b""), None).key_type == "ecdsa-p256"


def test_wrong_cosign_password(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", "env-wrong")
    key_path = make_key_file(tmp_path, b"env-right")
    with pytest.raises(KeyFileError) as excinfo:
        read_signing_key(key_path, None)
    assert "wrong passphrase (read from $COSIGN_PASSWORD)" in str(excinfo.value)
    assert "env-wrong" not in str(excinfo.value)


def test_passphrase_repr_hides_the_secret() -> None:
    secret = Passphrase((b"hunter2",), "$COSIGN_PASSWORD", "hint")
    assert "hunter2" not in repr(secret)


# --- no terminal: a clear error, never a hang ----------------------------------------------------


def test_no_passphrase_source_and_no_terminal_fails_fast(tmp_path: Path) -> None:
    key_path = make_key_file(tmp_path, b"pw-12345")
    # stdin is a pipe that stays open: reading it would hang until the timeout.
    with subprocess.Popen(
        [PYTHON, "-c", READ_KEY_SCRIPT, str(key_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env(),
    ) as process:
        _, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert f"no passphrase for private key {key_path}: stdin is not a terminal" in err.decode()
    assert "--sigstore-passphrase-file" in err.decode()
    assert "COSIGN_PASSWORD" in err.decode()


def test_new_passphrase_without_terminal_fails_fast() -> None:
    done = subprocess.run(
        [PYTHON, "-c", NEW_PASSPHRASE_SCRIPT],
        stdin=subprocess.PIPE,
        capture_output=True,
        env=clean_env(),
        timeout=30,
    )
    assert done.returncode == 1
    assert "no passphrase for the new private key: stdin is not a terminal" in done.stderr.decode()


# --- the terminal prompt (a real pty) ------------------------------------------------------------


def test_prompt_without_echo_on_a_terminal(tmp_path: Path) -> None:
    key_path = make_key_file(tmp_path, b"typed-secret")
    code, output = run_in_pty(
        [PYTHON, "-c", READ_KEY_SCRIPT, str(key_path)],
        [(f"Enter passphrase for private key {key_path}: ".encode(), b"typed-secret\n")],
        env=clean_env(),
        cwd=tmp_path,
    )
    assert code == 0, output
    assert b"loaded ecdsa-p256" in output
    assert b"typed-secret" not in output  # not echoed


def test_wrong_passphrase_typed_on_the_terminal(tmp_path: Path) -> None:
    key_path = make_key_file(tmp_path, b"typed-secret")
    code, output = run_in_pty(
        [PYTHON, "-c", READ_KEY_SCRIPT, str(key_path)],
        [(b"Enter passphrase", b"mistyped\n")],
        env=clean_env(),
        cwd=tmp_path,
    )
    assert code == 1
    assert b"wrong passphrase (read from the terminal)" in output
    assert b"mistyped" not in output


def test_cosign_password_wins_over_the_terminal(tmp_path: Path) -> None:
    key_path = make_key_file(tmp_path, b"env-secret")
    code, output = run_in_pty(
        [PYTHON, "-c", READ_KEY_SCRIPT, str(key_path)],
        [],
        env=clean_env(COSIGN_PASSWORD="env-secret"),
        cwd=tmp_path,
    )
    assert code == 0, output
    assert b"Enter passphrase" not in output


# --- a passphrase for a new key ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "secret"),
    [
        (b"  spaced secret \n", b"spaced secret"),
        (b"\tsecret-1\n", b"secret-1"),
        (b"crlf secret\r\n", b"crlf secret"),  # skopeo would read "crlf secret\r"
        (b"line one\nline two\n", b"line one\nline two"),
    ],
)
def test_new_passphrase_from_file_is_trimmed_with_a_warning(
    tmp_path: Path, capsys, content: bytes, secret: bytes
) -> None:
    path = write_secret(tmp_path, content)
    assert read_new_passphrase(str(path)) == secret
    warning = capsys.readouterr().err
    assert f"passphrase file {path}: " in warning
    assert "podman and skopeo read its first line as written" in warning
    assert "they will read a different passphrase from this file" in warning
    assert secret.decode() not in warning


@pytest.mark.parametrize("content", [b"plain secret\n", b"plain secret"])
def test_new_passphrase_from_a_plain_file_gets_no_warning(
    tmp_path: Path, capsys, content: bytes
) -> None:
    plain = write_secret(tmp_path, content, name="plain.txt")
    assert read_new_passphrase(str(plain)) == b"plain secret"
    assert capsys.readouterr().err == ""


def test_new_passphrase_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", "from-env-1")
    assert read_new_passphrase(None) == b"from-env-1"


@pytest.mark.parametrize("secret", [b"", b"abcd", "äöüß".encode()])
def test_short_new_passphrase_gets_a_warning(tmp_path: Path, capsys, secret: bytes) -> None:
    read_new_passphrase(str(write_secret(tmp_path, secret)))
    assert "shorter than 5 characters" in capsys.readouterr().err


def test_five_characters_are_enough(tmp_path: Path, capsys) -> None:
    read_new_passphrase(str(write_secret(tmp_path, "äöüßx".encode())))
    assert "shorter than" not in capsys.readouterr().err


def test_missing_new_passphrase_file_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as excinfo:
        read_new_passphrase(str(tmp_path / "absent"))
    assert "does not exist" in str(excinfo.value)
    assert "--passphrase-file" in excinfo.value.hint
