"""`hangar sign`: sign every image of a list (and `hangar sign validate`, its subcommand)."""

from __future__ import annotations

import sys
from typing import Any

import click

from hangar import api, output
from hangar.cli._args import list_options
from hangar.cli._config import sign_config
from hangar.cli._help import GoGroup
from hangar.cli._summary import credentials_prompt, print_summary

EXAMPLES = """\
# Sign the images with sigstore private key file.
hangar sign \\
        --file IMAGE_LIST.txt \\
        --sigstore-key SIGSTORE.key \\
        --sigstore-passphrase-file "/path/to/passphrase/file" \\
        --arch amd64,arm64 \\
        --os linux

# Sign with a key in an HSM: a PKCS#11 URI, the PIN read from a file.
COSIGN_PKCS11_MODULE_PATH=/usr/lib/softhsm/libsofthsm2.so hangar sign \\
        --file IMAGE_LIST.txt \\
        --sigstore-key "pkcs11:token=signing;object=release?pin-source=file:/path/to/pin"
"""


@click.group(
    cls=GoGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Sign multiple container images with sigstore private key",
    usage_lines=["-f IMAGE_LIST.txt --key SIGSTORE.key [flags]", "[command]"],
    examples=EXAMPLES,
)
@list_options(verb="sign")
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
    "--sign-attestations/--no-sign-attestations",
    default=False,
    show_default=True,
    help="also sign the buildx attestation manifests of the selected platforms (skopeo copy "
    "--all and mirroring tools check every instance of an index)",
)
@click.option(
    "--signature-format",
    type=click.Choice(["legacy", "bundle", "both"]),
    default="legacy",
    show_default=True,
    help="legacy: the .sig tag (podman, CRI-O, skopeo, cosign, Kyverno type Cosign); bundle: a "
    "Sigstore bundle as cosign v3 writes it (cosign v3+, Kyverno type SigstoreBundle); both",
)
@click.option(
    "--dry-run/--no-dry-run",
    default=False,
    help="list the images that would be signed (--all-tags expanded) and write nothing",
)
@click.option(
    "--force/--no-force",
    default=False,
    help="add a new signature even where this key already signed",
)
@click.pass_context
def sign(ctx: click.Context, **flags: Any) -> None:
    if ctx.invoked_subcommand is not None:
        return
    sys.exit(_sign(flags))


def _sign(flags: dict[str, Any]) -> int:
    config = sign_config(flags)
    if config.dry_run:
        return _dry_run(config)
    result = api.sign(config, prompt=credentials_prompt())
    print_summary(result, "sign", "signatures")
    return result.exit_code


def _dry_run(config: api.SignConfig) -> int:
    """One reference a line on stdout for each image that would be signed; no key is read,
    nothing is written. Each line is resolved as a real run would (its manifest and
    platforms read): a line that would fail (a bad reference, a missing image, a registry
    that refuses, tags that cannot be listed) is an error on stderr, one with no matching
    platform is said to be skipped; the exit code is what the real run's would be."""
    images = bad = skipped = digests = 0
    for planned in api.plan_signing(config):
        entry, result = planned.entry, planned.result
        if entry.unsupported is not None:
            continue
        if result is None:
            output.error(f"{entry.text}: line {entry.line_number}: {planned.error}")
            bad += 1
        elif result.status == "skipped":
            output.info(
                f"{entry.text}: line {entry.line_number}: {result.message}, would be skipped"
            )
            skipped += 1
        else:
            click.echo(str(entry.reference))
            images += 1
            digests += result.signatures
    output.info(
        f"Dry run: {images} image(s) would be signed ({digests} digest(s)), {skipped} skipped "
        f"for platform, {bad} line(s) would fail; nothing was signed or written",
        always=True,
    )
    return 1 if bad or (skipped and not images) else 0


def _register_validate() -> None:
    from hangar.cli.consumer import policy
    from hangar.cli.remove import remove
    from hangar.cli.validate import validate

    sign.add_command(validate)
    sign.add_command(remove)
    sign.add_command(policy)


_register_validate()
