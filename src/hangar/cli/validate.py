"""`hangar sign validate`: would the clusters accept these images?"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from hangar.cli._args import list_options, split_list
from hangar.cli._run import (
    checked_jobs,
    exit_code,
    print_summary,
    registry_client,
    require,
    run_list,
    scan_list,
)


@click.command(
    "validate",
    context_settings={"help_option_names": ["-h", "--help"]},
    short_help="Validate the signed images with sigstore public key",
)
@list_options
@click.option(
    "-p",
    "--sigstore-pubkey",
    "pubkeys",
    multiple=True,
    metavar="FILE",
    help="sigstore public key file; repeat for key rotation (any one key is enough)",
)
@click.option(
    "--exact-repository",
    metavar="REPO",
    help="accept signatures whose identity names REPO (c/image exactRepository) instead of "
    "the default matchRepoDigestOrExact",
)
@click.option(
    "--accept-repository-identity/--no-accept-repository-identity",
    default=False,
    help="accept cosign's name-only identities (c/image matchRepository)",
)
@click.option(
    "--require-tag-identity/--no-require-tag-identity",
    default=False,
    help="each platform manifest must carry a signature naming the listed tag exactly "
    "(what podman/CRI-O need to pull by tag under the default policy)",
)
@click.option(
    "--require-index-signature/--no-require-index-signature",
    default=False,
    help="a multi-arch image's index must be signed too (what `cosign verify --key` needs "
    "for a tag)",
)
def validate(**flags) -> None:
    """Validate the signed images with sigstore public key.

    Prints `PASS: [image]` per image, and for a failure one line per failing digest with
    the reason. Failed lines go to the failed file; the exit code is non-zero.
    """
    sys.exit(_validate(**flags))


def _validate(**flags) -> int:
    from hangar.sigstore.keys import load_public_key
    from hangar.validation import ValidateOptions

    file = require(flags["file"], "-f/--file", "the image list to validate")
    if not flags["pubkeys"]:
        raise click.UsageError("-p/--sigstore-pubkey is required: the sigstore public key file")
    keys = [load_public_key(path) for path in flags["pubkeys"]]
    jobs = checked_jobs(flags["jobs"])
    total, _ = scan_list(file, flags["registry"], flags["project"])
    options = ValidateOptions(
        oses=split_list(flags["os_"]),
        arches=split_list(flags["arch"]),
        exact_repository=flags["exact_repository"],
        accept_repository_identity=flags["accept_repository_identity"],
        require_tag_identity=flags["require_tag_identity"],
        require_index_signature=flags["require_index_signature"],
    )
    summary = asyncio.run(_validate_run(keys, options, jobs, total, flags))
    print_summary(summary, "validate", "digests", Path(flags["failed"]))
    return exit_code(summary)


async def _validate_run(keys, options, jobs, total, flags):
    from hangar.validation import Validator

    async with registry_client(flags, jobs) as client:
        validator = Validator(client, keys, options)
        summary = await run_list(
            validator.validate_entry, flags, jobs=jobs, total=total, verb="Validating"
        )
        client.report_requests()
        return summary
