"""`hangar sign validate`: would the clusters accept these images?"""

from __future__ import annotations

import asyncio
import sys

import click

from hangar import output
from hangar.cli._args import list_options
from hangar.cli._help import GoCommand
from hangar.cli._run import (
    checked_jobs,
    exit_code,
    key_record,
    platform_options,
    prepare_run,
    print_summary,
    registry_client,
    require,
    resign_command,
    run_list,
)

EXAMPLES = """\
# Validate the signed images with sigstore public key file.
hangar sign validate \\
        --file IMAGE_LIST.txt \\
        --sigstore-pubkey SIGSTORE.pub \\
        --arch amd64,arm64 \\
        --os linux
"""


@click.command(
    "validate",
    cls=GoCommand,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Validate the signed images with sigstore public key",
    short_help="Validate the signed images with sigstore public key",
    usage_lines=["-f IMAGE_LIST.txt -p SIGSTORE.pub [flags]"],
    examples=EXAMPLES,
)
@list_options(verb="validate")
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
    # Prints `PASS: [image]` per image, and for a failure one line per failing digest with
    # the reason. Failed lines go to the failed file; the exit code is non-zero.
    sys.exit(_validate(**flags))


def _validate(**flags) -> int:
    from hangar.sigstore.keys import load_public_key
    from hangar.validation import ValidateOptions

    output.set_quiet(flags["quiet"])
    require(flags["file"], "-f/--file", "the image list to validate")
    if not flags["pubkeys"]:
        raise click.UsageError("-p/--sigstore-pubkey is required: the sigstore public key file")
    jobs = checked_jobs(flags["jobs"])
    oses, arches = platform_options(flags)
    inputs = [*flags["pubkeys"], flags["authfile"]]
    with prepare_run(flags, "hangar sign validate", inputs) as prepared:
        keys = [load_public_key(path) for path in flags["pubkeys"]]
        records = [
            key_record(path, key.fingerprint)
            for path, key in zip(flags["pubkeys"], keys, strict=True)
        ]
        prepared.report.describe(keys=records)
        options = ValidateOptions(
            oses=oses,
            arches=arches,
            exact_repository=flags["exact_repository"],
            accept_repository_identity=flags["accept_repository_identity"],
            require_tag_identity=flags["require_tag_identity"],
            require_index_signature=flags["require_index_signature"],
        )
        summary = asyncio.run(_validate_run(keys, options, jobs, prepared, flags))
    resign = resign_command(flags, prepared.failed_path)
    print_summary(summary, "validate", "digests", prepared.failed_path, resign=resign)
    return exit_code(summary)


async def _validate_run(keys, options, jobs, prepared, flags):
    from hangar.jobs import Interrupts
    from hangar.validation import Validator

    async with Interrupts() as interrupts, registry_client(flags, jobs) as client:
        validator = Validator(client, keys, options)
        return await run_list(
            validator.validate_entry,
            flags,
            prepared,
            jobs=jobs,
            verb="Validating",
            interrupts=interrupts,
        )
