"""`hangar sign validate`: would the clusters accept these images?"""

from __future__ import annotations

import sys
from typing import Any

import click

from hangar import api
from hangar.cli._args import list_options
from hangar.cli._config import validate_config
from hangar.cli._help import GoCommand
from hangar.cli._summary import print_summary

EXAMPLES = """\
# Validate the signed images with sigstore public key file.
hangar sign validate \\
        --file IMAGE_LIST.txt \\
        --sigstore-pubkey SIGSTORE.pub \\
        --arch amd64,arm64 \\
        --os linux
"""


@click.command(
    "validate",
    cls=GoCommand,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Validate the signed images with sigstore public key",
    short_help="Validate the signed images with sigstore public key",
    usage_lines=["-f IMAGE_LIST.txt -p SIGSTORE.pub [flags]"],
    examples=EXAMPLES,
)
@list_options(verb="validate")
@click.option(
    "-p",
    "--sigstore-pubkey",
    "pubkeys",
    multiple=True,
    metavar="FILE",
    help="sigstore public key file or pkcs11: URI; repeat for key rotation (any one key is enough)",
)
@click.option(
    "--exact-repository",
    metavar="REPO",
    help="accept signatures whose identity names REPO (c/image exactRepository) instead of "
    "the default matchRepoDigestOrExact",
)
@click.option(
    "--accept-repository-identity/--no-accept-repository-identity",
    default=False,
    help="accept cosign's name-only identities (c/image matchRepository)",
)
@click.option(
    "--require-tag-identity/--no-require-tag-identity",
    default=False,
    help="each platform manifest must carry a signature naming the listed tag exactly "
    "(what podman/CRI-O need to pull by tag under the default policy)",
)
@click.option(
    "--pull-by",
    type=click.Choice(["tag", "digest"]),
    default=None,
    help="which pull of a line given by tag a PASS promises: tag (the default: podman pull "
    "IMAGE:TAG, which checks each platform manifest's signatures against the tag) or digest "
    "(only a pull by digest; a tag pull they would reject is then a warning)",
)
@click.option(
    "--require-index-signature/--no-require-index-signature",
    default=False,
    help="a multi-arch image's index must be signed too (what `cosign verify --key` needs "
    "for a tag)",
)
@click.option(
    "--all-instances/--no-all-instances",
    default=False,
    help="check every instance of a multi-arch image, attestation manifests included and "
    "whatever --os/--arch say (what `skopeo copy --all` and mirroring tools check)",
)
@click.option(
    "--policy",
    "policy",
    metavar="FILE",
    help="evaluate this containers policy.json for each image, as podman/CRI-O do when they "
    "pull it (by tag and by digest): ACCEPTED/REJECTED per platform; the keys come from it",
)
@click.option(
    "--registries-d",
    "registries_d",
    metavar="DIR",
    help="with --policy: the registries.d directory podman/CRI-O use (default: "
    "~/.config/containers/registries.d if it exists, else /etc/containers/registries.d)",
)
@click.option(
    "--signature-format",
    type=click.Choice(["legacy", "bundle", "both", "any"]),
    default="legacy",
    show_default=True,
    help="what must verify per digest: legacy (the .sig tag, as podman/CRI-O read it), bundle "
    "(a Sigstore bundle, as cosign v3 verify --key --insecure-ignore-tlog reads it), both, any",
)
@click.option(
    "--system-policy",
    is_flag=True,
    default=False,
    help="like --policy, with the policy and registries.d podman reads on this machine: "
    "~/.config/containers/policy.json if it exists, else /etc/containers/policy.json",
)
def validate(**flags: Any) -> None:
    # Prints `PASS: [image]` per image, and for a failure one line per failing digest with
    # the reason. Failed lines go to the failed file; the exit code is non-zero.
    sys.exit(_validate(flags))


def _validate(flags: dict[str, Any]) -> int:
    result = api.validate(validate_config(flags))
    print_summary(result, "validate", "digests", resign=result.resign, retry=result.retry)
    return result.exit_code
