"""Output files (the failed list, the report), written without destroying what is not ours.

Rules, checked before any work:
- A directory, a path in a missing or unwritable directory, or a path that is the same file as
  the image list, the key or the other output is a usage error.
- A character or block device (`/dev/null`), a FIFO, and `/dev/stdout`, `/dev/stderr`,
  `/dev/fd/N` are written through as the run goes, never unlinked, renamed over or truncated.
- A symlink is followed: its target is what gets written.
- A regular file is replaced atomically at the end (a temp file beside it, renamed over it) and
  only when hangar could have written it: a failed list that another hangar command wrote (its
  `#` header line says which) is never overwritten or removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hangar.errors import UsageProblem

FAILED_HEADER = "# failed lines of {command}; retry them with: {command} -f {name} ..."
_HEADER_RE = re.compile(r"^# failed lines of (hangar [a-z -]+?);")
# /dev/stdout and friends name an already open descriptor: write through it, never replace it.
_DESCRIPTOR_PATHS = re.compile(r"^/(dev/(stdout|stderr|stdin|fd/\d+)|proc/self/fd/\d+)$")
_SNIFF_BYTES = 65536


def failed_header(command: str, name: str) -> str:
    return FAILED_HEADER.format(command=command, name=name)


def header_command(first_line: str) -> str | None:
    """The command named by a failed list's header line, or None."""
    match = _HEADER_RE.match(first_line)
    return match.group(1) if match else None


@dataclass(frozen=True)
class Destination:
    """Where an output goes: `target` is the path written (a symlink resolved); `stream` says
    it is written through (device, FIFO, open descriptor) rather than replaced."""

    given: Path
    target: Path
    stream: bool


def resolve_destination(path: Path, flag: str) -> Destination:
    """Classify an output path, or raise UsageProblem with the fix."""
    text = str(path)
    if _DESCRIPTOR_PATHS.match(text):
        return Destination(path, path, stream=True)
    try:
        info = path.stat()  # follows symlinks
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise _unusable(flag, path, exc.strerror or str(exc)) from None
    if info is None:
        if path.is_symlink():  # a dangling link: write where it points
            target = Path(os.path.realpath(path))
            return Destination(path, target, stream=False)
        return Destination(path, path, stream=False)
    if stat.S_ISDIR(info.st_mode):
        raise UsageProblem(
            f"{flag} {path} is a directory",
            hint=f"pass a file path, for example {flag} {path / _default_name(flag)}",
        )
    if stat.S_ISREG(info.st_mode):
        return Destination(path, Path(os.path.realpath(path)), stream=False)
    if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) or stat.S_ISFIFO(info.st_mode):
        return Destination(path, path, stream=True)
    raise UsageProblem(
        f"{flag} {path} is not a regular file, device or FIFO", hint="pass a file path"
    )


def _default_name(flag: str) -> str:
    return "report.json" if flag == "--report" else "sign-failed.txt"


def _unusable(flag: str, path: Path, reason: str) -> UsageProblem:
    return UsageProblem(
        f"cannot write {flag} {path}: {reason}",
        hint=f"pass {flag} a path in a directory you can write to",
    )


def same_file(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        return os.path.samefile(a, b)
    return False


class OutputFile:
    """One output, open from the start of the run: a temp file beside a regular target (that
    is the writability check), or the device/FIFO itself. `commit()` puts it in place,
    `discard()` leaves the target as it was; exactly one of them runs, whatever happens."""

    def __init__(self, destination: Destination, flag: str) -> None:
        self.destination = destination
        self.flag = flag
        self._tmp_path: Path | None = None
        self.handle: IO[str] = self._open()
        self.broken = False  # a write failed: what is there is incomplete

    def _open(self) -> IO[str]:
        dest = self.destination
        try:
            if dest.stream:
                return _open_stream(dest.target)
            directory = dest.target.parent
            fd, name = tempfile.mkstemp(
                dir=directory, prefix=f".{dest.target.name}.", suffix=".tmp"
            )
        except FileNotFoundError:
            raise _unusable(
                self.flag, dest.given, f"directory {dest.target.parent} does not exist"
            ) from None
        except OSError as exc:
            raise _unusable(self.flag, dest.given, _reason(exc, dest)) from None
        self._tmp_path = Path(name)
        return os.fdopen(fd, "w", encoding="utf-8")

    def write(self, text: str) -> None:
        try:
            self.handle.write(text)
            self.handle.flush()
        except BaseException:
            self.broken = True
            raise

    def commit(self) -> None:
        """Replace a regular target with what was written (streams are already written); an
        incomplete file never replaces the old one."""
        if self.broken:
            self.discard()
            raise OSError(
                f"{self.flag} {self.destination.given} was left as it was: a write failed"
            )
        self._close()
        if self._tmp_path is not None:
            tmp, self._tmp_path = self._tmp_path, None
            _keep_mode(self.destination.target, tmp)
            os.replace(tmp, self.destination.target)

    def discard(self) -> None:
        self._close()
        if self._tmp_path is not None:
            tmp, self._tmp_path = self._tmp_path, None
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def remove_target(self) -> None:
        """Nothing to keep: remove a regular target that is a plain file (never a symlink's
        target, never a device), and drop the temp file."""
        self.discard()
        dest = self.destination
        if dest.stream or dest.given.is_symlink():
            return
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISREG(dest.given.lstat().st_mode):
                dest.given.unlink()

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            self.handle.close()


def _open_stream(path: Path) -> IO[str]:
    """Open a device or FIFO for writing without blocking: a FIFO nobody reads would otherwise
    hang the run before it starts."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_APPEND | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise UsageProblem(
                f"cannot write {path}: no process is reading this FIFO",
                hint="start its reader first, or pass a file path",
            ) from None
        raise
    os.set_blocking(fd, True)
    return os.fdopen(fd, "w", encoding="utf-8")


def _reason(exc: OSError, dest: Destination) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"directory {dest.target.parent} is not writable"
    return exc.strerror or str(exc)


def _keep_mode(target: Path, tmp: Path) -> None:
    """A replaced file keeps its permissions; a new one gets the umask's (mkstemp makes 0600)."""
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(tmp, mode)


def sniff(path: Path) -> bytes:
    """The start of an existing regular file (empty when it does not exist)."""
    try:
        with path.open("rb") as handle:
            return handle.read(_SNIFF_BYTES)
    except (FileNotFoundError, IsADirectoryError):
        return b""
