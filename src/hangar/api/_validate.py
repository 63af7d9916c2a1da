"""Would the clusters accept these images? `hangar sign validate` as a function."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hangar import output
from hangar.api.config import ValidateConfig
from hangar.api.run import (
    COULD_NOT_CHECK,
    RunResult,
    could_not_check_advice,
    exit_code,
    key_record,
    prepare_run,
    resign_command,
    run_list,
    run_with_client,
)
from hangar.imagelist import ListEntry
from hangar.operations.policy_validation import LABELS, PolicyValidator
from hangar.operations.validation import ValidateOptions, Validator
from hangar.policy.context import PolicyContext
from hangar.policy.evaluation import UNCHECKED
from hangar.registry.client import RegistryClient
from hangar.results import ImageResult
from hangar.runner.interrupts import Interrupts
from hangar.runner.jobs import Worker
from hangar.runner.progress import Summary
from hangar.sigstore.keys import PublicKey


@dataclass(frozen=True)
class ValidateResult(RunResult):
    """A validate run's result, with the `hangar sign` that re-signs its failed lines, and,
    when none of them got a verdict (exit 3), the advice to check access and validate again."""

    resign: str
    retry: str | None = None


def validate(config: ValidateConfig) -> ValidateResult:
    """Check each image of the list with the keys of `config` (or evaluate its policy.json as
    podman/CRI-O do); PASS lines are logged, failed lines go to the failed file."""
    from hangar.keys.backends import describe, open_public_key

    output.set_quiet(config.quiet)
    context = _policy_context(config)
    config.announce()
    with prepare_run(config) as prepared:
        keys = [open_public_key(spec) for spec in config.pubkeys] if context is None else []
        records = [
            key_record(describe(spec), key.fingerprint)
            for spec, key in zip(config.pubkeys, keys, strict=True)
        ]
        prepared.report.describe(keys=records)
        options = ValidateOptions(
            oses=config.oses,
            arches=config.arches,
            exact_repository=config.exact_repository,
            accept_repository_identity=config.accept_repository_identity,
            require_tag_identity=config.require_tag_identity,
            pull_by=config.pull_by or "tag",
            require_index_signature=config.require_index_signature,
            all_instances=config.all_instances,
            signature_format=config.signature_format,
        )
        unchecked = Unchecked()

        async def work(client: RegistryClient, interrupts: Interrupts) -> Summary:
            validator = _validator(client, keys, context, options)
            return await run_list(
                unchecked.counting(validator.validate_entry),
                config,
                prepared,
                verb="Validating",
                interrupts=interrupts,
                client=client,
                unexpanded=unchecked.add,
            )

        summary = asyncio.run(run_with_client(config, work))
    failed_path = prepared.failed_path
    code = exit_code(summary, unchecked=unchecked.count)
    retry = could_not_check_advice(config, failed_path) if code == COULD_NOT_CHECK else None
    resign = resign_command(config, failed_path, all_instances=config.all_instances)
    return ValidateResult(summary, failed_path, code, resign, retry)


def _validator(
    client: RegistryClient,
    keys: list[PublicKey],
    context: PolicyContext | None,
    options: ValidateOptions,
) -> Validator:
    if context is not None:
        return PolicyValidator(client, context, options)
    return Validator(client, keys, options)


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
    failing = [record for record in details if not record.get("passed")]
    not_checked = LABELS[UNCHECKED]
    return not failing or any(record.get("verdict") != not_checked for record in failing)


def _policy_context(config: ValidateConfig) -> PolicyContext | None:
    """The policy and registries.d to evaluate (None: no --policy, today's checks). Read and
    checked here, before the list or the network: a policy podman refuses exits 2."""
    from hangar.policy.config import load_policy
    from hangar.policy.registries import (
        default_policy_path,
        default_registries_d,
        load_registries_d,
    )

    if not config.uses_policy:
        return None
    path = config.policy or default_policy_path()
    registries_d = config.registries_d or default_registries_d()
    policy = load_policy(path)
    context = PolicyContext(policy, load_registries_d(registries_d))
    output.info(f"Policy {path}, registries.d {registries_d}")
    for warning in policy.newer_fields:
        output.warn(f"{path}: {warning}")
    return context
