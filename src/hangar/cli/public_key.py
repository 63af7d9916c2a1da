"""`hangar public-key`: the public key PEM of a key file or a key URI (as `cosign public-key`)."""

from __future__ import annotations

import click

from hangar import output
from hangar.cli._help import GoCommand

EXAMPLES = """\\b
Examples:
# The public key of a sigstore private key file (asks for its passphrase).
hangar public-key -k sigstore.key

\\b
# The public key of a key in an HSM, written to release.pub.
export COSIGN_PKCS11_MODULE_PATH=/usr/lib/softhsm/libsofthsm2.so
hangar public-key -k "pkcs11:token=signing;object=release" --outfile release.pub
"""


@click.command(
    "public-key",
    cls=GoCommand,
    epilog=EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "-k",
    "--key",
    "--sigstore-key",
    "key",
    required=True,
    metavar="KEY",
    help="private key file, .pub file, or PKCS#11 URI (pkcs11:token=...;object=...)",
)
@click.option(
    "--sigstore-passphrase-file",
    "--passphrase-file",
    "passphrase_file",
    metavar="FILE",
    help="read the passphrase of a private key file from FILE",
)
@click.option("--outfile", metavar="FILE", help="write the PEM to FILE instead of stdout")
def public_key(key: str, passphrase_file: str | None, outfile: str | None) -> None:
    """Print the public key (PEM PUBLIC KEY) of a key file or a key URI.

    Give it to `hangar sign validate -p`, podman's policy.json (keyPath) or `cosign verify
    --key`. For a key in a token, the public key is read from the token's attributes.
    """
    from hangar.keys.backends import public_key_of
    from hangar.keys.pairfiles import PUBLIC_MODE, write_files

    pem = public_key_of(key, passphrase_file).pem()
    if outfile is None:
        click.echo(pem.decode("ascii"), nl=False)
        return
    write_files([(outfile, pem, PUBLIC_MODE)])
    output.info(f"Public key written to {outfile}")
