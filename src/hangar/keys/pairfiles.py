"""Key files written so that nothing is ever half a key: a private key 0600 from its first
byte, a public key 0644, every file staged and fsynced before any is renamed into place."""

from __future__ import annotations

import contextlib
import os
import tempfile

from hangar import output
from hangar.errors import KeyFileError

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644


def write_key_pair(key_path: str, private_pem: bytes, pub_path: str, public_pem: bytes) -> None:
    """PREFIX.key (0600) and PREFIX.pub (0644), together, and say where they went."""
    write_files([(key_path, private_pem, PRIVATE_MODE), (pub_path, public_pem, PUBLIC_MODE)])
    output.info(f"Private key written to {key_path}")
    output.info(f"Public key written to {pub_path}")


def write_files(files: list[tuple[str, bytes, int]]) -> None:
    """Stage every file completely (fsynced) before renaming any, so that a crash leaves
    either the old files or whole new ones, never half a key."""
    staged: list[tuple[str, str]] = []
    current = files[0][0]
    try:
        for current, data, mode in files:
            staged.append((_stage(current, data, mode), current))
        for temp, current in staged:
            os.replace(temp, current)
        _fsync_directory(os.path.dirname(current) or ".")
    except OSError as exc:
        raise KeyFileError(
            f"cannot write {current}: {exc.strerror or exc}",
            hint="check the directory's permissions and free space",
        ) from None
    finally:
        for temp, _ in staged:
            _remove_quietly(temp)


def _stage(path: str, data: bytes, mode: int) -> str:
    """A temp file beside `path` holding `data`, with its final mode from the start."""
    directory = os.path.dirname(path) or "."
    fd, temp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)  # mkstemp creates 0600; set the final mode before any byte
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        _remove_quietly(temp)
        raise
    return temp


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
