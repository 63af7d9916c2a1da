"""What `sign` and `sign validate` share: reading the list, logins, running, the summary."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from hangar import output
from hangar.imagelist import iter_image_list
from hangar.jobs import Finalizer, Runner, RunOptions, Summary, Worker

if TYPE_CHECKING:
    from hangar.registry.client import RegistryClient

MAX_JOBS = 20


def checked_jobs(jobs: int) -> int:
    """The seed's rule: 1-20, anything else is a warning and 1."""
    if 1 <= jobs <= MAX_JOBS:
        return jobs
    output.warn(f"invalid --jobs {jobs}: must be between 1 and {MAX_JOBS}, using 1")
    return 1


def require(value: str | None, flag: str, what: str) -> str:
    if not value:
        raise click.UsageError(f"{flag} is required: {what}")
    return value


def scan_list(path: str, registry: str | None, project: str | None) -> tuple[int, dict[str, str]]:
    """One streaming pass before the run: the number of lines to process (for the ETA) and one
    repository per registry (for the login check). File errors surface here, before any network.
    """
    total = 0
    registries: dict[str, str] = {}
    for entry in iter_image_list(path, registry=registry, project=project):
        total += 1
        if entry.reference is not None:
            registries.setdefault(entry.reference.registry, entry.reference.repository)
    return total, registries


async def ensure_logins(client, registries: dict[str, str]) -> None:
    """Prompt for credentials where a registry needs them and none are stored (as the seed's
    tool does); elsewhere warn once, and each image fails with a `hangar login` hint."""
    from hangar.registry.credentials import store_credentials
    from hangar.registry.errors import RegistryError

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
    *,
    jobs: int,
    total: int,
    verb: str,
    finalize: Finalizer | None = None,
) -> Summary:
    """Stream the list of `--file` through `worker`, `jobs` at a time."""
    options = RunOptions(
        jobs=jobs,
        timeout=flags["timeout"],
        failed_path=Path(flags["failed"]),
        report_path=Path(flags["report"]) if flags["report"] else None,
        verb=verb,
        total=total,
    )
    output.info(f"{verb} images of {flags['file']} with {jobs} worker(s)")
    entries = iter_image_list(flags["file"], registry=flags["registry"], project=flags["project"])
    return await Runner(worker, options).run(entries, finalize=finalize)


def print_summary(summary: Summary, verb: str, noun: str, failed_path: Path) -> None:
    counts = summary.counts
    rate = summary.signatures / summary.elapsed if summary.elapsed > 0 else 0.0
    if verb == "sign":
        parts = [
            f"{counts.get('signed', 0)} signed",
            f"{counts.get('already-signed', 0)} already signed",
            f"{counts.get('skipped', 0)} skipped",
            f"{counts.get('failed', 0)} failed",
        ]
        tail = f"{summary.signatures} signatures written"
    elif verb == "remove":
        parts = [
            f"{counts.get('removed', 0)} removed",
            f"{counts.get('nothing-to-remove', 0)} nothing to remove",
            f"{counts.get('skipped', 0)} skipped",
            f"{counts.get('failed', 0)} failed",
        ]
        tail = f"{summary.signatures} signatures removed"
    else:
        parts = [
            f"{counts.get('passed', 0)} passed",
            f"{counts.get('skipped', 0)} skipped",
            f"{counts.get('failed', 0)} failed",
        ]
        tail = f"{summary.signatures} digests verified"
    output.info(
        f"Summary: {summary.total} images: {', '.join(parts)}; {tail} in "
        f"{summary.elapsed:.1f}s ({rate:.1f} {noun}/s)"
    )
    if summary.failed:
        output.error(
            f"{summary.failed} image(s) failed; their lines are in {failed_path} "
            f"(run again with -f {failed_path} to retry just those)"
        )
    if summary.interrupted:
        output.warn("the run was interrupted; unfinished lines are in the failed file")


def exit_code(summary: Summary) -> int:
    if summary.interrupted:
        return 130
    return 1 if summary.failed else 0
