"""`hangar sign validate`: would the clusters accept these images?"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from hangar import output
from hangar.cli._args import list_options
from hangar.cli._config import ValidateConfig
from hangar.cli._help import GoCommand
from hangar.cli._run import (
    COULD_NOT_CHECK,
    ListRun,
    could_not_check_advice,
    exit_code,
    key_record,
    prepare_run,
    print_summary,
    registry_client,
    resign_command,
    run_list,
)
from hangar.imagelist import ListEntry
from hangar.results import ImageResult
from hangar.runner.jobs import Worker
from hangar.runner.progress import Summary

if TYPE_CHECKING:
    from hangar.operations.validation import ValidateOptions
    from hangar.policy.context import PolicyContext
    from hangar.sigstore.keys import PublicKey

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
def validate(**flags: Any) -> None:
    # Prints `PASS: [image]` per image, and for a failure one line per failing digest with
    # the reason. Failed lines go to the failed file; the exit code is non-zero.
    sys.exit(_validate(ValidateConfig.from_flags(flags)))


def _validate(config: ValidateConfig) -> int:
    from hangar.keys.files import load_public_key
    from hangar.operations.validation import ValidateOptions

    output.set_quiet(config.quiet)
    context = _policy_context(config)
    config.announce()
    with prepare_run(config) as prepared:
        keys = [load_public_key(path) for path in config.pubkeys] if context is None else []
        records = [
            key_record(path, key.fingerprint)
            for path, key in zip(config.pubkeys, keys, strict=True)
        ]
        prepared.report.describe(keys=records)
        options = ValidateOptions(
            oses=config.oses,
            arches=config.arches,
            exact_repository=config.exact_repository,
            accept_repository_identity=config.accept_repository_identity,
            require_tag_identity=config.require_tag_identity,
            require_index_signature=config.require_index_signature,
            all_instances=config.all_instances,
        )
        unchecked = Unchecked()
        summary = asyncio.run(_validate_run(keys, context, options, prepared, config, unchecked))
    resign = resign_command(config, prepared.failed_path, all_instances=config.all_instances)
    code = exit_code(summary, unchecked=unchecked.count)
    retry = (
        could_not_check_advice(config, prepared.failed_path) if code == COULD_NOT_CHECK else None
    )
    print_summary(summary, "validate", "digests", prepared.failed_path, resign=resign, retry=retry)
    return code


async def _validate_run(
    keys: list[PublicKey],
    context: PolicyContext | None,
    options: ValidateOptions,
    prepared: ListRun,
    config: ValidateConfig,
    unchecked: Unchecked,
) -> Summary:
    from hangar.operations.policy_validation import PolicyValidator
    from hangar.operations.validation import Validator
    from hangar.runner.interrupts import Interrupts

    async with Interrupts() as interrupts, registry_client(config) as client:
        validator: Validator
        if context is not None:
            validator = PolicyValidator(client, context, options)
        else:
            validator = Validator(client, keys, options)
        summary = await run_list(
            unchecked.counting(validator.validate_entry),
            config,
            prepared,
            verb="Validating",
            interrupts=interrupts,
            client=client,
            unexpanded=unchecked.add,
        )
        client.report_requests()
        return summary


class Unchecked:
    """Counts the failed lines that got no verdict, for the exit code (3 when every failed
    line is one of them): the registry could not be reached or refused the request (see
    `_could_not_check`), the line timed out, hangar failed on a bug, --all-tags could not
    expand the line, or every platform that failed is NOT CHECKED (a policy requirement
    hangar cannot evaluate). A digest not signed, or signed but not accepted, is a verdict;
    so is an image podman would refuse before its signatures (too large, not what its digest
    says, a manifest it cannot parse)."""

    def __init__(self) -> None:
        self.count = 0

    def add(self, lines: int) -> None:
        self.count += lines

    def counting(self, worker: Worker) -> Worker:
        async def counted(entry: ListEntry, number: int) -> ImageResult:
            try:
                result = await worker(entry, number)
            except BaseException as exc:
                self.count += _could_not_check(exc)
                raise
            if result.status == "failed" and not _has_verdict(result.details):
                self.count += 1
            return result

        return counted


def _could_not_check(exc: BaseException) -> bool:
    from hangar.errors import HangarError
    from hangar.registry.errors import DigestMismatchError, RegistryError, TooLargeError

    if isinstance(exc, TooLargeError | DigestMismatchError):
        return False  # what the registry serves is refused whatever its signatures
    if isinstance(exc, RegistryError):
        return True  # unreachable, TLS, authentication, not found, 5xx, a request timeout
    # An unusable manifest is a verdict; a cancellation (--timeout) or a bug is not.
    return not isinstance(exc, HangarError)


def _has_verdict(details: Sequence[Mapping[str, object]]) -> bool:
    """A failing digest or pull that was judged (and not just NOT CHECKED by --policy)."""
    from hangar.operations.policy_validation import LABELS
    from hangar.policy.evaluation import UNCHECKED

    failing = [record for record in details if not record.get("passed")]
    not_checked = LABELS[UNCHECKED]
    return not failing or any(record.get("verdict") != not_checked for record in failing)


def _policy_context(config: ValidateConfig) -> PolicyContext | None:
    """The policy and registries.d to evaluate (None: no --policy, today's checks). Read and
    checked here, before the list or the network: a policy podman refuses exits 2."""
    from hangar.policy.config import load_policy
    from hangar.policy.context import PolicyContext
    from hangar.policy.registries import (
        default_policy_path,
        default_registries_d,
        load_registries_d,
    )

    if not config.uses_policy:
        return None
    path = config.policy or default_policy_path()
    registries_d = config.registries_d or default_registries_d()
    context = PolicyContext(load_policy(path), load_registries_d(registries_d))
    output.info(f"Policy {path}, registries.d {registries_d}")
    return context
