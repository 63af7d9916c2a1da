"""How a list run is summed up in words: the `Summary:` line and what to do about the failed
lines. The CLI prints these; a script or a service can log the same."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hangar.api.run import RunResult


def images(count: int) -> str:
    """`1 image`, `2 images`."""
    return f"{count} image" if count == 1 else f"{count} images"


def summary_messages(
    result: RunResult,
    verb: str,
    noun: str,
    *,
    resign: str | None = None,
    retry: str | None = None,
    dry_run: bool = False,
) -> list[tuple[str, str]]:
    """The summary line and what to do next, as (level, message): info, warn or error.
    `resign` (validate): the `hangar sign` that re-signs the failed lines; `retry`
    (validate): the command that checks them again, the advice when no failed line got a
    verdict (exit 3: access, not signatures)."""
    said: list[tuple[str, str]] = []
    summary, failed_path = result.summary, result.failed_path
    counts = summary.counts
    rate = summary.signatures / summary.elapsed if summary.elapsed > 0 else 0.0
    if verb == "sign":
        parts = [
            f"{counts.get('signed', 0)} signed",
            f"{counts.get('already-signed', 0)} already signed",
        ]
        tail = f"{summary.signatures} signatures written"
    elif verb == "remove":
        done = "would remove" if dry_run else "removed"
        parts = [
            f"{counts.get('removed', 0)} {done}",
            f"{counts.get('nothing-to-remove', 0)} nothing to remove",
        ]
        tail = (
            f"{summary.signatures} signatures would be removed (dry run: nothing was removed)"
            if dry_run
            else f"{summary.signatures} signatures removed"
        )
    else:
        parts = [f"{counts.get('passed', 0)} passed"]
        tail = f"{summary.signatures} digests verified"
    parts += [
        f"{counts.get('skipped', 0)} skipped for platform",
        f"{counts.get('failed', 0)} failed",
    ]
    if summary.not_started:
        parts.append(f"{summary.not_started} not started")
    if counts.get("mirror-format"):
        parts.append(f"{counts['mirror-format']} mirror-format line(s) skipped")
    line = (
        f"Summary: {images(summary.total)}: {', '.join(parts)}; {tail} in "
        f"{summary.elapsed:.1f}s ({rate:.1f} {noun}/s)"
    )
    said.append(("info", line))
    if summary.fatal:
        said.append(("error", f"the run stopped: {summary.fatal}"))
    unfinished = summary.failed + summary.not_started
    if unfinished:
        if verb != "validate":
            advice = f"run again with -f {failed_path} to retry just those"
        elif retry is not None:
            advice = retry
        else:
            advice = (
                f"re-sign them with `{resign or f'hangar sign -f {failed_path} -k KEY'}`, "
                "then validate again"
            )
        done_not = f"{images(unfinished)} not done; their lines are in {failed_path} ({advice})"
        said.append(("error", done_not))
    if summary.interrupted:
        said.append(("warn", "the run was interrupted; unfinished lines are in the failed file"))
    if summary.only_skipped_for_platform:
        have = ", ".join(sorted(summary.platforms_seen)) or "none that can be read"
        said.append(
            (
                "error",
                f"nothing was {'signed' if verb == 'sign' else 'validated'}: no image of the list "
                f"has a platform matching --os/--arch; the images have: {have} "
                "(pass --os/--arch for the platforms to use)",
            )
        )
    return said
