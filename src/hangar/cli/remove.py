"""`hangar sign remove`: take signatures away from every image of a list (key rotation)."""

from __future__ import annotations

import sys
from typing import Any

import click

from hangar import api
from hangar.cli._args import list_options
from hangar.cli._config import remove_config
from hangar.cli._help import GoCommand
from hangar.cli._summary import credentials_prompt, print_summary

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
    help="remove the signatures that verify with this public key (a file or pkcs11: URI); "
    "repeatable",
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
    sys.exit(_remove(flags))


def _remove(flags: dict[str, Any]) -> int:
    config = remove_config(flags)
    result = api.remove(config, prompt=credentials_prompt())
    print_summary(result, "remove", "signatures", dry_run=config.dry_run)
    return result.exit_code
