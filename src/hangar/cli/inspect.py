"""`hangar inspect`: a manifest as the registry stores it, its config, or a summary with the
signature state of every platform.

`--raw` writes the manifest bytes exactly as received (no newline added), so
`hangar inspect --raw IMAGE | sha256sum` prints the image's digest and `| jq` works.
"""

from __future__ import annotations

import asyncio
import json
import platform
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

import click

from hangar import output
from hangar.cli._args import tls_verify_option
from hangar.cli._help import GoCommand
from hangar.errors import HangarError, UsageProblem
from hangar.manifest import (
    INDEX_TYPES,
    Descriptor,
    Platform,
    config_descriptor,
    config_platform,
    index_entries,
    load_json,
)

if TYPE_CHECKING:
    from hangar.reference import Reference
    from hangar.registry.client import Manifest, RegistryClient
    from hangar.sigstore.keys import PublicKey

MAX_CONFIG_SIZE = 16 * 1024 * 1024
# Python's platform.machine() -> (OCI architecture, variant)
_MACHINE_ARCH = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


@dataclass(frozen=True)
class Signatures:
    """What the `.sig` tag of one digest holds: its signature layers, and per key given with
    -p how many of them verify with it (signature and payload digest; identity not judged)."""

    layers: int
    by_key: tuple[tuple[str, str, int], ...] = ()  # (key file, fingerprint, layers verified)

    def text(self) -> str:
        words = f"{self.layers} signature{'s' if self.layers != 1 else ''}"
        verified = [f"{n} by {path} (sha256:{fp[:16]})" for path, fp, n in self.by_key]
        return ", ".join([words, *verified])


@dataclass(frozen=True)
class PlatformRow:
    platform: str
    digest: str
    media_type: str
    signed: bool | None  # None: not a signable entry (attestation), or unknown
    note: str = ""
    signatures: Signatures | None = None


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
    help="also say how many signatures of each digest verify with this public key (repeatable)",
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
    from hangar.keyfiles import load_public_key
    from hangar.reference import parse_reference

    _refuse_other_transports(image)
    ref = parse_reference(image)
    keys = [(path, load_public_key(path)) for path in pubkeys]
    asyncio.run(
        _inspect(ref, raw=raw, config=config, authfile=authfile, tls_verify=tls_verify, keys=keys)
    )


# containers/image transports other than docker://: `oci:foo` must not be read as the
# Docker Hub image `oci` with tag `foo`.
OTHER_TRANSPORTS = (
    "oci",
    "oci-archive",
    "docker-archive",
    "docker-daemon",
    "containers-storage",
    "dir",
    "sif",
    "tarball",
    "ostree",
)


def _refuse_other_transports(image: str) -> None:
    transport, colon, _ = image.partition(":")
    if colon and transport in OTHER_TRANSPORTS:
        raise UsageProblem(
            f'transport "{transport}:" of {image} is not supported: hangar inspect reads '
            "registries only (docker://[REGISTRY/]NAME[:TAG], or the reference alone)",
            hint=f"copy the image to a registry first, e.g. skopeo copy {image} "
            "docker://REGISTRY/NAME:TAG",
        )


async def _inspect(
    ref: Reference,
    *,
    raw: bool,
    config: bool,
    authfile: str | None,
    tls_verify: bool,
    keys: list[tuple[str, PublicKey]],
) -> None:
    from hangar.registry.client import RegistryClient

    async with RegistryClient(tls_verify=tls_verify, authfile=authfile, retries=3) as client:
        manifest = await client.get_manifest(ref)
        if config:
            data = await _config_blob(client, ref, manifest)
            _write_data(data if raw else _pretty(data))
        elif raw:
            _write_data(manifest.data)
        else:
            rows, own = await _summary_rows(client, ref, manifest, keys)
            _print_summary(ref, manifest, rows, own)


def _write_data(data: bytes) -> None:
    stream = sys.stdout.buffer
    stream.write(data)
    stream.flush()


def _pretty(data: bytes) -> bytes:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data
    return (json.dumps(document, indent=4) + "\n").encode()


# -- --config ----------------------------------------------------------------------------


async def _config_blob(client: RegistryClient, ref: Reference, manifest: Manifest) -> bytes:
    if manifest.media_type in INDEX_TYPES:
        entry = _host_entry(ref, manifest.data)
        output.info(f"config of platform {entry.platform} ({entry.digest})")
        manifest = await client.get_manifest(ref.with_digest(entry.digest))
    descriptor = config_descriptor(manifest.data)
    return await client.get_blob(
        ref.registry, ref.repository, descriptor.digest, max_size=MAX_CONFIG_SIZE
    )


def host_platform() -> Platform:
    arch, variant = _MACHINE_ARCH.get(platform.machine().lower(), (platform.machine(), ""))
    return Platform("linux", arch, variant)


