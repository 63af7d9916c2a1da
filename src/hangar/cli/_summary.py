"""What the list commands print at the end of a run (the `Summary:` line, what to do about
failed lines, as hangar.api.summary words them), and the terminal prompt for credentials a
registry asks for."""

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


def print_summary(
    result: RunResult,
    verb: str,
    noun: str,
    *,
    resign: str | None = None,
    retry: str | None = None,
    dry_run: bool = False,
) -> None:
    """The summary line and what to do next (hangar.api.summary words them)."""
    from hangar.api.summary import summary_messages

    messages = summary_messages(result, verb, noun, resign=resign, retry=retry, dry_run=dry_run)
    for level, message in messages:
        if level == "info":
            output.info(message, always=True)
        elif level == "warn":
            output.warn(message)
        else:
            output.error(message)
