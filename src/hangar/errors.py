"""Errors a user can act on.

Every error raised for bad input, a refused request or a bad key is a HangarError: its message
says what went wrong, and its hint what to do. The CLI prints them as one line, never a traceback.
"""

from __future__ import annotations


class HangarError(Exception):
    """A failure the user can act on."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message


class InvalidReferenceError(HangarError):
    """An image reference that does not parse."""


class KeyFileError(HangarError):
    """A key that cannot be read, decrypted or used."""


class PayloadError(HangarError):
    """A signature payload that containers/image's strict parser would reject."""


class UsageProblem(HangarError):
    """A flag value that cannot work (an output path that is a directory, say): exit code 2,
    found before any work."""
