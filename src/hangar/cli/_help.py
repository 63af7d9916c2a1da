"""Help text laid out as hangar v1.8 (cobra) prints it: Usage, Examples, Available Commands,
Flags with their types and defaults, Global Flags, and the closing "Use ... --help" line.

Users of the seed's tool read help in that layout (and scripts grep it), so every command
uses `GoCommand`/`GoGroup` instead of click's own layout.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import click

# Flags of the root command that every subcommand accepts (see cli/_args.GLOBAL_FLAGS).
GLOBAL_FLAG_ROWS = [
    ("      --debug", "enable debug output"),
    ("      --insecure-policy", "run Hangar without policy check"),
]
_GO_TYPES = {"integer": "int", "duration": "duration", "float": "float"}


class GoHelpMixin:
    """Replaces click's help with the cobra layout. Extra command attributes:
    `usage_lines` (the Usage block, without the program path) and `examples` (verbatim)."""

    def __init__(
        self,
        *args: Any,
        usage_lines: Sequence[str] = (),
        examples: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.usage_lines = list(usage_lines)
        self.examples = examples

    def get_help(self, ctx: click.Context) -> str:
        return render_help(self, ctx)  # type: ignore[arg-type]


class GoCommand(GoHelpMixin, click.Command):
    pass


class GoGroup(GoHelpMixin, click.Group):
    pass


def render_help(command: click.Command, ctx: click.Context) -> str:
    is_root = ctx.parent is None
    blocks = [_description(command)]
    blocks.append("Usage:\n" + "\n".join(f"  {line}" for line in _usage(command, ctx)))
    examples = getattr(command, "examples", "") or _docstring_examples(command)
    if examples:
        blocks.append("Examples:\n" + examples.rstrip("\n"))
    subcommands = _subcommands(command, ctx)
    if subcommands:
        blocks.append("Available Commands:\n" + _command_block(subcommands))
    flags = flag_rows(command, ctx)
    if flags:
        blocks.append("Flags:\n" + _flag_block(flags))
    if not is_root:
        blocks.append("Global Flags:\n" + _flag_block(GLOBAL_FLAG_ROWS))
    if subcommands:
        blocks.append(
            f'Use "{ctx.command_path} [command] --help" for more information about a command.'
        )
    return "\n\n".join(block for block in blocks if block)


def _description(command: click.Command) -> str:
    text = (command.help or command.short_help or "").split("Examples:")[0]
    return " ".join(text.replace("\b", "").split())


def _docstring_examples(command: click.Command) -> str:
    """The `Examples:` section of a docstring or epilog, its lines as written."""
    for text in (command.help, command.epilog):
        if text and "Examples:" in text:
            body = text.split("Examples:", 1)[1].replace("\b\n", "")
            return textwrap.dedent(body).strip("\n") + "\n"
    return ""


def _usage(command: click.Command, ctx: click.Context) -> list[str]:
    lines = getattr(command, "usage_lines", [])
    if lines:
        return [f"{ctx.command_path} {line}".rstrip() for line in lines]
    args = " ".join(p.make_metavar(ctx) for p in command.params if isinstance(p, click.Argument))
    if isinstance(command, click.Group):
        return [f"{ctx.command_path} [command]"]
    return [f"{ctx.command_path} {args} [flags]".replace("  ", " ")]


def _subcommands(command: click.Command, ctx: click.Context) -> list[tuple[str, str]]:
    if not isinstance(command, click.Group):
        return []
    lazy = getattr(command, "get_short_help", None)  # the root: no import per subcommand
    rows = []
    for name in command.list_commands(ctx):
        if lazy is not None:
            rows.append((name, lazy(name)))
            continue
        sub = command.get_command(ctx, name)
        if sub is not None and not sub.hidden:
            rows.append((name, sub.get_short_help_str(limit=200).rstrip(".")))
    return rows


def flag_rows(command: click.Command, ctx: click.Context) -> list[tuple[str, str]]:
    """(`  -a, --arch strings`, `help (default [...])`) per visible option, sorted by long
    name as pflag sorts them, `-h, --help` included."""
    rows: list[tuple[str, str, str]] = []
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden:
            continue
        rows.append(_option_row(param, ctx))
    rows.append(("help", "  -h, --help", f"help for {ctx.info_name}"))
    return [(left, text) for _, left, text in sorted(rows)]


def _option_row(option: click.Option, ctx: click.Context) -> tuple[str, str, str]:
    longs = [o for o in option.opts if o.startswith("--")]
    shorts = [o for o in option.opts if not o.startswith("--")]
    name = longs[0]
    left = f"  {shorts[0]}, {name}" if shorts else f"      {name}"
    type_name = _type_name(option)
    if type_name:
        left += f" {type_name}"
    text = (option.help or "").strip()
    default = _default_text(option, ctx)
    if default:
        text += f" (default {default})"
    return name.lstrip("-"), left, text


def _type_name(option: click.Option) -> str:
    if option.is_flag or option.count:
        return ""
    if option.multiple:
        return "strings"
    return _GO_TYPES.get(option.type.name, "string")


def _default_text(option: click.Option, ctx: click.Context) -> str:
    value = option.to_info_dict()["default"]  # None where click holds its UNSET sentinel
    if option.show_default is False or value is None or value == () or value == "":
        return ""
    if option.is_flag:
        return "true" if value is True else ""
    if option.multiple:
        parts = [part for item in value for part in str(item).split(",") if part]
        return "[" + ",".join(parts) + "]"
    if _type_name(option) == "string":
        return f'"{value}"'
    return str(value)


def _command_block(rows: Sequence[tuple[str, str]]) -> str:
    # cobra: names padded to the longest one (at least 11), then one space.
    width = max(11, *(len(name) for name, _ in rows)) + 1
    return "\n".join(f"  {name:<{width}}{text}".rstrip() for name, text in rows)


def _flag_block(rows: Sequence[tuple[str, str]]) -> str:
    # pflag: the help column starts 3 spaces after the longest flag column.
    width = max(len(left) for left, _ in rows) + 3
    return "\n".join(f"{left:<{width}}{text}".rstrip() for left, text in rows)
