"""Image list files, read the way the seed's tool reads them, one line at a time.

hangar v1.8 (pkg/commands/sign.go) reads the list with a line scanner: each line is trimmed of
surrounding white space; blank lines and lines starting with `#` or `//` are ignored; every
other line is one image. A line with three fields is its mirror list format (SOURCE DEST TAG),
which `sign` does not handle: we say so and skip it, as v1.8 does. v1.8 also only warned about
a line with two fields ("invalid format") and skipped it; here that line, like any line that is
not a valid reference, is an entry with an `error`: it counts as failed and lands in the failed
file, so a typo cannot go unnoticed in a long run.

File problems (missing, a directory, unreadable, binary, no images) raise HangarError when
`iter_image_list` is called, before anything is yielded. A list that can be read only once
(`-f -`, `-f /dev/stdin`, `-f <(cmd)`) is first copied by `open_image_list` into an unlinked
temp file (`SpooledList`), so that its head can be checked before it is read.

A run reads its list once, with `ReadList`: each entry is parsed once and kept in an unlinked
temp file, while the pass counts the lines (for the ETA) and finds the registries (for the
login check); the run then streams the entries back.
"""

from __future__ import annotations

import codecs
import os
import pickle
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hangar.errors import FileArgumentError, HangarError, InvalidReferenceError
from hangar.reference import (
    Reference,
    normalize_project_option,
    normalize_registry_option,
    override_location,
    parse_reference,
)

MIRROR_UNSUPPORTED = "mirror list format (SOURCE DEST TAG) is not supported by this command"
HEAD_SIZE = 8192  # bytes checked for NULs and UTF-8 before anything is yielded
MAX_LINE_BYTES = 65536  # a reference is under 500 bytes; this keeps memory flat on garbage
_CHUNK_SIZE = 65536
_BOM = "\ufeff"
_LIST_HINT = "write one image reference per line, e.g. docker.io/library/nginx:1.25"


@dataclass(frozen=True)
class ListEntry:
    line_number: int
    text: str  # the line as written, white space trimmed
    reference: Reference | None  # set when usable
    error: str | None  # a bad line: counts as failed
    unsupported: str | None  # e.g. mirror-format line: warned and skipped, not failed


class SpooledList:
    """A list that can be read only once (stdin, a pipe), copied to an unlinked temp file as it
    is read, so that it can be read again; the copy goes away with the process."""

    def __init__(self, name: str, source) -> None:
        self.name = name
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the list
        try:
            shutil.copyfileobj(source, self._file)
            self._file.flush()  # it is read again through another descriptor
        except OSError as exc:
            raise _unreadable(Path(name), exc.strerror or str(exc)) from None

    def __str__(self) -> str:
        return self.name

    def open(self):
        handle = os.fdopen(os.dup(self._file.fileno()), "rb")
        handle.seek(0)
        return handle


ListSource = Path | SpooledList


class ReadList:
    """The entries of a list, parsed in one pass and spooled to an unlinked temp file, so that
    memory stays flat for any list size and nothing is parsed twice. The pass also counts the
    lines to process and keeps one repository per registry; file errors surface here, before
    any network. Iterating streams the entries back, as many times as needed."""

    def __init__(
        self, source: ListSource, *, registry: str | None = None, project: str | None = None
    ) -> None:
        self.source = source
        self.total = 0
        self.registries: dict[str, str] = {}
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the list
        try:
            for entry in iter_image_list(source, registry=registry, project=project):
                # pickle: the spool is this process's own unlinked file, never outside input.
                pickle.dump(entry, self._spool, protocol=pickle.HIGHEST_PROTOCOL)
                self.total += 1
                if entry.reference is not None:
                    reference = entry.reference
                    self.registries.setdefault(reference.registry, reference.repository)
            self._spool.flush()
        except BaseException:
            self._spool.close()
            raise

    def __iter__(self) -> Iterator[ListEntry]:
        with os.fdopen(os.dup(self._spool.fileno()), "rb") as handle:
            handle.seek(0)
            while True:
                try:
                    yield pickle.load(handle)
                except EOFError:
                    return

    def close(self) -> None:
        self._spool.close()


