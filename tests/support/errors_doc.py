"""The docs/errors.md contract: each observed message is checked against its row there, so
the table stays what hangar prints. With HANGAR_ERRORS_DOC_RECORD=FILE the rows are appended to
FILE instead of checked, ready to paste into the table after a deliberate change."""

from __future__ import annotations

import os
import re

from tests.support.paths import REPO

ERRORS_DOC = REPO / "docs" / "errors.md"
RECORD_ENV = "HANGAR_ERRORS_DOC_RECORD"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}(?![0-9a-f])")
_LOOPBACK_PORT = re.compile(r"127\.0\.0\.1:\d+")


def normalize(text: str, substitutions: dict[str, str]) -> str:
    """Text with run-specific parts (ports, temp paths, names, digests) made stable."""
    for old, new in sorted(substitutions.items(), key=lambda item: -len(item[0])):
        text = text.replace(old, new)
    text = _DIGEST.sub("sha256:DIGEST", text)
    return _LOOPBACK_PORT.sub("127.0.0.1:PORT", text)


def doc_row(case: str, exit_code: int, message: str) -> str:
    cell = message.replace("|", "\\|")  # a pipe would end the table cell
    return f"| {case} | {exit_code} | `` {cell} `` |"


def documented(case: str, exit_code: int, message: str, substitutions: dict[str, str]) -> None:
    """Assert docs/errors.md holds this case's row with the message as hangar printed it."""
    row = doc_row(case, exit_code, normalize(message, substitutions))
    record = os.environ.get(RECORD_ENV)
    if record:
        with open(record, "a", encoding="utf-8") as handle:
            handle.write(row + "\n")
        return
    assert row in ERRORS_DOC.read_text(encoding="utf-8"), (
        f"docs/errors.md lacks this row, or holds a stale one:\n{row}"
    )


def log_line(stderr: str, *needles: str, level: str = "[ERRO]") -> str:
    """The first log line of `level` that contains every needle."""
    for line in stderr.splitlines():
        if line.startswith(level) and all(needle in line for needle in needles):
            return line
    raise AssertionError(f"no {level} line with {needles!r} in:\n{stderr}")


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("[ERRO]")]
