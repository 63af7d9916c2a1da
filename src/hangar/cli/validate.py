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
@click.option(
    "--all-instances/--no-all-instances",
    default=False,
    help="check every instance of a multi-arch image, attestation manifests included and "
    "whatever --os/--arch say (what `skopeo copy --all` and mirroring tools check)",
)
@click.option(
    "--policy",
    "policy",
    metavar="FILE",
    help="evaluate this containers policy.json for each image, as podman/CRI-O do when they "
    "pull it (by tag and by digest): ACCEPTED/REJECTED per platform; the keys come from it",
)
@click.option(
    "--registries-d",
    "registries_d",
    metavar="DIR",
    help="with --policy: the registries.d directory podman/CRI-O use (default: "
    "~/.config/containers/registries.d if it exists, else /etc/containers/registries.d)",
)
@click.option(
    "--system-policy",
    is_flag=True,
    default=False,
    help="like --policy, with the policy and registries.d podman reads on this machine: "
    "~/.config/containers/policy.json if it exists, else /etc/containers/policy.json",
)
def validate(**flags) -> None:
    # Prints `PASS: [image]` per image, and for a failure one line per failing digest with
    # the reason. Failed lines go to the failed file; the exit code is non-zero.
    sys.exit(_validate(**flags))


def _validate(**flags) -> int:
    from hangar.keyfiles import load_public_key
    from hangar.validation import ValidateOptions

    output.set_quiet(flags["quiet"])
    require(flags["file"], "-f/--file", "the image list to validate")
    context = _policy_context(flags)
    if context is None and not flags["pubkeys"]:
        raise click.UsageError("-p/--sigstore-pubkey is required: the sigstore public key file")
    jobs = checked_jobs(flags["jobs"])
    oses, arches = platform_options(flags)
    inputs = [*flags["pubkeys"], flags["authfile"], flags["policy"]]
    with prepare_run(flags, "hangar sign validate", inputs) as prepared:
        keys = [load_public_key(path) for path in flags["pubkeys"]] if context is None else []
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
            all_instances=flags["all_instances"],
        )
        summary = asyncio.run(_validate_run(keys, context, options, jobs, prepared, flags))
    resign = resign_command(flags, prepared.failed_path)
    print_summary(summary, "validate", "digests", prepared.failed_path, resign=resign)
    return exit_code(summary)


async def _validate_run(keys, context, options, jobs, prepared, flags):
    from hangar.interrupts import Interrupts
    from hangar.policy_validation import PolicyValidator
    from hangar.validation import Validator

    async with Interrupts() as interrupts, registry_client(flags, jobs) as client:
        if context is not None:
            validator = PolicyValidator(client, context, options)
        else:
            validator = Validator(client, keys, options)
        summary = await run_list(
            validator.validate_entry,
            flags,
            prepared,
            jobs=jobs,
            verb="Validating",
            interrupts=interrupts,
            client=client,
        )
        client.report_requests()
        return summary


# Flags that approximate a policy; with --policy the policy itself says all of it.
_APPROXIMATIONS = {
    "pubkeys": "-p/--sigstore-pubkey",
    "exact_repository": "--exact-repository",
    "accept_repository_identity": "--accept-repository-identity",
    "require_tag_identity": "--require-tag-identity",
    "require_index_signature": "--require-index-signature",
}


def _policy_context(flags):
    """The policy and registries.d to evaluate (None: no --policy, today's checks). Read and
    checked here, before the list or the network: a policy podman refuses exits 2."""
    from hangar.policy.config import load_policy
    from hangar.policy.context import PolicyContext
    from hangar.policy.registries import (
        default_policy_path,
        default_registries_d,
        load_registries_d,
    )

    if flags["policy"] and flags["system_policy"]:
        raise click.UsageError("--policy and --system-policy exclude each other: pick one")
    if not flags["policy"] and not flags["system_policy"]:
        if flags["registries_d"]:
            raise click.UsageError("--registries-d needs --policy FILE or --system-policy")
        return None
    for name, flag in _APPROXIMATIONS.items():
        if flags[name]:
            raise click.UsageError(
                f"{flag} is not used with --policy/--system-policy: the policy names the keys "
                "and identity rules"
            )
    path = flags["policy"] or default_policy_path()
    registries_d = flags["registries_d"] or default_registries_d()
    context = PolicyContext(load_policy(path), load_registries_d(registries_d))
    output.info(f"Policy {path}, registries.d {registries_d}")
    return context
