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
    from hangar.operations.inspection import Bundles, ImageSummary, PlatformRow, Signatures
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


def _signatures_text(found: Signatures) -> str:
    words = f"{found.layers} signature{'s' if found.layers != 1 else ''}"
    verified = [f"{k.verified} by {k.path} (sha256:{k.fingerprint[:16]})" for k in found.by_key]
    return ", ".join([words, *verified])


def _bundles_text(found: Bundles) -> str:
    words = f"{found.bundles} bundle{'s' if found.bundles != 1 else ''}"
    verified = [f"{k.verified} by {k.path} (sha256:{k.fingerprint[:16]})" for k in found.by_key]
    return ", ".join([words, *verified])


def _print_summary(ref: Reference, summary: ImageSummary) -> None:
    manifest, rows, own = summary.manifest, summary.rows, summary.own
    bundles = summary.own_bundles
    fields = [
        ("Reference", str(ref)),
        ("Digest", manifest.digest),
        ("Media type", manifest.media_type),
        ("Signed", "yes" if own is not None or bundles is not None else "no"),
    ]
    if own is not None:
        fields.append(("Signatures", _signatures_text(own)))
    if bundles is not None:
        fields.append(("Bundles", _bundles_text(bundles) + " (cosign v3; podman reads .sig only)"))
    is_index = summary.is_index
    if not is_index:
        fields.insert(3, ("Platform", rows[0].platform if rows else "(unknown)"))
        fields.insert(4, ("Layers", str(summary.layers)))
    if sys.stdout.isatty():
        _print_rich(fields, rows if is_index else [])
    else:
        _print_plain(fields, rows if is_index else [])


def _yes_no(value: bool | None) -> str:
    if value is None:
        return "-"
    return "yes" if value else "no"


def _table(rows: list[PlatformRow]) -> list[tuple[str, str, str]]:
    return [(row.platform, row.digest, _signed_cell(row)) for row in rows]


def _signed_cell(row: PlatformRow) -> str:
    if row.note:
        return row.note
    parts = []
    if row.signatures is not None:
        parts.append(_signatures_text(row.signatures))
    if row.bundles is not None:
        parts.append(_bundles_text(row.bundles))
    if parts:
        return "yes: " + "; ".join(parts)
    return _yes_no(row.signed)


def _print_plain(fields: list[tuple[str, str]], rows: list[PlatformRow]) -> None:
    width = max(len(name) for name, _ in fields) + 2
    lines = [f"{name + ':':<{width}}{value}" for name, value in fields]
    if rows:
        header = ("PLATFORM", "DIGEST", "SIGNED")
        table = [header, *_table(rows)]
        widths = [max(len(line[i]) for line in table) for i in range(2)]
        lines.append("Platforms:")
        lines += [
            f"  {cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]}" for cells in table
        ]
    click.echo("\n".join(lines))


def _print_rich(fields: list[tuple[str, str]], rows: list[PlatformRow]) -> None:
    from rich.console import Console
    from rich.table import Table

    cells = _table(rows)
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
