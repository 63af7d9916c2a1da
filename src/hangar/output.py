"""Log lines in the seed tool's style: `[INFO] ...`, `[IMG:n] ...` for per-image work.

Logs go to stderr so that data (`hangar inspect --raw`) on stdout stays clean for pipes.
Nothing here formats secrets: callers pass messages that never contain them, and
`redact()` is applied to every debug line as a second guard.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable
from typing import TextIO

_debug = False
_lock = threading.Lock()
# While a progress bar owns the terminal, lines are routed through it (set by the job runner).
_sink: Callable[[str], None] | None = None

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


def debug_enabled() -> bool:
    return _debug


def set_sink(sink: Callable[[str], None] | None) -> None:
    global _sink
    _sink = sink


def _emit(line: str, stream: TextIO | None = None) -> None:
    with _lock:
        if _sink is not None:
            _sink(line)
            return
        out = stream or sys.stderr
        out.write(line + "\n")
        out.flush()


def _prefix(image: int | None) -> str:
    return f"[IMG:{image}] " if image is not None else ""


def info(message: str, image: int | None = None) -> None:
    _emit(f"[INFO] {_prefix(image)}{message}")


def warn(message: str, image: int | None = None) -> None:
    _emit(f"[WARN] {_prefix(image)}{message}")


def error(message: str, image: int | None = None) -> None:
    _emit(f"[ERRO] {_prefix(image)}{message}")


def debug(message: str, image: int | None = None) -> None:
    if _debug:
        _emit(f"[DEBU] {_prefix(image)}{redact(message)}")
