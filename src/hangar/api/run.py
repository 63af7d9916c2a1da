"""What the list runs (`sign`, `sign validate`, `sign remove`) share: the list read once, the
outputs opened, the login check, the run itself, the retry hint and the exit code. Each takes
the run's checked config (hangar.api.config)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hangar import output
from hangar.api.config import DEFAULT_ARCH, DEFAULT_OS, RunConfig, split_list
from hangar.api.outputs import open_outputs
from hangar.imagelist import ListEntry, ReadList, open_image_list
from hangar.keys.uri import redact_arguments
from hangar.runner.files import FailedList, Report
from hangar.runner.interrupts import SIGNAL_EXIT_CODES, Interrupts
from hangar.runner.jobs import Finalizer, Runner, RunOptions, Worker
from hangar.runner.progress import Summary

if TYPE_CHECKING:
    from hangar.registry.client import RegistryClient

PROGRESS_INTERVAL = 5.0
# `sign validate`: nothing was found not accepted, but some line could not be checked.
COULD_NOT_CHECK = 3

# Asked for a username and password when a registry needs them and none are stored, on a
# terminal only (the CLI prompts; a script passes None and gets a warning instead).
CredentialsPrompt = Callable[[str], tuple[str, str]]


@dataclass(frozen=True)
class RunResult:
    """What a list run did: the counts (and how it ended), where its failed lines are, and
    the exit code the CLI ends with (docs/errors.md)."""

    summary: Summary
    failed_path: Path
    exit_code: int


def progress_interval() -> float:
    """Seconds between `Progress:` lines when stderr is not a terminal (a CI log).
    HANGAR_PROGRESS_INTERVAL changes it; 0 turns the lines off."""
    text = os.environ.get("HANGAR_PROGRESS_INTERVAL", "")
    try:
        return max(float(text), 0.0) if text else PROGRESS_INTERVAL
    except ValueError:
        output.warn(f"HANGAR_PROGRESS_INTERVAL={text} is not a number of seconds: using 5")
        return PROGRESS_INTERVAL


def key_record(path: str, fingerprint: str) -> dict[str, str]:
    """A key as the report names it: the file given and the sha256 hex of its public key (DER),
    as `digests[].signatures[].key` names the key that verified."""
    return {"file": path, "fingerprint": fingerprint}


@dataclass
class ListRun:
    """What a list run prepares before any work: the list, read once, and its outputs, checked
    and opened (`-o`, `--report`), resolved into one object."""

    entries: ReadList
    failed: FailedList
    report: Report
    failed_path: Path  # -o, or the file beside it (see hangar.api.outputs)

    @property
    def source(self) -> object:
        return self.entries.source


@contextlib.contextmanager
def prepare_run(config: RunConfig) -> Iterator[ListRun]:
    """Open the list and the outputs, or fail with one line before any work. Whatever happens
    inside the block, no temp file is left behind and no output is half written."""
    command = config.command
    source = open_image_list(config.file)
    failed_out, report_out = open_outputs(
        config.failed,
        config.report,
        command=command,
        list_source=source,
        inputs=[Path(path) for path in config.inputs()],
    )
    failed, report = FailedList(failed_out, command), Report(report_out)
    # Passphrases come from files; a PKCS#11 URI's pin-value is recorded as ***.
    report.describe(
        command=command, arguments=redact_arguments(sys.argv[1:]), imageList=config.file
    )
    entries: ReadList | None = None
    try:
        entries = ReadList(source, registry=config.registry, project=config.project)
        yield ListRun(entries, failed, report, failed_out.destination.given)
    finally:
        # After a run these are no-ops (the runner committed them); before, they undo.
        failed.discard()
        report.discard()
        if entries is not None:
            entries.close()


async def ensure_logins(
    client: RegistryClient,
    registries: dict[str, str],
    interrupts: Interrupts,
    prompt: CredentialsPrompt | None,
    timeout: float | None = None,
) -> None:
    """Ask for credentials where a registry needs them and none are stored (as the seed's
    tool does); elsewhere warn once, and each image fails with a `hangar login` hint.
    `timeout` (--timeout) bounds each registry's check."""
    from hangar.registry.errors import RegistryError, RegistryTimeoutError
    from hangar.registry.logins import store_credentials

    for registry, repository in registries.items():
        try:
            needs_login = await client.requires_credentials(registry, repository, timeout=timeout)
        except RegistryTimeoutError as exc:
            output.warn(f"login check skipped: {exc}")
            continue
        except RegistryError as exc:
            # Unreachable, TLS, 5xx: every image of this registry fails with this error in the
            # run, lands in the failed file, and the other registries still get signed.
            output.debug(f"login check of registry {registry} failed: {exc}")
            continue
        if not needs_login:
            continue
        if prompt is None:
            output.warn(
                f"registry {registry} requires credentials and none are stored: "
                f"run `hangar login {registry}` (or pass --skip-login in scripts)"
            )
            continue
        output.info(f"registry {registry} requires login")
        with interrupts.paused():
            username, password = prompt(registry)
        await client.check_credentials(registry, username, password)
        path = store_credentials(registry, username, password)
        output.info(f"Login succeeded; credentials stored in {path}")


