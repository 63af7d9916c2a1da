"""`hangar sign`: sign every image of a list (and `hangar sign validate`, its subcommand)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from hangar.cli._args import list_options, split_list
from hangar.cli._run import (
    checked_jobs,
    ensure_logins,
    exit_code,
    print_summary,
    registry_client,
    require,
    run_list,
    scan_list,
)

EXAMPLES = """\b
Examples:
# Sign the images with sigstore private key file.
hangar sign \\
        --file IMAGE_LIST.txt \\
        --sigstore-key SIGSTORE.key \\
        --sigstore-passphrase-file "/path/to/passphrase/file" \\
        --arch amd64,arm64 \\
        --os linux

\b
Global Flags:
      --debug             enable debug output
      --insecure-policy   run Hangar without policy check (hangar reads no policy.json;
                          accepted for compatibility)
"""


@click.group(
    invoke_without_command=True,
    epilog=EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"]},
    short_help="Sign multiple container images with sigstore private key",
)
@list_options
@click.option(
    "-k", "--sigstore-key", "--key", "key", metavar="FILE", help="sigstore private key file"
)
@click.option(
    "--sigstore-passphrase-file",
    metavar="FILE",
    help="read the passphrase for the private key from file",
)
@click.option(
    "--skip-login/--no-skip-login",
    default=False,
    help="skip check the registry is logged in (used in shell script)",
)
@click.option(
    "--signed-identity",
    type=click.Choice(["tag", "digest", "repository"]),
    default="tag",
    show_default=True,
    help="docker-reference written in each signature: tag (REPO:TAG, accepted by podman/CRI-O "
    "by tag and by digest), digest (REPO@DIGEST, as hangar v1.8), repository (REPO, as cosign)",
)
@click.option(
    "--sign-index/--no-sign-index",
    default=True,
    show_default=True,
    help="also sign the index of a multi-arch image (cosign verify needs it)",
)
@click.option(
    "--force/--no-force",
    default=False,
    help="add a new signature even where this key already signed",
)
@click.pass_context
def sign(ctx: click.Context, **flags) -> None:
    """Sign multiple container images with sigstore private key.

    \b
    Usage:
      hangar sign -f IMAGE_LIST.txt --key SIGSTORE.key [flags]
      hangar sign [command]
    """
    if ctx.invoked_subcommand is not None:
        return
    sys.exit(_sign(**flags))


def _sign(**flags) -> int:
    from hangar.signing import SignOptions
    from hangar.sigstore.keys import read_signing_key

    file = require(flags["file"], "-f/--file", "the image list to sign")
    key_path = require(flags["key"], "-k/--sigstore-key", "the sigstore private key file")
    jobs = checked_jobs(flags["jobs"])
    total, registries = scan_list(file, flags["registry"], flags["project"])
    # Decrypt the key once, before any network traffic.
    key = read_signing_key(key_path, flags["sigstore_passphrase_file"])
    options = SignOptions(
        oses=split_list(flags["os_"]),
        arches=split_list(flags["arch"]),
        identity_mode=flags["signed_identity"],
        sign_index=flags["sign_index"],
        force=flags["force"],
    )
    summary = asyncio.run(_sign_run(key, options, jobs, total, registries, flags))
    print_summary(summary, "sign", "signatures", Path(flags["failed"]))
    return exit_code(summary)


async def _sign_run(key, options, jobs, total, registries, flags):
    from hangar.signing import Signer

    async with registry_client(flags, jobs) as client:
        if not flags["skip_login"]:
            await ensure_logins(client, registries)
        signer = Signer(client, key, options)
        # The final check's losses are failed lines too: they go to the failed file.
        summary = await run_list(
            signer.sign_entry,
            flags,
            jobs=jobs,
            total=total,
            verb="Signing",
            finalize=lambda: signer.confirm(concurrency=jobs),
        )
        client.report_requests()
        return summary


def _register_validate() -> None:
    from hangar.cli.remove import remove
    from hangar.cli.validate import validate

    sign.add_command(validate)
    sign.add_command(remove)


_register_validate()
