"""`hangar sign remove`: take signatures away from every image of a list (key rotation)."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

import click

from hangar import output
from hangar.cli._args import list_options
from hangar.cli._config import RemoveConfig
from hangar.cli._help import GoCommand
from hangar.cli._run import (
    ListRun,
    ensure_logins,
    exit_code,
    prepare_run,
    print_summary,
    registry_client,
    run_list,
)

if TYPE_CHECKING:
    from hangar.operations.removal import RemoveOptions
    from hangar.runner.progress import Summary

EXAMPLES = """\
# Remove the signatures made with an old key, after signing again with the new one.
hangar sign remove -f IMAGE_LIST.txt -p OLD.pub --dry-run
hangar sign remove -f IMAGE_LIST.txt -p OLD.pub
"""


@click.command(
    "remove",
    cls=GoCommand,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Remove signatures (of a key, unverified ones, or all) from the images of a list",
    short_help="Remove signatures (of a key, unverified ones, or all) from the images",
    usage_lines=["-f IMAGE_LIST.txt -p OLD.pub [flags]"],
    examples=EXAMPLES,
)
@list_options(verb="remove")
@click.option(
    "-p",
    "--sigstore-pubkey",
    "pubkeys",
    multiple=True,
    metavar="FILE",
    help="remove the signatures that verify with this public key; repeatable",
)
@click.option(
    "--unverified",
    is_flag=True,
    help="remove the signatures that verify with none of the --keep-pubkey keys",
)
@click.option(
    "--keep-pubkey",
    "keep_pubkeys",
    multiple=True,
    metavar="FILE",
    help="with --unverified: a public key whose signatures stay; repeatable",
)
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="remove every signature layer (other layers, such as attestations, stay)",
)
@click.option(
    "--dry-run", is_flag=True, help="print what would be removed, per digest; write nothing"
)
@click.option(
    "--skip-login/--no-skip-login",
    default=False,
    help="skip check the registry is logged in (used in shell script)",
)
def remove(**flags: Any) -> None:
    """Remove signatures from the `.sig` tags of the images of a list.

    Only signature layers that the flags select are removed, even while other signers write
    to the same tags; when none remain, the tag is deleted. Failed lines go to the failed
    file; the exit code is non-zero.
    """
    sys.exit(_remove(RemoveConfig.from_flags(flags)))


def _remove(config: RemoveConfig) -> int:
    from hangar.keys.files import load_public_key
    from hangar.operations.removal import RemovalRule, RemoveOptions

    output.set_quiet(config.quiet)
    rule = RemovalRule(
        remove_keys=tuple(load_public_key(path) for path in config.pubkeys),
        keep_keys=tuple(load_public_key(path) for path in config.keep_pubkeys),
        unverified=config.unverified,
        everything=config.everything,
    )
    config.announce()
    with prepare_run(config) as prepared:
        options = RemoveOptions(
            oses=config.oses, arches=config.arches, rule=rule, dry_run=config.dry_run
        )
        summary = asyncio.run(_remove_run(options, prepared, config))
    print_summary(summary, "remove", "signatures", prepared.failed_path, dry_run=config.dry_run)
    return exit_code(summary)


async def _remove_run(options: RemoveOptions, prepared: ListRun, config: RemoveConfig) -> Summary:
    from hangar.operations.removal import Remover
    from hangar.runner.interrupts import Interrupts

    jobs = config.jobs
    async with Interrupts() as interrupts, registry_client(config) as client:
        if not config.skip_login and not options.dry_run:
            await interrupts.guard(ensure_logins(client, prepared.registries, interrupts))
        remover = Remover(client, options)
        # The final check's failures are failed lines too: they go to the failed file.
        summary = await run_list(
            remover.remove_entry,
            config,
            prepared,
            verb="Checking" if options.dry_run else "Removing",
            interrupts=interrupts,
            finalize=lambda: remover.confirm(concurrency=jobs),
            client=client,
        )
        client.report_requests()
        return summary
