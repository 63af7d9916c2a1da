"""Remove signatures from every image of a list: `hangar sign remove` as a function."""

from __future__ import annotations

import asyncio

from hangar import output
from hangar.api.config import RemoveConfig
from hangar.api.run import (
    CredentialsPrompt,
    RunResult,
    ensure_logins,
    exit_code,
    prepare_run,
    run_list,
    run_with_client,
)
from hangar.operations.removal import RemovalRule, RemoveOptions, Remover
from hangar.registry.client import RegistryClient
from hangar.runner.interrupts import Interrupts
from hangar.runner.progress import Summary


def remove(config: RemoveConfig, *, prompt: CredentialsPrompt | None = None) -> RunResult:
    """Remove the signatures `config` selects from the `.sig` tags of the list's images, even
    while other signers write to the same tags (with `dry_run`, only say what would go)."""
    from hangar.keys.backends import open_public_key

    output.set_quiet(config.quiet)
    rule = RemovalRule(
        remove_keys=tuple(open_public_key(spec) for spec in config.pubkeys),
        keep_keys=tuple(open_public_key(spec) for spec in config.keep_pubkeys),
        unverified=config.unverified,
        everything=config.everything,
    )
    config.announce()
    with prepare_run(config) as prepared:
        options = RemoveOptions(
            oses=config.oses, arches=config.arches, rule=rule, dry_run=config.dry_run
        )

        async def work(client: RegistryClient, interrupts: Interrupts) -> Summary:
            if not config.skip_login and not options.dry_run:
                registries = prepared.entries.registries
                login = ensure_logins(client, registries, interrupts, prompt, config.timeout)
                await interrupts.guard(login)
            remover = Remover(client, options)
            # The final check's failures are failed lines too: they go to the failed file.
            return await run_list(
                remover.remove_entry,
                config,
                prepared,
                verb="Checking" if options.dry_run else "Removing",
                interrupts=interrupts,
                finalize=lambda: remover.confirm(concurrency=config.jobs),
                client=client,
            )

        summary = asyncio.run(run_with_client(config, work))
    return RunResult(summary, prepared.failed_path, exit_code(summary))
