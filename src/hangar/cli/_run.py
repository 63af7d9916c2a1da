"""What the list commands (`sign`, `sign validate`, `sign remove`) share: reading the list,
logins, running, the summary and the exit code. Each takes the command's checked config
(cli/_config.py)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hangar import output
from hangar.cli._args import split_list
from hangar.cli._config import DEFAULT_ARCH, DEFAULT_OS, RunConfig
from hangar.cli._outputs import open_outputs
from hangar.imagelist import ListEntry, ListSource, iter_image_list, open_image_list
from hangar.runner.files import FailedList, Report
from hangar.runner.interrupts import SIGNAL_EXIT_CODES, Interrupts
from hangar.runner.jobs import Finalizer, Runner, RunOptions, Worker
from hangar.runner.progress import Summary

if TYPE_CHECKING:
    from hangar.registry.client import RegistryClient

PROGRESS_INTERVAL = 5.0


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
    """What a list command prepares before any work: the list (read once), its size and
    registries, and the output files, checked and opened (`-o`, `--report`)."""

    source: ListSource
    total: int
    registries: dict[str, str]
    failed: FailedList
    report: Report
    failed_path: Path


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
    # No secret is ever a flag of sign or validate (passphrases come from files), so the
    # arguments can be recorded as given.
    report.describe(command=command, arguments=sys.argv[1:], imageList=config.file)
    try:
        total, registries = _scan_list(source, config.registry, config.project)
        actual = failed_out.destination.given  # -o, or the file beside it (see _outputs)
        yield ListRun(source, total, registries, failed, report, actual)
    finally:
        # After a run these are no-ops (the runner committed them); before, they undo.
        failed.discard()
        report.discard()


def _scan_list(
    source: ListSource, registry: str | None, project: str | None
) -> tuple[int, dict[str, str]]:
    """One streaming pass before the run: the number of lines to process (for the ETA) and one
    repository per registry (for the login check). File errors surface here, before any network.
    """
    total = 0
    registries: dict[str, str] = {}
    for entry in iter_image_list(source, registry=registry, project=project):
        total += 1
        if entry.reference is not None:
            registries.setdefault(entry.reference.registry, entry.reference.repository)
    return total, registries


async def ensure_logins(client, registries: dict[str, str], interrupts: Interrupts) -> None:
    """Prompt for credentials where a registry needs them and none are stored (as the seed's
    tool does); elsewhere warn once, and each image fails with a `hangar login` hint."""
    from hangar.registry.errors import RegistryError
    from hangar.registry.logins import store_credentials

    for registry, repository in registries.items():
        try:
            needs_login = await client.requires_credentials(registry, repository)
        except RegistryError as exc:
            # Unreachable, TLS, 5xx: every image of this registry fails with this error in the
            # run, lands in the failed file, and the other registries still get signed.
            output.debug(f"login check of registry {registry} failed: {exc}")
            continue
        if not needs_login:
            continue
        if not sys.stdin.isatty():
            output.warn(
                f"registry {registry} requires credentials and none are stored: "
                f"run `hangar login {registry}` (or pass --skip-login in scripts)"
            )
            continue
        output.info(f"registry {registry} requires login")
        with interrupts.paused():
            username = click.prompt(f"Username for {registry}")
            password = click.prompt(f"Password for {registry}", hide_input=True)
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
    """Stream the list of `--file` through `worker`, `config.jobs` at a time (with --all-tags,
    the list expanded first through `client`; `unexpanded` is told how many lines could not
    be: they fail without reaching `worker`)."""
    jobs = config.jobs
    entries: Iterable[ListEntry] = iter_image_list(
        prepared.source, registry=config.registry, project=config.project
    )
    total = prepared.total
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
    )
    output.info(f"{verb} images of {prepared.source} with {jobs} worker(s)")
    return await Runner(worker, options).run(entries, finalize=finalize)


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


def images(count: int) -> str:
    """`1 image`, `2 images`."""
    return f"{count} image" if count == 1 else f"{count} images"


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


def print_summary(
    summary: Summary,
    verb: str,
    noun: str,
    failed_path: Path,
    *,
    resign: str | None = None,
    retry: str | None = None,
    dry_run: bool = False,
) -> None:
    """The summary line and what to do next. `resign` (validate): the `hangar sign` that
    re-signs the failed lines; `retry` (validate): the command that checks them again, the
    advice when no failed line got a verdict (exit 3: access, not signatures)."""
    counts = summary.counts
    rate = summary.signatures / summary.elapsed if summary.elapsed > 0 else 0.0
    if verb == "sign":
        parts = [
            f"{counts.get('signed', 0)} signed",
            f"{counts.get('already-signed', 0)} already signed",
        ]
        tail = f"{summary.signatures} signatures written"
    elif verb == "remove":
        done = "would remove" if dry_run else "removed"
        parts = [
            f"{counts.get('removed', 0)} {done}",
            f"{counts.get('nothing-to-remove', 0)} nothing to remove",
        ]
        tail = (
            f"{summary.signatures} signatures would be removed (dry run: nothing was removed)"
            if dry_run
            else f"{summary.signatures} signatures removed"
        )
    else:
        parts = [f"{counts.get('passed', 0)} passed"]
        tail = f"{summary.signatures} digests verified"
    parts += [
        f"{counts.get('skipped', 0)} skipped for platform",
        f"{counts.get('failed', 0)} failed",
    ]
    if summary.not_started:
        parts.append(f"{summary.not_started} not started")
    if counts.get("mirror-format"):
        parts.append(f"{counts['mirror-format']} mirror-format line(s) skipped")
    line = (
        f"Summary: {images(summary.total)}: {', '.join(parts)}; {tail} in "
        f"{summary.elapsed:.1f}s ({rate:.1f} {noun}/s)"
    )
    output.info(line, always=True)
    if summary.fatal:
        output.error(f"the run stopped: {summary.fatal}")
    unfinished = summary.failed + summary.not_started
    if unfinished:
        if verb != "validate":
            advice = f"run again with -f {failed_path} to retry just those"
        elif retry is not None:
            advice = retry
        else:
            advice = (
                f"re-sign them with `{resign or f'hangar sign -f {failed_path} -k KEY'}`, "
                "then validate again"
            )
        output.error(f"{images(unfinished)} not done; their lines are in {failed_path} ({advice})")
    if summary.interrupted:
        output.warn("the run was interrupted; unfinished lines are in the failed file")
    if summary.only_skipped_for_platform:
        have = ", ".join(sorted(summary.platforms_seen)) or "none that can be read"
        output.error(
            f"nothing was {'signed' if verb == 'sign' else 'validated'}: no image of the list "
            f"has a platform matching --os/--arch; the images have: {have} "
            "(pass --os/--arch for the platforms to use)"
        )


# `sign validate`: nothing was found not accepted, but some line could not be checked.
COULD_NOT_CHECK = 3


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
