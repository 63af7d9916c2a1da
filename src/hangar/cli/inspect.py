"""`hangar inspect`: a manifest as the registry stores it, its config, or a summary with the
signature state of every platform.

`--raw` writes the manifest bytes exactly as received (no newline added), so
`hangar inspect --raw IMAGE | sha256sum` prints the image's digest and `| jq` works.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from hangar.cli._args import tls_verify_option
from hangar.cli._help import GoCommand

if TYPE_CHECKING:
    from hangar.operations.inspection import ImageSummary
    from hangar.reference import Reference


@click.command(cls=GoCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("image", metavar="[docker://]IMAGE")
@click.option(
    "--raw/--no-raw",
    default=False,
    help="write the manifest (or with --config, the config) exactly as the registry sent it",
)
@click.option(
    "--config/--no-config",
    default=False,
    help="print the image config (for a multi-platform image: the one of this host's platform)",
)
@click.option("--authfile", metavar="FILE", help="auth.json to read credentials from")
@click.option(
    "-p",
    "--sigstore-pubkey",
    "pubkeys",
    multiple=True,
    metavar="FILE",
    help="also say how many signatures of each digest verify with this public key (a file or "
    "pkcs11: URI; repeatable)",
)
@tls_verify_option
def inspect(
    image: str,
    raw: bool,
    config: bool,
    authfile: str | None,
    pubkeys: tuple[str, ...],
    tls_verify: bool,
) -> None:
    """Inspect an image manifest or its config.

    \b
    Examples:
      hangar inspect docker://registry.example.com/ns/app:v1
      hangar inspect --raw docker://registry.example.com/ns/app:v1 | jq
      hangar inspect --config registry.example.com/ns/app@sha256:...
    """
    from hangar import api

    if config:
        data = api.config_bytes(image, authfile=authfile, tls_verify=tls_verify)
        _write_data(data if raw else _pretty(data))
    elif raw:
        _write_data(api.manifest_bytes(image, authfile=authfile, tls_verify=tls_verify))
    else:
        ref, summary = api.inspect_image(
            image, pubkeys=pubkeys, authfile=authfile, tls_verify=tls_verify
        )
        _print_summary(ref, summary)


def _write_data(data: bytes) -> None:
    stream = sys.stdout.buffer
    stream.write(data)
    stream.flush()


def _pretty(data: bytes) -> bytes:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return data
    return (json.dumps(document, indent=4) + "\n").encode()


# -- summary -----------------------------------------------------------------------------


def _print_summary(ref: Reference, summary: ImageSummary) -> None:
    from hangar.api import describe_image

    fields, platforms = describe_image(ref, summary)
    if sys.stdout.isatty():
        _print_rich(fields, platforms)
    else:
        _print_plain(fields, platforms)


def _print_plain(fields: list[tuple[str, str]], cells: list[tuple[str, str, str]]) -> None:
    width = max(len(name) for name, _ in fields) + 2
    lines = [f"{name + ':':<{width}}{value}" for name, value in fields]
    if cells:
        table = [("PLATFORM", "DIGEST", "SIGNED"), *cells]
        widths = [max(len(line[i]) for line in table) for i in range(2)]
        lines.append("Platforms:")
        lines += [f"  {row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}" for row in table]
    click.echo("\n".join(lines))


def _print_rich(fields: list[tuple[str, str]], cells: list[tuple[str, str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    # Never fold or cut a digest (people copy them): on a narrow terminal the lines run long.
    summary_width = max(len(name) for name, _ in fields) + 4 + max(len(v) for _, v in fields)
    table_width = sum(max(len(row[i]) for row in cells) + 3 for i in range(3)) + 1 if cells else 0
    console = Console()
    console = Console(width=max(console.width, summary_width, table_width))
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold", no_wrap=True)
    summary.add_column(no_wrap=True)
    for name, value in fields:
        summary.add_row(name, value)
    console.print(summary)
    if cells:
        table = Table(title="Platforms", title_justify="left")
        for column in ("Platform", "Digest", "Signed"):
            table.add_column(column, no_wrap=True)
        for row in cells:
            table.add_row(*row)
        console.print(table)
