"""Where the passphrase of a sigstore private key comes from (files, the environment, the
terminal); hangar.keys.files uses it to open the signing key, `generate-sigstore-key` to make one.

Reading a key (sign): the passphrase file if one is given, else `$COSIGN_PASSWORD` when it is
set (even empty, as cosign does), else a prompt without echo when stdin is a terminal, else a
clear error: a pipe on stdin is never read, so a script never hangs.

A passphrase file is trimmed of surrounding white space, as hangar v1.8 did; skopeo and podman
(containers/image) use the file up to its first LF, with only that LF removed (spaces, tabs and
a CR before it stay), so that is tried second. Nothing here logs or returns a passphrase in a
message.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
from dataclasses import dataclass

from hangar import output
from hangar.errors import KeyFileArgumentError, KeyFileError

ENV_VAR = "COSIGN_PASSWORD"
MIN_LENGTH = 5
# A passphrase file is a line; a cap stops a mistyped path (a big file) early.
MAX_FILE_SIZE = 64 * 1024


@dataclass(frozen=True, repr=False)
class Passphrase:
    """Passphrases to try in order (one, or two for a file), and where they came from."""

    candidates: tuple[bytes, ...]
    origin: str  # "passphrase file F", "$COSIGN_PASSWORD", "the terminal": for messages
    hint: str  # what to check when none of the candidates opens the key

    def __repr__(self) -> str:
        return f"Passphrase(from {self.origin})"


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def warn_if_world_readable(target: int | str | os.PathLike[str], what: str) -> None:
    """Warn when a secret (private key, passphrase file) is readable by every user."""
    try:
        mode = os.fstat(target).st_mode if isinstance(target, int) else os.stat(target).st_mode
    except OSError:
        return
    if stat.S_ISREG(mode) and mode & stat.S_IROTH:
        output.warn(
            f"{what} is readable by every user on this host (mode {stat.S_IMODE(mode):04o}); "
            "restrict it with chmod 600"
        )


def read_passphrase_file(path: str, *, flag: str, what: str = "passphrase file") -> bytes:
    """The raw bytes of a passphrase (or PIN) file; KeyFileError naming the file and the flag."""
    where = f"{what} {path}"
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_SIZE + 1)
            warn_if_world_readable(handle.fileno(), where)
    except FileNotFoundError:
        raise KeyFileArgumentError(
            f"{where}: the file does not exist", hint=f"check {flag}"
        ) from None
    except IsADirectoryError:
        raise KeyFileArgumentError(
            f"{where}: is a directory, not a file", hint=f"check {flag}"
        ) from None
    except OSError as exc:
        raise KeyFileArgumentError(
            f"{where}: cannot read it ({exc.strerror or exc})",
            hint=f"check {flag} and the file's permissions",
        ) from None
    if len(data) > MAX_FILE_SIZE:
        raise KeyFileError(
            f"{where}: larger than {MAX_FILE_SIZE} bytes, not a {what.split()[0]}",
            hint=f"check {flag}",
        )
    return data


def containers_image_line(data: bytes) -> bytes:
    """The passphrase skopeo and podman read from this file content: up to the first LF, with
    only that LF removed (a CR before it is kept: a Windows file yields a passphrase ending
    in CR)."""
    return data.split(b"\n", 1)[0]


def file_candidates(data: bytes) -> tuple[bytes, ...]:
    """The trimmed content (hangar v1.8's rule), then the first line as skopeo and podman read
    it. Duplicates removed."""
    trimmed = data.strip()
    first_line = containers_image_line(data)
    if first_line == trimmed:
        return (trimmed,)
    return (trimmed, first_line)


def _env_passphrase() -> bytes | None:
    return os.environb.get(ENV_VAR.encode())


def _prompt(text: str, what: str) -> bytes:
    try:
        answer = getpass.getpass(text)
    except EOFError:
        raise KeyFileError(
            f"no passphrase entered for {what}", hint="type the passphrase and press Enter"
        ) from None
    return answer.encode("utf-8", "surrogateescape")


def read_passphrase(
    passphrase_file: str | None, *, key_path: str, flag: str = "--sigstore-passphrase-file"
) -> Passphrase:
    """The passphrase(s) to open an existing private key, by the policy of this module."""
    if passphrase_file is not None:
        data = read_passphrase_file(passphrase_file, flag=flag)
        if not data.strip():
            # Tried all the same (a key can have an empty passphrase), but said plainly.
            content = "empty" if not data else "only white space"
            return Passphrase(
                file_candidates(data),
                f"passphrase file {passphrase_file}, which is {content}",
                "write the passphrase the key was made with in that file",
            )
        return Passphrase(
            file_candidates(data),
            f"passphrase file {passphrase_file}",
            "check the passphrase file: surrounding white space is trimmed, then its first "
            "line as written is tried",
        )
    env = _env_passphrase()
    if env is not None:
        return Passphrase(
            (env,),
            f"${ENV_VAR}",
            f"check ${ENV_VAR}: it is used whenever it is set, even empty; unset it to be "
            "asked on the terminal",
        )
    if stdin_is_terminal():
        entered = _prompt(f"Enter passphrase for private key {key_path}: ", key_path)
        return Passphrase((entered,), "the terminal", "type the passphrase the key was made with")
    raise KeyFileError(
        f"no passphrase for private key {key_path}: stdin is not a terminal, so hangar cannot ask",
        hint=f"use {flag} FILE or set {ENV_VAR}",
    )


def read_key_passphrase(passphrase_file: str | None, *, key_path: str, flag: str) -> bytes:
    """The passphrase of a key being imported (not a sigstore key, so not $COSIGN_PASSWORD,
    which is the new key's): the file, trimmed, else asked on the terminal."""
    if passphrase_file is not None:
        return read_passphrase_file(passphrase_file, flag=flag).strip()
    if stdin_is_terminal():
        return _prompt(f"Enter passphrase for {key_path}: ", key_path)
    raise KeyFileError(
        f"no passphrase for the encrypted key {key_path}: stdin is not a terminal, so hangar "
        "cannot ask",
        hint=f"use {flag} FILE",
    )


def read_new_passphrase(passphrase_file: str | None, *, flag: str = "--passphrase-file") -> bytes:
    """The passphrase for a new key: the file (trimmed), else $COSIGN_PASSWORD when set (as for
    reading, so that the key opens with what sign will read), else asked twice on a terminal."""
    if passphrase_file is not None:
        data = read_passphrase_file(passphrase_file, flag=flag)
        secret = data.strip()
        if secret != containers_image_line(data):
            output.warn(
                f"passphrase file {passphrase_file}: the new key's passphrase is the file's "
                "content without surrounding white space, but podman and skopeo read its first "
                "line as written (spaces, tabs and a CR kept): they will read a different "
                "passphrase from this file; write the passphrase alone on one line ending in LF"
            )
    elif (env := _env_passphrase()) is not None:
        secret = env
    elif stdin_is_terminal():
        secret = _prompt("Enter passphrase for the new private key: ", "the new private key")
        again = _prompt("Enter the passphrase again: ", "the new private key")
        if again != secret:
            raise KeyFileError("the passphrases do not match; no key written", hint="try again")
    else:
        raise KeyFileError(
            "no passphrase for the new private key: stdin is not a terminal, so hangar cannot ask",
            hint=f"use {flag} FILE or set {ENV_VAR}",
        )
    if len(secret.decode("utf-8", "replace")) < MIN_LENGTH:
        output.warn(
            f"the passphrase is shorter than {MIN_LENGTH} characters: anyone who copies the "
            "key file can guess it quickly"
        )
    return secret