def _host_entry(ref: Reference, data: bytes) -> Descriptor:
    """The index entry for this host's platform (Linux: containers run Linux images)."""
    entries = [e for e in index_entries(data) if not e.is_attestation and e.platform]
    host = host_platform()

    def platform(entry: Descriptor) -> Platform:
        assert entry.platform is not None  # filtered above
        return entry.platform

    candidates = [
        e
        for e in entries
        if platform(e).os == host.os and platform(e).architecture == host.architecture
    ]
    exact = [e for e in candidates if platform(e).variant == host.variant]
    unversioned = [e for e in candidates if not platform(e).variant]
    for group in (exact, unversioned, candidates):
        if group:
            return group[0]
    listed = ", ".join(f"{e.platform} {e.digest}" for e in entries) or "none"
    raise HangarError(
        f"{ref} is a multi-platform image without a {host} entry (platforms: {listed})",
        hint=f"pick one by digest: hangar inspect --config {ref.name}@sha256:...",
    )


# -- summary -----------------------------------------------------------------------------


async def _summary_rows(
    client: RegistryClient, ref: Reference, manifest: Manifest, keys: list[tuple[str, PublicKey]]
) -> tuple[list[PlatformRow], Signatures | None]:
    if manifest.media_type in INDEX_TYPES:
        entries = index_entries(manifest.data)
        rows = await asyncio.gather(*(_entry_row(client, ref, entry, keys) for entry in entries))
    else:
        rows = [await _single_row(client, ref, manifest)]
    own = await _signatures(client, ref, manifest.digest, keys)
    return list(rows), own


async def _entry_row(
    client: RegistryClient, ref: Reference, entry: Descriptor, keys: list[tuple[str, PublicKey]]
) -> PlatformRow:
    name = str(entry.platform) if entry.platform else "(no platform)"
    if entry.is_attestation:
        return PlatformRow(name, entry.digest, entry.media_type, None, "attestation")
    found = await _signatures(client, ref, entry.digest, keys)
    return PlatformRow(name, entry.digest, entry.media_type, found is not None, "", found)


async def _single_row(client: RegistryClient, ref: Reference, manifest: Manifest) -> PlatformRow:
    name = "(unknown)"
    try:
        descriptor = config_descriptor(manifest.data)
        config = await client.get_blob(
            ref.registry, ref.repository, descriptor.digest, max_size=MAX_CONFIG_SIZE
        )
        name = str(config_platform(config))
    except HangarError as exc:  # a summary still helps without the platform
        output.debug(f"no platform for {ref}: {exc}")
    return PlatformRow(name, manifest.digest, manifest.media_type, None)


async def _signatures(
    client: RegistryClient, ref: Reference, digest: str, keys: list[tuple[str, PublicKey]]
) -> Signatures | None:
    """The `.sig` tag of `digest`, summed up; None when there is none."""
    from hangar.attachment_blobs import fetch_layer_blobs
    from hangar.registry.errors import NotFoundError
    from hangar.sigstore.attachment import SIMPLESIGNING_MEDIA_TYPE, parse_attachment, signature_tag
    from hangar.sigstore.verify import verify_layer

    try:
        tag = signature_tag(digest)
    except HangarError:
        return None  # not a sha256 digest: cosign-style attachments cannot name it
    try:
        sig = await client.get_manifest(ref.with_tag(tag))
    except NotFoundError:
        return None
    attachment = parse_attachment(sig.data)
    layers = [layer for layer in attachment.layers if layer.media_type == SIMPLESIGNING_MEDIA_TYPE]
    if not keys or not layers:
        return Signatures(len(layers))
    blobs = await fetch_layer_blobs(client, ref.with_tag(tag), attachment)
    pairs = [(b.layer, b.data) for b in blobs if b.layer.media_type == SIMPLESIGNING_MEDIA_TYPE]
    image = f"{ref.name}@{digest}"

    def verified_by(key: PublicKey) -> int:
        any_identity = _AnyIdentity()
        return sum(
            verify_layer(digest, image, layer, data, [key], any_identity).accepted
            for layer, data in pairs
        )

    by_key = tuple((path, key.fingerprint, verified_by(key)) for path, key in keys)
    return Signatures(len(layers), by_key)


class _AnyIdentity:
    """inspect reports which key made a signature; whose image it names is validate's job."""

    def __call__(self, image_reference: str, signed_reference: str) -> bool:
        return True


def _print_summary(
    ref: Reference, manifest: Manifest, rows: list[PlatformRow], own: Signatures | None
) -> None:
    fields = [
        ("Reference", str(ref)),
        ("Digest", manifest.digest),
        ("Media type", manifest.media_type),
        ("Signed", "yes" if own is not None else "no"),
    ]
    if own is not None:
        fields.append(("Signatures", own.text()))
    document = load_json(manifest.data)
    if manifest.media_type not in INDEX_TYPES:
        layers = document.get("layers")
        fields.insert(3, ("Platform", rows[0].platform if rows else "(unknown)"))
        fields.insert(4, ("Layers", str(len(layers) if isinstance(layers, list) else 0)))
    is_index = manifest.media_type in INDEX_TYPES
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
    if row.signatures is not None:
        return f"yes: {row.signatures.text()}"
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
