"""`hangar sign`: sign every image of a list (and `hangar sign validate`, its subcommand)."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

import click

from hangar import output
from hangar.cli._args import list_options
from hangar.cli._config import SignConfig
from hangar.cli._help import GoGroup
from hangar.cli._run import (
    ListRun,
    ensure_logins,
    exit_code,
    key_record,
    prepare_run,
    print_summary,
    registry_client,
    run_list,
)

if TYPE_CHECKING:
    from hangar.imagelist import ListEntry
    from hangar.operations.signing import SignOptions
    from hangar.runner.progress import Summary
    from hangar.sigstore.keys import PrivateKey

EXAMPLES = """\
# Sign the images with sigstore private key file.
hangar sign \\
        --file IMAGE_LIST.txt \\
        --sigstore-key SIGSTORE.key \\
        --sigstore-passphrase-file "/path/to/passphrase/file" \\
        --arch amd64,arm64 \\
        --os linux
"""


@click.group(
    cls=GoGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Sign multiple container images with sigstore private key",
    usage_lines=["-f IMAGE_LIST.txt --key SIGSTORE.key [flags]", "[command]"],
    examples=EXAMPLES,
)
@list_options(verb="sign")
@click.option(
    "-k", "--sigstore-key", "--key", "key", metavar="FILE", help="sigstore private key file"
)
@click.option(
    "--sigstore-passphrase-file",
    metavar="FILE",
    help="read the passphrase for the private key from file",
)
@click.option(
    "--skip-login/--no-skip-login",
    default=False,
    help="skip check the registry is logged in (used in shell script)",
)
@click.option(
    "--signed-identity",
    type=click.Choice(["tag", "digest", "repository"]),
    default="tag",
    show_default=True,
    help="docker-reference written in each signature: tag (REPO:TAG, accepted by podman/CRI-O "
    "by tag and by digest), digest (REPO@DIGEST, as hangar v1.8), repository (REPO, as cosign)",
)
@click.option(
    "--sign-index/--no-sign-index",
    default=True,
    show_default=True,
    help="also sign the index of a multi-arch image (cosign verify needs it)",
)
@click.option(
    "--sign-attestations/--no-sign-attestations",
    default=False,
    show_default=True,
    help="also sign the buildx attestation manifests of the selected platforms (skopeo copy "
    "--all and mirroring tools check every instance of an index)",
)
@click.option(
    "--signature-format",
    type=click.Choice(["legacy", "bundle", "both"]),
    default="legacy",
    show_default=True,
    help="legacy: the .sig tag (podman, CRI-O, skopeo, cosign, Kyverno type Cosign); bundle: a "
    "Sigstore bundle as cosign v3 writes it (cosign v3+, Kyverno type SigstoreBundle); both",
)
@click.option(
    "--dry-run/--no-dry-run",
    default=False,
    help="list the images that would be signed (--all-tags expanded) and write nothing",
)
@click.option(
    "--force/--no-force",
    default=False,
    help="add a new signature even where this key already signed",
)
@click.pass_context
def sign(ctx: click.Context, **flags: Any) -> None:
    if ctx.invoked_subcommand is not None:
        return
    sys.exit(_sign(SignConfig.from_flags(flags)))


def _sign(config: SignConfig) -> int:
    from hangar.keys.files import read_signing_key
    from hangar.operations.signing import SignOptions

    output.set_quiet(config.quiet)
    if config.dry_run:
        return _dry_run(config)
    assert config.key is not None  # required without --dry-run (SignConfig)
    config.announce()
    with prepare_run(config) as prepared:
        # Decrypt the key once, before any network traffic.
        key = read_signing_key(config.key, config.passphrase_file)
        prepared.report.describe(keys=[key_record(config.key, key.public_key().fingerprint)])
        options = SignOptions(
            oses=config.oses,
            arches=config.arches,
            identity_mode=config.signed_identity,
            sign_index=config.sign_index,
            force=config.force,
            sign_attestations=config.sign_attestations,
            signature_format=config.signature_format,
        )
        summary = asyncio.run(_sign_run(key, options, prepared, config))
    print_summary(summary, "sign", "signatures", prepared.failed_path)
    return exit_code(summary)


async def _sign_run(
    key: PrivateKey, options: SignOptions, prepared: ListRun, config: SignConfig
) -> Summary:
    from hangar.operations.signing import Signer
    from hangar.runner.interrupts import Interrupts

    jobs = config.jobs
    async with Interrupts() as interrupts, registry_client(config) as client:
        if not config.skip_login:
            await interrupts.guard(ensure_logins(client, prepared.registries, interrupts))
        signer = Signer(client, key, options)
        # The final check's losses are failed lines too: they go to the failed file.
        summary = await run_list(
            signer.sign_entry,
            config,
            prepared,
            verb="Signing",
            interrupts=interrupts,
            finalize=lambda: signer.confirm(concurrency=jobs),
            client=client,
        )
        client.report_requests()
        return summary


def _dry_run(config: SignConfig) -> int:
    """One reference a line on stdout; no key is read, nothing is written. Lines that would
    fail (bad references, tags that cannot be listed) are errors on stderr, and exit 1."""
    from hangar.imagelist import iter_image_list, open_image_list

    source = open_image_list(config.file)
    entries = list(iter_image_list(source, registry=config.registry, project=config.project))
    if config.all_tags:
        entries = asyncio.run(_expand(entries, config))
    images = bad = 0
    for entry in entries:
        if entry.reference is not None:
            click.echo(str(entry.reference))
            images += 1
        elif entry.error is not None:
            output.error(f"{entry.text}: line {entry.line_number}: {entry.error}")
            bad += 1
    output.info(
        f"Dry run: {images} image(s) would be signed, {bad} line(s) would fail; "
        "nothing was signed or written",
        always=True,
    )
    return 1 if bad else 0


async def _expand(entries: list[ListEntry], config: SignConfig) -> list[ListEntry]:
    from hangar.operations.alltags import expand_all_tags

    async with registry_client(config, 1) as client:
        return await expand_all_tags(entries, client)


def _register_validate() -> None:
    from hangar.cli.consumer import policy
    from hangar.cli.remove import remove
    from hangar.cli.validate import validate

    sign.add_command(validate)
    sign.add_command(remove)
    sign.add_command(policy)


_register_validate()
