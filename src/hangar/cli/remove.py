"""`hangar sign remove`: take signatures away from every image of a list (key rotation)."""

from __future__ import annotations

import asyncio
import sys

import click

from hangar.cli._args import list_options
from hangar.cli._help import GoCommand
from hangar.cli._run import (
    checked_jobs,
    ensure_logins,
    exit_code,
    platform_options,
    prepare_run,
    print_summary,
    registry_client,
    require,
    run_list,
)

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
def remove(**flags) -> None:
    """Remove signatures from the `.sig` tags of the images of a list.

    Only signature layers that the flags select are removed, even while other signers write
    to the same tags; when none remain, the tag is deleted. Failed lines go to the failed
    file; the exit code is non-zero.
    """
    sys.exit(_remove(**flags))


def _remove(**flags) -> int:
    from hangar.keyfiles import load_public_key
    from hangar.removal import RemoveOptions

    require(flags["file"], "-f/--file", "the image list to remove signatures from")
    rule = _rule(flags, load_public_key)
    jobs = checked_jobs(flags["jobs"])
    oses, arches = platform_options(flags)
    inputs = [*flags["pubkeys"], *flags["keep_pubkeys"], flags["authfile"]]
    with prepare_run(flags, "hangar sign remove", inputs) as prepared:
        options = RemoveOptions(oses=oses, arches=arches, rule=rule, dry_run=flags["dry_run"])
        summary = asyncio.run(_remove_run(options, jobs, prepared, flags))
    print_summary(summary, "remove", "signatures", prepared.failed_path)
    return exit_code(summary)


def _rule(flags, load_public_key):
    from hangar.removal import RemovalRule

    pubkeys, keep = flags["pubkeys"], flags["keep_pubkeys"]
    if flags["everything"] and (pubkeys or flags["unverified"] or keep):
        raise click.UsageError("--all removes every signature: give it alone, without -p or keys")
    if keep and not flags["unverified"]:
        raise click.UsageError("--keep-pubkey goes with --unverified")
    if not (pubkeys or flags["unverified"] or flags["everything"]):
        raise click.UsageError(
            "say what to remove: -p/--sigstore-pubkey FILE, --unverified --keep-pubkey FILE, "
            "or --all"
        )
    if flags["unverified"] and not keep:
        raise click.UsageError(
            "--unverified needs --keep-pubkey FILE: the keys whose signatures stay"
        )
    return RemovalRule(
        remove_keys=tuple(load_public_key(path) for path in pubkeys),
        keep_keys=tuple(load_public_key(path) for path in keep),
        unverified=flags["unverified"],
        everything=flags["everything"],
    )


async def _remove_run(options, jobs, prepared, flags):
    from hangar.interrupts import Interrupts
    from hangar.removal import Remover

    async with Interrupts() as interrupts, registry_client(flags, jobs) as client:
        if not flags["skip_login"] and not options.dry_run:
            await interrupts.guard(ensure_logins(client, prepared.registries, interrupts))
        remover = Remover(client, options)
        # The final check's failures are failed lines too: they go to the failed file.
        summary = await run_list(
            remover.remove_entry,
            flags,
            prepared,
            jobs=jobs,
            verb="Checking" if options.dry_run else "Removing",
            interrupts=interrupts,
            finalize=lambda: remover.confirm(concurrency=jobs),
            client=client,
        )
        client.report_requests()
        return summary
