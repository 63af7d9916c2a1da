"""Check `-o` and `--report` before any work, and open them: never a user's file lost.

- No output may be the image list, a key, a passphrase or credentials file, or the other
  output. The one exception is the retry: `-f sign-failed.txt` with `-o sign-failed.txt`,
  where the list is a failed list hangar wrote (it is replaced at the end, after it has been
  read).
- An existing failed list is overwritten or removed only when its header line says this same
  command wrote it, or when it is this run's own input (a retry). `hangar sign` and
  `hangar sign validate` both default to `sign-failed.txt` (as hangar v1.8 does); when that
  file holds the other command's list, it is left as it is and this run writes beside it
  (`sign-failed.validate.txt`, `sign-failed.sign.txt`), with a warning that says so.
- An existing report is replaced only when it looks like JSON (a report hangar wrote).
"""

from __future__ import annotations

from pathlib import Path

from hangar import output
from hangar.errors import UsageProblem
from hangar.imagelist import ListSource
from hangar.runner.outfiles import (
    Destination,
    OutputFile,
    header_command,
    resolve_destination,
    same_file,
    sniff,
)


def open_outputs(
    failed_path: Path,
    report_path: Path | None,
    *,
    command: str,
    list_source: ListSource,
    inputs: list[Path],
) -> tuple[OutputFile, OutputFile | None]:
    list_path = list_source if isinstance(list_source, Path) else None
    failed = resolve_destination(failed_path, "-o")
    if not failed.stream:
        _refuse_inputs(failed, "-o", inputs)
    failed = _failed_destination(failed, command, list_path)
    report = resolve_destination(report_path, "--report") if report_path else None
    if report is not None:
        _check_report(report, failed, list_path, inputs)
    failed_file = OutputFile(failed, "-o")
    try:
        report_file = OutputFile(report, "--report") if report else None
    except BaseException:
        failed_file.discard()
        raise
    return failed_file, report_file


def _failed_destination(dest: Destination, command: str, list_path: Path | None) -> Destination:
    """Where this run's failed lines go: `-o`, or, when `-o` holds another command's failed
    list that is not this run's input, a file beside it named after this command."""
    if dest.stream:  # written through: nothing there can be lost
        return dest
    writer = header_command(_first_line(dest.target))
    is_list = list_path is not None and same_file(dest.target, list_path)
    if is_list and writer is None:
        raise UsageProblem(
            f"-o {dest.given} is the image list itself: the failed lines would replace it",
            hint="pass -o another file",
        )
    if is_list or writer == command or not sniff(dest.target).strip():
        return dest  # ours, empty, or the failed list this run retries (read before replaced)
    if writer is None:
        raise UsageProblem(
            f"-o {dest.given} exists and is not a failed list written by hangar",
            hint="pass -o another file, or remove it first if you no longer need it",
        )
    beside = _beside(dest, command)
    output.warn(
        f"{dest.given} holds the failed lines of `{writer}`: it is left as it is, and this "
        f"run's failed lines go to {beside.given}"
    )
    return _failed_destination(beside, command, list_path)


def _beside(dest: Destination, command: str) -> Destination:
    """`sign-failed.txt` -> `sign-failed.validate.txt` for `hangar sign validate`."""
    word = command.split()[-1]
    given = dest.given.with_name(f"{dest.given.stem}.{word}{dest.given.suffix}")
    return resolve_destination(given, "-o")


def _check_report(
    dest: Destination, failed: Destination, list_path: Path | None, inputs: list[Path]
) -> None:
    if dest.stream:  # written through: nothing there can be lost
        return
    _refuse_inputs(dest, "--report", inputs)
    if list_path is not None and same_file(dest.target, list_path):
        raise UsageProblem(
            f"--report {dest.given} is the image list itself", hint="pass --report another file"
        )
    if not failed.stream and _same_target(dest, failed):
        raise UsageProblem(
            f"--report {dest.given} and -o {failed.given} are the same file",
            hint="give each its own file",
        )
    head = sniff(dest.target).lstrip()
    if head and not head.startswith((b"[", b"{")):
        raise UsageProblem(
            f"--report {dest.given} exists and is not a JSON report written by hangar",
            hint="pass --report another file, or remove it first if you no longer need it",
        )


def _refuse_inputs(dest: Destination, flag: str, inputs: list[Path]) -> None:
    for path in inputs:
        if same_file(dest.target, path):
            raise UsageProblem(
                f"{flag} {dest.given} is the same file as {path}, which this command reads",
                hint=f"pass {flag} another file",
            )


def _same_target(a: Destination, b: Destination) -> bool:
    return a.target == b.target or same_file(a.target, b.target)


def _first_line(path: Path) -> str:
    return sniff(path).split(b"\n", 1)[0].decode("utf-8", errors="replace")
