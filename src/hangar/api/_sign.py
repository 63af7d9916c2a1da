"""Sign every image of a list: `hangar sign` as a function."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hangar import output
from hangar.api.config import SignConfig
from hangar.api.run import (
    CredentialsPrompt,
    ListRun,
    RunResult,
    ensure_logins,
    exit_code,
    key_record,
    prepare_run,
    registry_client,
    run_list,
    run_with_client,
)
from hangar.errors import HangarError
from hangar.imagelist import ListEntry, ReadList, open_image_list
from hangar.results import ImageResult
from hangar.runner.interrupts import Interrupts
from hangar.runner.progress import Summary
from hangar.sigstore.keys import SigningKey

if TYPE_CHECKING:
    # Imported when a run needs them (their import, aiohttp's above all, overlaps the key's
    # scrypt derivation: see _open_key).
    from hangar.operations.signing import SignOptions
    from hangar.registry.client import RegistryClient


def sign(config: SignConfig, *, prompt: CredentialsPrompt | None = None) -> RunResult:
    """Sign the list of `config.file`; `prompt` asks for credentials a registry needs (None:
    warn, and those images fail with a `hangar login` hint)."""
    from hangar.keys import backends

    if config.dry_run:
        raise ValueError("a dry run signs nothing: call plan_signing")
    assert config.key is not None  # required without dry_run (SignConfig)
    output.set_quiet(config.quiet)
    config.announce()
    with prepare_run(config) as prepared:
        # Open the key once (decrypt the file, or log in to the token), before any network
        # traffic; the report names a URI without its PIN.
        key = _open_key(config.key, config.passphrase_file)
        from hangar.operations.signing import SignOptions

        fingerprint = key.public_key().fingerprint
        prepared.report.describe(keys=[key_record(backends.describe(config.key), fingerprint)])
        options = SignOptions(
            oses=config.oses,
            arches=config.arches,
            identity_mode=config.signed_identity,
            sign_index=config.sign_index,
            force=config.force,
            sign_attestations=config.sign_attestations,
            signature_format=config.signature_format,
        )
        try:
            summary = asyncio.run(_sign_run(key, options, prepared, config, prompt))
        finally:
            backends.close(key)
    return RunResult(summary, prepared.failed_path, exit_code(summary))


def _open_key(spec: str, passphrase_file: str | None) -> SigningKey:
    """The signing key, opened while the modules a run needs are imported: scrypt releases
    the GIL, so the two overlap (a few tenths of a second of every run's start). Only with a
    passphrase file: a key that may prompt (or a token's login) is opened on this thread, so
    that Ctrl-C at a prompt never leaves a thread waiting on the terminal."""
    from hangar.keys import backends

    if passphrase_file is None or backends.is_uri(spec):
        return backends.open_signing_key(spec, passphrase_file)
    with ThreadPoolExecutor(1, thread_name_prefix="hangar-key") as pool:
        opening = pool.submit(backends.open_signing_key, spec, passphrase_file)
        import hangar.operations.signing  # noqa: F401

        return opening.result()


async def _sign_run(
    key: SigningKey,
    options: SignOptions,
    prepared: ListRun,
    config: SignConfig,
    prompt: CredentialsPrompt | None,
) -> Summary:
    from hangar.operations.signing import Signer

    async def work(client: RegistryClient, interrupts: Interrupts) -> Summary:
        if not config.skip_login:
            registries = prepared.entries.registries
            login = ensure_logins(client, registries, interrupts, prompt, config.timeout)
            await interrupts.guard(login)
        signer = Signer(client, key, options)
        # The final check's losses are failed lines too: they go to the failed file.
        return await run_list(
            signer.sign_entry,
            config,
            prepared,
            verb="Signing",
            interrupts=interrupts,
            finalize=lambda: signer.confirm(concurrency=config.jobs),
            client=client,
        )

    return await run_with_client(config, work)


@dataclass(frozen=True)
class PlannedLine:
    """One line of a dry run: the image it would sign (`result`: SIGNED with the digests as
    `details`, or SKIPPED for platform), or why the real run would fail it (`error`)."""

    entry: ListEntry
    result: ImageResult | None = None
    error: str | None = None


def plan_signing(config: SignConfig) -> list[PlannedLine]:
    """What `sign --dry-run` shows: each line (with --all-tags, each repository's tags
    listed) resolved as a real run would (its manifest and platforms read), -j at a time; no
    key is read and nothing is written."""
    output.set_quiet(config.quiet)
    config.announce()
    source = open_image_list(config.file)
    entries = ReadList(source, registry=config.registry, project=config.project)
    try:
        listed = list(entries)
    finally:
        entries.close()
    return asyncio.run(_plan(listed, config))


async def _plan(listed: list[ListEntry], config: SignConfig) -> list[PlannedLine]:
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

        async def one(entry: ListEntry) -> PlannedLine:
            if entry.reference is None:
                return PlannedLine(entry, error=entry.error)
            async with gate:
                try:
                    async with asyncio.timeout(config.timeout):
                        return PlannedLine(entry, await plan_entry(client, entry, options))
                except TimeoutError:
                    return PlannedLine(
                        entry, error=f"timed out after {config.timeout:g}s (--timeout)"
                    )
                except HangarError as exc:  # a failed line, worded as a real run words it
                    return PlannedLine(entry, error=str(exc))
                except Exception as exc:
                    message = f"unexpected error: {exc.__class__.__name__}: {exc}"
                    return PlannedLine(entry, error=message)

        return list(await asyncio.gather(*(one(entry) for entry in entries)))
