"""What `sign` and `sign validate` share: reading the list, logins, running, the summary."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hangar import output
from hangar.cli._args import split_list
from hangar.cli._outputs import open_outputs
from hangar.imagelist import ListEntry, ListSource, iter_image_list, open_image_list
from hangar.interrupts import SIGNAL_EXIT_CODES, Interrupts
from hangar.jobs import Finalizer, Runner, RunOptions, Worker
from hangar.progress import Summary
from hangar.run_files import FailedList, Report

if TYPE_CHECKING:
    from hangar.registry.client import RegistryClient

MAX_JOBS = 20


def checked_jobs(jobs: int) -> int:
    """The seed's range is 1-20. Above it, 20 (asking for more speed must never mean the
    slowest run); below it, 1. Either way a warning says so."""
    if 1 <= jobs <= MAX_JOBS:
        return jobs
    used = MAX_JOBS if jobs > MAX_JOBS else 1
    output.warn(f"--jobs {jobs} is outside 1-{MAX_JOBS}: using {used} worker(s)")
    return used


def platform_options(flags: dict[str, Any]) -> tuple[list[str], list[str]]:
    """--os/--arch as lists, in the spelling images use (`x86_64` is `amd64`); says so when a
    spelling was changed, so that nobody wonders why `--arch x86_64` signed amd64."""
    from hangar.manifest import normalize_arch, normalize_os

    oses = _normalized("--os", split_list(flags["os_"]), normalize_os)
    arches = _normalized("--arch", split_list(flags["arch"]), normalize_arch)
    return oses, arches


def _normalized(flag: str, values: list[str], normalize: Callable[[str], str]) -> list[str]:
    result: list[str] = []
    for value in values:
        name = normalize(value)
        if name != value:
            output.info(f"{flag} {value} is read as {name}, as containers/image names it")
        if name not in result:
            result.append(name)
    return result


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


def require(value: str | None, flag: str, what: str) -> str:
    if not value:
        raise click.UsageError(f"{flag} is required: {what}")
    return value


def report_path(value: str | None) -> Path | None:
    """`--report -` is stdout, where the logs never go (they are on stderr)."""
    if not value:
        return None
    return Path("/dev/stdout") if value == "-" else Path(value)


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
def prepare_run(flags: dict[str, Any], command: str, inputs: list[str | None]) -> Iterator[ListRun]:
    """Open the list and the outputs, or fail with one line before any work. Whatever happens
    inside the block, no temp file is left behind and no output is half written."""
    source = open_image_list(flags["file"])
    failed_out, report_out = open_outputs(
        Path(flags["failed"]),
        report_path(flags["report"]),
        command=command,
        list_source=source,
        inputs=[Path(path) for path in inputs if path],
    )
    failed, report = FailedList(failed_out, command), Report(report_out)
    # No secret is ever a flag of sign or validate (passphrases come from files), so the
    # arguments can be recorded as given.
    report.describe(command=command, arguments=sys.argv[1:], imageList=str(flags["file"]))
    try:
        total, registries = _scan_list(source, flags["registry"], flags["project"])
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


def registry_client(flags: dict[str, Any], jobs: int) -> RegistryClient:
    """One pooled client for the whole run, sized for the number of workers."""
    from hangar.registry.client import RegistryClient

    return RegistryClient(
        tls_verify=flags["tls_verify"], authfile=flags["authfile"], max_connections=jobs * 4
    )


async def run_list(
    worker: Worker,
    flags: dict[str, Any],
    prepared: ListRun,
    *,
    jobs: int,
    verb: str,
    interrupts: Interrupts,
    finalize: Finalizer | None = None,
    client: RegistryClient | None = None,
) -> Summary:
    """Stream the list of `--file` through `worker`, `jobs` at a time (with --all-tags, the
    list expanded first through `client`)."""
    entries: Iterable[ListEntry] = iter_image_list(
        prepared.source, registry=flags["registry"], project=flags["project"]
    )
    total = prepared.total
    if flags.get("all_tags") and client is not None:
        from hangar.alltags import expand_all_tags

        entries = await expand_all_tags(entries, client)
        total = len(entries)
    options = RunOptions(
        progress_interval=progress_interval(),
        jobs=jobs,
        timeout=flags["timeout"],
        failed=prepared.failed,
        report=prepared.report,
        verb=verb,
        total=total,
        interrupts=interrupts,
    )
    output.info(f"{verb} images of {prepared.source} with {jobs} worker(s)")
    return await Runner(worker, options).run(entries, finalize=finalize)


def resign_command(flags: dict[str, Any], failed_path: Path) -> str:
    """The `hangar sign` that re-signs what a validate run failed: its list, and the flags of
    the validate run that decide which images and digests those lines mean."""
    words = ["hangar sign", f"-f {failed_path}", "-k KEY"]
    for flag, name in (("--registry", "registry"), ("--project", "project")):
        if flags.get(name):
            words.append(f"{flag} {flags[name]}")
    for flag, name, default in (("--arch", "arch", ("amd64,arm64",)), ("--os", "os_", ("linux",))):
        if tuple(flags.get(name) or default) != default:
            words.append(f"{flag} {','.join(split_list(flags[name]))}")
    if flags.get("all_tags"):
        words.append("--all-tags")
    if flags.get("tls_verify") is False:
        words.append("--tls-verify=false")
    return " ".join(words)


def print_summary(
    summary: Summary, verb: str, noun: str, failed_path: Path, *, resign: str | None = None
) -> None:
    counts = summary.counts
    rate = summary.signatures / summary.elapsed if summary.elapsed > 0 else 0.0
    if verb == "sign":
        parts = [
            f"{counts.get('signed', 0)} signed",
            f"{counts.get('already-signed', 0)} already signed",
        ]
        tail = f"{summary.signatures} signatures written"
    elif verb == "remove":
        parts = [
            f"{counts.get('removed', 0)} removed",
            f"{counts.get('nothing-to-remove', 0)} nothing to remove",
        ]
        tail = f"{summary.signatures} signatures removed"
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
        f"Summary: {summary.total} images: {', '.join(parts)}; {tail} in "
        f"{summary.elapsed:.1f}s ({rate:.1f} {noun}/s)"
    )
    output.info(line, always=True)
    if summary.fatal:
        output.error(f"the run stopped: {summary.fatal}")
    unfinished = summary.failed + summary.not_started
    if unfinished:
        retry = (
            f"run again with -f {failed_path} to retry just those"
            if verb == "sign"
            else f"re-sign them with `{resign or f'hangar sign -f {failed_path} -k KEY'}`, "
            "then validate again"
        )
        output.error(f"{unfinished} image(s) not done; their lines are in {failed_path} ({retry})")
    if summary.interrupted:
        output.warn("the run was interrupted; unfinished lines are in the failed file")
    if summary.only_skipped_for_platform:
        have = ", ".join(sorted(summary.platforms_seen)) or "none that can be read"
        output.error(
            f"nothing was {'signed' if verb == 'sign' else 'validated'}: no image of the list "
            f"has a platform matching --os/--arch; the images have: {have} "
            "(pass --os/--arch for the platforms to use)"
        )


def exit_code(summary: Summary) -> int:
    if summary.output_closed or output.output_closed():
        return output.CLOSED_EXIT_CODE
    if summary.interrupted_by is not None:
        return SIGNAL_EXIT_CODES.get(summary.interrupted_by, 130)
    if summary.fatal or summary.failed or summary.not_started:
        return 1
    return 1 if summary.only_skipped_for_platform else 0
