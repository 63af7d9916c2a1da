"""`hangar generate-sigstore-key`, run as the real command (a subprocess, a pty for prompts)."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from hangar.errors import KeyFileError
from hangar.keys.files import load_public_key, read_signing_key
from tests.support.keys import check_generated_pair
from tests.support.terminal import clean_env, run_in_pty, strip_ansi

HANGAR = str(Path(sys.executable).parent / "hangar")


def hangar(
    *args: str, cwd: Path, env: dict[str, str] | None = None, umask: int | None = None
) -> subprocess.CompletedProcess[str]:
    """Run hangar with a pipe on stdin that is never written: no terminal, never a hang."""
    return subprocess.run(
        [HANGAR, *args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        stdin=subprocess.PIPE,
        capture_output=True,
        text=True,
        timeout=60,
        umask=-1 if umask is None else umask,
    )


def passphrase_file(directory: Path, content: bytes = b"correct horse\n") -> Path:
    path = directory / "passphrase.txt"
    path.write_bytes(content)
    path.chmod(0o600)
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def assert_one_line_error(
    done: subprocess.CompletedProcess[str], *fragments: str, code: int = 1
) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("[ERRO] ")
    for fragment in fragments:
        assert fragment in lines[0]


def assert_pair_opens(directory: Path, prefix: str, passphrase: bytes) -> None:
    key_path = directory / f"{prefix}.key"
    pub_path = directory / f"{prefix}.pub"
    check_generated_pair(key_path.read_bytes(), pub_path.read_bytes(), passphrase)
    assert mode(key_path) == 0o600
    assert mode(pub_path) == 0o644
    secret = directory / "check-passphrase"
    secret.write_bytes(passphrase)
    secret.chmod(0o600)
    key = read_signing_key(key_path, str(secret))
    assert key.public_key() == load_public_key(pub_path)


def test_generate_with_a_passphrase_file(tmp_path: Path) -> None:
    secret = passphrase_file(tmp_path)
    done = hangar("generate-sigstore-key", "--passphrase-file", str(secret), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[INFO] Private key written to sigstore.key" in done.stderr
    assert "[INFO] Public key written to sigstore.pub" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert_pair_opens(tmp_path, "sigstore", b"correct horse")
    # Nothing else left behind (no temp files).
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "check-passphrase",
        "passphrase.txt",
        "sigstore.key",
        "sigstore.pub",
    ]


def test_modes_do_not_depend_on_the_umask(tmp_path: Path) -> None:
    secret = passphrase_file(tmp_path)
    for umask in (0o000, 0o077):
        done = hangar(
            "generate-sigstore-key",
            "--passphrase-file",
            str(secret),
            "-y",
            cwd=tmp_path,
            umask=umask,
        )
        assert done.returncode == 0, done.stderr
        assert mode(tmp_path / "sigstore.key") == 0o600
        assert mode(tmp_path / "sigstore.pub") == 0o644


def test_prefix_in_a_subdirectory(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    secret = passphrase_file(tmp_path)
    done = hangar(
        "generate-sigstore-key", "-p", "out/release", "--passphrase-file", str(secret), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "Private key written to out/release.key" in done.stderr
    assert "Public key written to out/release.pub" in done.stderr
    assert_pair_opens(tmp_path / "out", "release", b"correct horse")


def test_prefix_in_a_missing_directory(tmp_path: Path) -> None:
    secret = passphrase_file(tmp_path)
    done = hangar(
        "generate-sigstore-key",
        "--prefix",
        "nowhere/k",
        "--passphrase-file",
        str(secret),
        cwd=tmp_path,
    )
    assert_one_line_error(done, "cannot write nowhere/k.key", "directory nowhere does not exist")


def test_generate_with_cosign_password(tmp_path: Path) -> None:
    done = hangar(
        "generate-sigstore-key",
        "-p",
        "env",
        cwd=tmp_path,
        env=clean_env(COSIGN_PASSWORD="from env!"),
    )
    assert done.returncode == 0, done.stderr
    assert_pair_opens(tmp_path, "env", b"from env!")


def test_no_passphrase_and_no_terminal_is_a_clear_error(tmp_path: Path) -> None:
    done = hangar("generate-sigstore-key", cwd=tmp_path)
    assert_one_line_error(
        done, "no passphrase for the new private key", "--passphrase-file", "COSIGN_PASSWORD"
    )
    assert list(tmp_path.iterdir()) == []


def test_missing_passphrase_file(tmp_path: Path) -> None:
    done = hangar("generate-sigstore-key", "--passphrase-file", "absent.txt", cwd=tmp_path)
    # a file a flag names that is not there is a usage error, like a missing flag
    assert_one_line_error(
        done, "passphrase file absent.txt", "does not exist", "--passphrase-file", code=2
    )
    assert list(tmp_path.iterdir()) == []


def test_short_passphrase_is_warned_about(tmp_path: Path) -> None:
    secret = passphrase_file(tmp_path, b"abc\n")
    done = hangar("generate-sigstore-key", "--passphrase-file", str(secret), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[WARN] the passphrase is shorter than 5 characters" in done.stderr
    assert "abc" not in done.stderr


@pytest.mark.parametrize(
    "existing", [["sigstore.key"], ["sigstore.pub"], ["sigstore.key", "sigstore.pub"]]
)
def test_existing_files_are_not_overwritten_without_a_terminal(
    tmp_path: Path, existing: list[str]
) -> None:
    for name in existing:
        (tmp_path / name).write_bytes(b"old " + name.encode())
    secret = passphrase_file(tmp_path)
    done = hangar("generate-sigstore-key", "--passphrase-file", str(secret), cwd=tmp_path)
    assert_one_line_error(done, " and ".join(existing), "not overwriting", "-y")
    for name in existing:
        assert (tmp_path / name).read_bytes() == b"old " + name.encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*existing, "passphrase.txt"])


@pytest.mark.parametrize("flag", ["-y", "--auto-yes", "--auto-yes=true"])
def test_auto_yes_overwrites(tmp_path: Path, flag: str) -> None:
    (tmp_path / "sigstore.key").write_bytes(b"old key")
    (tmp_path / "sigstore.pub").write_bytes(b"old pub")
    (tmp_path / "sigstore.key").chmod(0o640)
    secret = passphrase_file(tmp_path)
    done = hangar("generate-sigstore-key", flag, "--passphrase-file", str(secret), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert_pair_opens(tmp_path, "sigstore", b"correct horse")


def test_auto_yes_false_still_refuses(tmp_path: Path) -> None:
    (tmp_path / "sigstore.key").write_bytes(b"old key")
    secret = passphrase_file(tmp_path)
    done = hangar(
        "generate-sigstore-key", "--auto-yes=false", "--passphrase-file", str(secret), cwd=tmp_path
    )
    assert_one_line_error(done, "sigstore.key already exists")
    assert (tmp_path / "sigstore.key").read_bytes() == b"old key"


def test_a_directory_in_the_way_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sigstore.pub").mkdir()
    secret = passphrase_file(tmp_path)
    done = hangar("generate-sigstore-key", "-y", "--passphrase-file", str(secret), cwd=tmp_path)
    assert_one_line_error(done, "sigstore.pub is a directory")
    assert not (tmp_path / "sigstore.key").exists()


def test_a_failed_write_leaves_no_file_behind(tmp_path: Path) -> None:
    """Both files are staged before either is renamed: when the second cannot be written,
    neither final file appears and no temp file remains."""
    from hangar.keys.pairfiles import write_files

    with pytest.raises(KeyFileError) as excinfo:
        write_files(
            [
                (str(tmp_path / "a.key"), b"private", 0o600),
                (str(tmp_path / "gone" / "a.pub"), b"public", 0o644),
            ]
        )
    assert f"cannot write {tmp_path / 'gone' / 'a.pub'}" in str(excinfo.value)
    assert list(tmp_path.iterdir()) == []


# --- on a terminal --------------------------------------------------------------------------------


def test_passphrase_asked_twice_without_echo(tmp_path: Path) -> None:
    code, output = run_in_pty(
        [HANGAR, "generate-sigstore-key", "-p", "tty"],
        [
            (b"Enter passphrase for the new private key: ", b"typed on tty\n"),
            (b"Enter the passphrase again: ", b"typed on tty\n"),
        ],
        env=clean_env(),
        cwd=tmp_path,
    )
    assert code == 0, output
    assert b"typed on tty" not in output  # never echoed
    assert b"Private key written to tty.key" in output
    assert_pair_opens(tmp_path, "tty", b"typed on tty")


def test_mismatched_passphrases_are_refused(tmp_path: Path) -> None:
    code, output = run_in_pty(
        [HANGAR, "generate-sigstore-key"],
        [
            (b"Enter passphrase for the new private key: ", b"first try\n"),
            (b"Enter the passphrase again: ", b"second try\n"),
        ],
        env=clean_env(),
        cwd=tmp_path,
    )
    assert code == 1
    assert b"[ERRO] the passphrases do not match; no key written" in strip_ansi(output)
    assert b"Traceback" not in output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("answer", "replaced"), [(b"n\n", False), (b"\n", False), (b"y\n", True)])
def test_overwrite_is_asked_on_a_terminal(tmp_path: Path, answer: bytes, replaced: bool) -> None:
    (tmp_path / "sigstore.key").write_bytes(b"old key")
    secret = passphrase_file(tmp_path)
    code, output = run_in_pty(
        [HANGAR, "generate-sigstore-key", "--passphrase-file", str(secret)],
        [(b"sigstore.key already exists. Overwrite? [y/N]: ", answer)],
        env=clean_env(),
        cwd=tmp_path,
    )
    if replaced:
        assert code == 0, output
        assert_pair_opens(tmp_path, "sigstore", b"correct horse")
    else:
        assert code == 1
        assert b"[ERRO] kept the existing sigstore.key; no key written" in strip_ansi(output)
        assert (tmp_path / "sigstore.key").read_bytes() == b"old key"
        assert not (tmp_path / "sigstore.pub").exists()


def test_sign_refuses_a_wrong_passphrase_before_any_network(tmp_path: Path) -> None:
    """The key made here, read back by `hangar sign` with the wrong passphrase file: exit 1,
    one line, no traceback, no secret. Port 1 on 127.0.0.1 has no registry: the key is
    decrypted before any connection is tried."""
    secret = passphrase_file(tmp_path)
    assert (
        hangar("generate-sigstore-key", "--passphrase-file", str(secret), cwd=tmp_path).returncode
        == 0
    )
    wrong = tmp_path / "wrong.txt"
    wrong.write_bytes(b"not my passphrase\n")
    wrong.chmod(0o600)
    (tmp_path / "list.txt").write_text("127.0.0.1:1/ns/app:v1\n")
    done = hangar(
        "sign",
        "-f",
        "list.txt",
        "-k",
        "sigstore.key",
        "--sigstore-passphrase-file",
        str(wrong),
        cwd=tmp_path,
    )
    assert_one_line_error(
        done, "private key sigstore.key: wrong passphrase", f"passphrase file {wrong}"
    )
    assert "not my passphrase" not in done.stderr
    assert "correct horse" not in done.stderr
