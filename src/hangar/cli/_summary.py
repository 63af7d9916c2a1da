"""What the list commands print at the end of a run (the `Summary:` line, what to do about
failed lines), and the terminal prompt for credentials a registry asks for."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from hangar import output

if TYPE_CHECKING:
    from hangar.api.run import CredentialsPrompt, RunResult


def credentials_prompt() -> CredentialsPrompt | None:
    """Ask on the terminal (as the seed's tool does); in a script, None: hangar warns once and
    each image fails with a `hangar login` hint."""
    if not sys.stdin.isatty():
        return None

    def ask(registry: str) -> tuple[str, str]:
        username = click.prompt(f"Username for {registry}")
        password = click.prompt(f"Password for {registry}", hide_input=True)
        return username, password

    return ask


def print_summary(result: RunResult, verb: str, noun: str, *, resign: str | None = None) -> None:
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
        parts = [
            f"{counts.get('removed', 0)} removed",
            f"{counts.get('nothing-to-remove', 0)} nothing to remove",
        ]
        tail = f"{summary.signatures} signatures removed"
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
        f"Summary: {summary.total} images: {', '.join(parts)}; {tail} in "
        f"{summary.elapsed:.1f}s ({rate:.1f} {noun}/s)"
    )
    output.info(line, always=True)
    if summary.fatal:
        output.error(f"the run stopped: {summary.fatal}")
    unfinished = summary.failed + summary.not_started
    if unfinished:
        retry = (
            f"run again with -f {failed_path} to retry just those"
            if verb == "sign"
            else f"re-sign them with `{resign or f'hangar sign -f {failed_path} -k KEY'}`, "
            "then validate again"
        )
        output.error(f"{unfinished} image(s) not done; their lines are in {failed_path} ({retry})")
    if summary.interrupted:
        output.warn("the run was interrupted; unfinished lines are in the failed file")
    if summary.only_skipped_for_platform:
        have = ", ".join(sorted(summary.platforms_seen)) or "none that can be read"
        output.error(
            f"nothing was {'signed' if verb == 'sign' else 'validated'}: no image of the list "
            f"has a platform matching --os/--arch; the images have: {have} "
            "(pass --os/--arch for the platforms to use)"
        )