def open_image_list(path: str) -> ListSource:
    """The list of `-f`: a regular file is read in place (twice is cheap); `-` (stdin), a FIFO
    or a device is read once, now, into a SpooledList."""
    if path == "-":
        return SpooledList("standard input", sys.stdin.buffer)
    file_path = Path(path)
    if stat.S_ISREG(_stat_list(file_path).st_mode):
        return file_path
    with _open_list(file_path) as handle:
        return SpooledList(path, handle)


def iter_image_list(
    path: str | os.PathLike[str] | SpooledList,
    *,
    registry: str | None = None,
    project: str | None = None,
) -> Iterator[ListEntry]:
    """Entries for the image lines of `path` (comments and blank lines are not yielded).

    The returned generator reads the file lazily, so memory stays flat for any list size.
    """
    source: ListSource = path if isinstance(path, SpooledList) else Path(path)
    registry = normalize_registry_option(registry) if registry else None
    project = normalize_project_option(project) if project else None
    if isinstance(source, SpooledList) or stat.S_ISREG(_stat_list(source).st_mode):
        _check_regular_file(source)
    return _entries(source, registry, project)


def _stat_list(path: Path) -> os.stat_result:
    try:
        info = path.stat()
    except FileNotFoundError:
        raise FileArgumentError(
            f"image list file {path} does not exist", hint="check the --file path"
        ) from None
    except PermissionError:
        raise _unreadable(path, "permission denied") from None
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise FileArgumentError(
            f"image list file {path} is a directory", hint="pass the path of a text file"
        )
    return info


def _check_regular_file(path: ListSource) -> None:
    """The eager checks: text, and at least one line that is meant to be an image."""
    with _open_list(path) as handle:
        head = _read_head(handle)
        _check_head(path, head)
        mirror_lines = 0
        for number, raw in _split_lines(head, handle):
            kind = "image" if raw is None else _classify(_decode(raw, first=number == 1)[0])
            if kind == "image":
                return
            mirror_lines += kind == "mirror"
    raise _no_images(path, mirror_lines)


def _entries(path: ListSource, registry: str | None, project: str | None) -> Iterator[ListEntry]:
    with _open_list(path) as handle:
        head = _read_head(handle)
        _check_head(path, head)
        images = mirror_lines = 0
        for number, raw in _split_lines(head, handle):
            entry = _entry(number, raw, registry, project)
            if entry is None:
                continue
            if entry.unsupported is None:
                images += 1
            else:
                mirror_lines += 1
            yield entry
    if images == 0:  # only reachable for pipes: regular files were checked up front
        raise _no_images(path, mirror_lines)


def _entry(
    number: int, raw: bytes | None, registry: str | None, project: str | None
) -> ListEntry | None:
    if raw is None:
        return ListEntry(number, "", None, f"line is longer than {MAX_LINE_BYTES} bytes", None)
    line, decode_error = _decode(raw, first=number == 1)
    kind = _classify(line)
    if kind == "skip":
        return None
    if decode_error:
        return ListEntry(number, line, None, "line is not valid UTF-8 text", None)
    if kind == "mirror":
        return ListEntry(number, line, None, None, MIRROR_UNSUPPORTED)
    if len(line.split()) > 1:
        reason = "white space inside the line: write one image reference per line"
        return ListEntry(number, line, None, reason, None)
    try:
        reference = parse_reference(line)
        if registry or project:
            reference = override_location(reference, registry, project)
    except InvalidReferenceError as exc:
        return ListEntry(number, line, None, exc.message, None)
    return ListEntry(number, line, reference, None, None)


def _classify(line: str) -> str:
    if not line or line.startswith(("#", "//")):
        return "skip"
    if len(line.split()) == 3:
        return "mirror"
    return "image"


