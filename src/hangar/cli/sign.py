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
    from hangar.results import ImageResult
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
    """One reference a line on stdout for each image that would be signed; no key is read,
    nothing is written. Each line is resolved as a real run would (its manifest and
    platforms read): a line that would fail (a bad reference, a missing image, a registry
    that refuses, tags that cannot be listed) is an error on stderr, one with no matching
    platform is said to be skipped; the exit code is what the real run's would be."""
    from hangar.imagelist import iter_image_list, open_image_list
    from hangar.results import ImageResult

    config.announce()
    source = open_image_list(config.file)
    listed = list(iter_image_list(source, registry=config.registry, project=config.project))
    entries, results = asyncio.run(_plan(listed, config))
    images = bad = skipped = digests = 0
    for entry, result in zip(entries, results, strict=True):
        if entry.unsupported is not None:
            continue
        if entry.error is not None:
            output.error(f"{entry.text}: line {entry.line_number}: {entry.error}")
            bad += 1
        elif not isinstance(result, ImageResult):
            output.error(f"{entry.text}: line {entry.line_number}: {_failure(result, config)}")
            bad += 1
        elif result.status == "skipped":
            output.info(
                f"{entry.text}: line {entry.line_number}: {result.message}, would be skipped"
            )
            skipped += 1
        else:
            click.echo(str(entry.reference))
            images += 1
            digests += result.signatures
    output.info(
        f"Dry run: {images} image(s) would be signed ({digests} digest(s)), {skipped} skipped "
        f"for platform, {bad} line(s) would fail; nothing was signed or written",
        always=True,
    )
    if bad or (skipped and not images):
        return 1
    return 0


def _failure(result: Exception | None, config: SignConfig) -> str:
    """As a real run words a line's failure."""
    from hangar.errors import HangarError

    if result is None:
        return f"timed out after {config.timeout:g}s (--timeout)"
    if isinstance(result, HangarError):
        return str(result)
    return f"unexpected error: {result.__class__.__name__}: {result}"


async def _plan(
    listed: list[ListEntry], config: SignConfig
) -> tuple[list[ListEntry], list[ImageResult | Exception | None]]:
    """The lines (--all-tags expanded), each resolved, -j at a time: its result, the error
    it would fail with, or None when it timed out (or is no image reference)."""
    from hangar.operations.signing import SignOptions, plan_entry

    options = SignOptions(
        oses=config.oses,
        arches=config.arches,
        identity_mode=config.signed_identity,
        sign_index=config.sign_index,
        sign_attestations=config.sign_attestations,
    )
    async with registry_client(config) as client:
        entries = listed
        if config.all_tags:
            from hangar.operations.alltags import expand_all_tags

            entries = await expand_all_tags(listed, client)
        gate = asyncio.Semaphore(config.jobs)

        async def one(entry: ListEntry) -> ImageResult | Exception | None:
            if entry.reference is None:
                return None
            async with gate:
                try:
                    async with asyncio.timeout(config.timeout):
                        return await plan_entry(client, entry, options)
                except TimeoutError:
                    return None
                except Exception as exc:  # a failed line, reported as a real run would
                    return exc

        return entries, list(await asyncio.gather(*(one(entry) for entry in entries)))


def _register_validate() -> None:
    from hangar.cli.consumer import policy
    from hangar.cli.remove import remove
    from hangar.cli.validate import validate

    sign.add_command(validate)
    sign.add_command(remove)
    sign.add_command(policy)


_register_validate()
