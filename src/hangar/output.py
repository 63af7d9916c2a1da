"""Log lines in the seed tool's style: `[INFO] ...`, `[IMG:n] ...` for per-image work.

Logs go to stderr so that data (`hangar inspect --raw`) on stdout stays clean for pipes.
Nothing here formats secrets: callers pass messages that never contain them, and
`redact()` is applied to every debug line as a second guard.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable
from typing import TextIO

CLOSED_EXIT_CODE = 141  # what a shell reports for a tool killed by SIGPIPE
_debug = False
_quiet = False  # -q: warnings, errors and the summary only
_lock = threading.Lock()
# On a terminal the level is coloured, as podman colours its own; NO_COLOR turns it off.
_COLOURS = {"[ERRO]": "\x1b[1;31m", "[WARN]": "\x1b[33m"}
_RESET = "\x1b[0m"
# While a progress bar owns the terminal, lines are routed through it (set by the job runner).
_sink: Callable[[str], None] | None = None
# Called once when stderr turns out to be a closed pipe (set by the job runner, which stops).
_on_closed: Callable[[], None] | None = None
_closed = False

_SECRET_PATTERNS = [
    re.compile(r"(?i)(authorization:\s*)(\S+\s+)?\S+"),
    re.compile(
        r"(?i)((?:password|passwd|token|access_token|refresh_token|secret|auth)"
        r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',&}]+"
    ),
    re.compile(r"(?i)(\b(?:Basic|Bearer)\s+)[A-Za-z0-9._~+/=-]+"),
]


def redact(text: str) -> str:
    """Mask anything shaped like a credential in a log line."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***", text)
    return text


def set_debug(enabled: bool) -> None:
    global _debug
    _debug = enabled


def set_quiet(enabled: bool) -> None:
    global _quiet
    _quiet = enabled


def quiet() -> bool:
    return _quiet


def coloured(line: str, stream: TextIO) -> str:
    """`line` with its [ERRO]/[WARN] level coloured when `stream` is a terminal."""
    colour = _COLOURS.get(line[:6])
    if colour is None or os.environ.get("NO_COLOR") or not _isatty(stream):
        return line
    return f"{colour}{line[:6]}{_RESET}{line[6:]}"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False


def debug_enabled() -> bool:
    return _debug


def set_sink(sink: Callable[[str], None] | None) -> None:
    global _sink
    _sink = sink


def on_closed(callback: Callable[[], None] | None) -> None:
    """Call `callback` when stderr's reader goes away (at once if it already has)."""
    global _on_closed
    _on_closed = callback
    if callback is not None and _closed:
        callback()


def output_closed() -> bool:
    return _closed


def _emit(line: str, stream: TextIO | None = None) -> None:
    global _closed
    with _lock:
        if _closed:
            return
        try:
            if _sink is not None:
                _sink(line)
                return
            out = stream or sys.stderr
            out.write(coloured(line, out) + "\n")
            out.flush()
        except BrokenPipeError:
            # The reader went away (`hangar sign ... 2>&1 | head`): stop writing, as Unix tools
            # do, and let the run end (the failed file and report are still written).
            _closed = True
            silence(sys.stderr if _sink is not None else (stream or sys.stderr))
            callback = _on_closed
        else:
            return
    if callback is not None:
        callback()


def silence(stream: TextIO) -> None:
    """Point a stream whose reader went away at /dev/null, so that nothing (Python's exit-time
    flush included) fails or prints a traceback writing to it again."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def _prefix(image: int | None) -> str:
    return f"[IMG:{image}] " if image is not None else ""


def info(message: str, image: int | None = None, *, always: bool = False) -> None:
    """An information line; `always`: printed with -q too (the summary)."""
    if _quiet and not always:
        return
    _emit(f"[INFO] {_prefix(image)}{message}")


def warn(message: str, image: int | None = None) -> None:
    _emit(f"[WARN] {_prefix(image)}{message}")


def error(message: str, image: int | None = None) -> None:
    _emit(f"[ERRO] {_prefix(image)}{message}")


def debug(message: str, image: int | None = None) -> None:
    if _debug:
        _emit(f"[DEBU] {_prefix(image)}{redact(message)}")