def _decode(raw: bytes, *, first: bool) -> tuple[str, bool]:
    """The trimmed text of a line, and whether it was not UTF-8 (then decoded lossily)."""
    try:
        text, bad = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        text, bad = raw.decode("utf-8", errors="replace"), True
    if first and text.startswith(_BOM):
        text = text[1:]
    return text.strip(), bad


def _open_list(path: ListSource):
    if isinstance(path, SpooledList):
        return path.open()
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise FileArgumentError(
            f"image list file {path} does not exist", hint="check the --file path"
        ) from None
    except IsADirectoryError:
        raise FileArgumentError(
            f"image list file {path} is a directory", hint="pass the path of a text file"
        ) from None
    except PermissionError:
        raise _unreadable(path, "permission denied") from None
    except OSError as exc:
        raise _unreadable(path, exc.strerror or str(exc)) from None


def _read_head(handle) -> bytes:
    """Up to HEAD_SIZE bytes (several reads: a pipe returns what it has)."""
    head = b""
    try:
        while len(head) < HEAD_SIZE:
            chunk = handle.read(HEAD_SIZE - len(head))
            if not chunk:
                break
            head += chunk
    except OSError as exc:
        raise _unreadable(Path(str(handle.name)), exc.strerror or str(exc)) from None
    return head


def _check_head(path: ListSource, head: bytes) -> None:
    if not head:
        raise _no_images(path, 0, empty=True)
    if b"\x00" in head:
        raise HangarError(
            f"{path} is not a text image list (it contains NUL bytes)", hint=_LIST_HINT
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise HangarError(
            f"{path} is not a text image list (not UTF-8 at byte {exc.start})", hint=_LIST_HINT
        ) from None


def _split_lines(head: bytes, handle) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) for each line, reading `handle` after `head` in chunks. A line over
    MAX_LINE_BYTES is None, or b"#" when it starts as a comment (a long comment stays ignored);
    its bytes past the limit are dropped as they stream, so memory stays bounded."""
    number = 0
    buffer, start = head, 0
    kept: bytes | None = None  # the start of an over-long line whose rest is being dropped
    eof = False
    while True:
        newline = buffer.find(b"\n", start)
        if newline >= 0:
            line, start = buffer[start:newline], newline + 1
            number += 1
            if kept is not None:
                yield number, _long_line(kept)
                kept = None
            elif len(line) > MAX_LINE_BYTES:
                yield number, _long_line(line[:MAX_LINE_BYTES])
            else:
                yield number, line
            continue
        rest = buffer[start:]
        if kept is None and len(rest) > MAX_LINE_BYTES:
            kept = rest[:MAX_LINE_BYTES]
        if kept is not None:
            rest = b""
        if eof:
            break
        chunk = _read_chunk(handle)
        eof = not chunk
        buffer, start = rest + chunk, 0
    if kept is not None:
        yield number + 1, _long_line(kept)
    elif rest:
        yield number + 1, rest


def _long_line(start: bytes) -> bytes | None:
    """A comment stays a comment however long it is; any other long line is an error."""
    if start.lstrip().startswith((b"#", b"//")):
        return b"#"
    return None


def _read_chunk(handle) -> bytes:
    try:
        return handle.read(_CHUNK_SIZE)
    except OSError as exc:
        raise _unreadable(Path(str(handle.name)), exc.strerror or str(exc)) from None


def _no_images(path: ListSource, mirror_lines: int, *, empty: bool = False) -> HangarError:
    if mirror_lines:
        return HangarError(
            f"image list {path} contains no images: its {mirror_lines} line(s) use the "
            "mirror list format (SOURCE DEST TAG), which this command does not support",
            hint=_LIST_HINT,
        )
    what = "the file is empty" if empty else "only blank lines and comments"
    return HangarError(f"image list {path} contains no images ({what})", hint=_LIST_HINT)


def _unreadable(path: Path, reason: str) -> HangarError:
    return FileArgumentError(
        f"cannot read image list file {path}: {reason}",
        hint="check the file's permissions and the --file path",
    )
