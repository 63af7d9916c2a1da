"""Errors a user can act on.

Every error raised for bad input, a refused request or a bad key is a HangarError: its message
says what went wrong, and its hint what to do. `diagnostics()` renders both as the one line the
CLI prints (never a traceback), and `exit_code` is the code the CLI exits with.
"""

from __future__ import annotations


class HangarError(Exception):
    """A failure the user can act on."""

    exit_code = 1
    # True: one error fails many lines (a registry that went away) and was logged once when it
    # happened; the runner logs it per line only under --debug (the failed file and the report
    # still get every line, with this message).
    said_once = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def diagnostics(self) -> str:
        """What went wrong and, when known, what to do: `message (hint)`."""
        if self.hint:
            return f"{self.message} ({self.hint})"
        return self.message

    def __str__(self) -> str:
        # Per-line errors reach the log and the report through str(): the same text.
        return self.diagnostics()


class InvalidReferenceError(HangarError):
    """An image reference that does not parse."""


class KeyFileError(HangarError):
    """A key that cannot be read, decrypted or used."""


class PayloadError(HangarError):
    """A signature payload that containers/image's strict parser would reject."""


class UsageProblem(HangarError):
    """A flag value that cannot work (an output path that is a directory, say): exit code 2,
    found before any work."""

    exit_code = 2


class FileArgumentError(UsageProblem):
    """A file a flag names (-f's list, a key, a passphrase file) that does not exist, is a
    directory or cannot be read: a usage error (exit 2), as a missing flag is, found before
    any work. What a readable file holds is checked later, with its own errors (exit 1)."""


class KeyFileArgumentError(KeyFileError, FileArgumentError):
    """A key or passphrase file that does not exist or cannot be read (exit 2); still a
    KeyFileError for the code that handles key errors (a policy's keyPath fails its image)."""


class UnexpectedError(HangarError):
    """An exception no code path expected: a bug in hangar. It names the original exception,
    which the CLI shows with its traceback under --debug."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(
            f"unexpected error: {cause.__class__.__name__}: {cause}",
            hint="this is a bug in hangar: run again with --debug for the traceback, and report it",
        )
        self.cause = cause
