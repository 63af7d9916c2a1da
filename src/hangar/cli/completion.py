"""`hangar completion bash|zsh|fish` and `hangar version`, as hangar v1.8 (cobra) has them.

The scripts are click's: they call `hangar` back with `_HANGAR_COMPLETE` set, so completion
always matches the installed commands and flags.
"""

from __future__ import annotations

import click

from hangar import __version__
from hangar.cli._help import GoCommand

SHELLS = ("bash", "zsh", "fish")
INSTALL = {
    "bash": "source <(hangar completion bash)   # or: hangar completion bash > "
    "/etc/bash_completion.d/hangar",
    "zsh": 'hangar completion zsh > "${fpath[1]}/_hangar"   # then start a new shell',
    "fish": "hangar completion fish > ~/.config/fish/completions/hangar.fish",
}
EXAMPLES = "\n".join(f"# {shell}\n{line}" for shell, line in INSTALL.items()) + "\n"


@click.command(
    cls=GoCommand,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Generate the autocompletion script for hangar for the specified shell "
    "(bash, zsh or fish)",
    short_help="Generate the autocompletion script for the specified shell",
    usage_lines=["[bash|zsh|fish]"],
    examples=EXAMPLES,
)
@click.argument("shell", type=click.Choice(SHELLS), metavar="SHELL")
def completion(shell: str) -> None:
    from click.shell_completion import get_completion_class

    from hangar.cli import cli

    completion_class = get_completion_class(shell)
    assert completion_class is not None  # click ships all three
    script = completion_class(cli, {}, "hangar", "_HANGAR_COMPLETE").source()
    click.echo(script)


@click.command(
    cls=GoCommand,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Show the version of hangar",
    short_help="Show version",
    usage_lines=["[flags]"],
)
def version() -> None:
    click.echo(f"hangar version {__version__}")