def registry_client(config: RunConfig, jobs: int | None = None) -> RegistryClient:
    """One pooled client for the whole run, sized for the number of workers."""
    from hangar.registry.client import RegistryClient

    connections = (config.jobs if jobs is None else jobs) * 4
    return RegistryClient(
        tls_verify=config.tls_verify, authfile=config.authfile, max_connections=connections
    )


async def run_list(
    worker: Worker,
    config: RunConfig,
    prepared: ListRun,
    *,
    verb: str,
    interrupts: Interrupts,
    finalize: Finalizer | None = None,
    client: RegistryClient | None = None,
    unexpanded: Callable[[int], None] | None = None,
) -> Summary:
    """Stream the list through `worker`, `config.jobs` at a time (with --all-tags, the list
    expanded first through `client`; `unexpanded` is told how many lines could not be: they
    fail without reaching `worker`)."""
    jobs = config.jobs
    entries: Iterable[ListEntry] = prepared.entries
    total = prepared.entries.total
    if config.all_tags and client is not None:
        from hangar.operations.alltags import expand_all_tags

        listed = list(entries)
        expanded = await expand_all_tags(listed, client)
        if unexpanded is not None:
            unexpanded(_errors(expanded) - _errors(listed))
        entries, total = expanded, len(expanded)
    options = RunOptions(
        progress_interval=progress_interval(),
        jobs=jobs,
        timeout=config.timeout,
        failed=prepared.failed,
        report=prepared.report,
        verb=verb,
        total=total,
        interrupts=interrupts,
        silence=client.silence if client is not None else None,
    )
    output.info(f"{verb} images of {prepared.source} with {jobs} worker(s)")
    return await Runner(worker, options).run(entries, finalize=finalize)


async def run_with_client(
    config: RunConfig, work: Callable[[RegistryClient, Interrupts], Awaitable[Summary]]
) -> Summary:
    """`work` under the run's signal handling and one pooled client; the request counts are
    logged (under --debug) when it ends."""
    async with Interrupts() as interrupts, registry_client(config) as client:
        summary = await work(client, interrupts)
        client.report_requests()
        return summary


def _errors(entries: list[ListEntry]) -> int:
    return sum(1 for entry in entries if entry.error is not None)


def resign_command(config: RunConfig, failed_path: Path, *, all_instances: bool = False) -> str:
    """The `hangar sign` that re-signs what a validate run failed: its list, and the flags of
    the validate run that decide which images and digests those lines mean."""
    words = ["hangar sign", f"-f {failed_path}", "-k KEY"]
    for flag, value in (("--registry", config.registry), ("--project", config.project)):
        if value:
            words.append(f"{flag} {value}")
    if all_instances:
        # validate --all-instances checked every instance, whatever --os/--arch: sign them
        # all (empty lists select every platform), attestation manifests included.
        words += ["--os ''", "--arch ''", "--sign-attestations"]
    else:
        for flag, given, default in (
            ("--arch", config.arch_given, DEFAULT_ARCH),
            ("--os", config.os_given, DEFAULT_OS),
        ):
            if (given or default) != default:
                words.append(f"{flag} {','.join(split_list(given))}")
    if config.all_tags:
        words.append("--all-tags")
    if not config.tls_verify:
        words.append("--tls-verify=false")
    return " ".join(words)


def revalidate_command(config: RunConfig, failed_path: Path) -> str:
    """The `hangar sign validate` that checks the failed lines again, with the flags that
    decide what was checked (the keys or policy are named by their flags, not repeated)."""
    words = ["hangar sign validate", f"-f {failed_path}", "..."]
    for flag, value in (("--registry", config.registry), ("--project", config.project)):
        if value:
            words.append(f"{flag} {value}")
    if not config.tls_verify:
        words.append("--tls-verify=false")
    return " ".join(words)


def could_not_check_advice(config: RunConfig, failed_path: Path) -> str:
    """Exit 3: nothing was found unsigned, the lines could not be checked. Re-signing would
    not help; access would."""
    return (
        "they could not be checked, not found unsigned: check that their registries can be "
        "reached, that the images exist, and the login (`hangar login REGISTRY`), then run "
        f"`{revalidate_command(config, failed_path)}` with the same keys or policy"
    )


def exit_code(summary: Summary, *, unchecked: int | None = None) -> int:
    """The exit code of a run (the table is in docs/errors.md). `unchecked`, given by
    `sign validate` only: how many failed lines got no verdict (the registry could not be
    reached or refused, a timeout, a requirement hangar cannot evaluate). When every failed
    line is one of them, the run could not check rather than found a bad image: 3, not 1.
    """
    if summary.output_closed or output.output_closed():
        return output.CLOSED_EXIT_CODE
    if summary.interrupted_by is not None:
        return SIGNAL_EXIT_CODES.get(summary.interrupted_by, 130)
    if summary.fatal or summary.not_started:
        return 1
    if summary.failed:
        if unchecked is not None and unchecked >= summary.failed:
            return COULD_NOT_CHECK
        return 1
    return 1 if summary.only_skipped_for_platform else 0
