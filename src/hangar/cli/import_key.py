"""`hangar import-key-pair`: a PEM private key into the sigstore encrypted format (PREFIX.key,
PREFIX.pub), as `cosign import-key-pair` does."""

from __future__ import annotations

import click

from hangar.cli._help import GoCommand

EXAMPLES = """\\b
Examples:
# Import an openssl key: asks for the new passphrase twice, writes imported.key/.pub.
hangar import-key-pair -k key.pem -p imported

\\b
# An encrypted PKCS#8 key, in a script.
hangar import-key-pair -k key.pem --key-passphrase-file old.txt --passphrase-file new.txt -y
"""


@click.command(
    "import-key-pair",
    cls=GoCommand,
    epilog=EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "-k", "--key", "key", required=True, metavar="FILE", help="the PEM private key to import"
)
@click.option(
    "-p",
    "--output-key-prefix",
    "--prefix",
    "prefix",
    default="import-cosign",
    show_default=True,
    metavar="PREFIX",
    help="write PREFIX.key and PREFIX.pub",
)
@click.option(
    "--key-passphrase-file",
    metavar="FILE",
    help="the passphrase an ENCRYPTED PRIVATE KEY (PKCS#8) was encrypted with; otherwise asked "
    "on the terminal",
)
@click.option(
    "--passphrase-file",
    metavar="FILE",
    help="the new key's passphrase; otherwise $COSIGN_PASSWORD when set, otherwise asked twice",
)
@click.option(
    "-y", "--auto-yes/--no-auto-yes", default=False, help="overwrite existing files without asking"
)
def import_key_pair(
    key: str,
    prefix: str,
    key_passphrase_file: str | None,
    passphrase_file: str | None,
    auto_yes: bool,
) -> None:
    """Import a PEM private key (PKCS#1, PKCS#8, SEC1 or encrypted PKCS#8) as a sigstore key
    pair: PREFIX.key (0600, encrypted as cosign writes it) and PREFIX.pub."""
    from hangar.cli.keys import confirm_overwrite, target_paths
    from hangar.keys.files import read_key_file
    from hangar.keys.importing import import_key
    from hangar.keys.pairfiles import write_key_pair
    from hangar.keys.passphrase import read_key_passphrase, read_new_passphrase

    key_path, pub_path = target_paths(prefix)
    pem = read_key_file(key, "private key")
    confirm_overwrite([key_path, pub_path], auto_yes)

    def source_passphrase() -> bytes:
        return read_key_passphrase(key_passphrase_file, key_path=key, flag="--key-passphrase-file")

    private_pem, public_pem = import_key(
        pem, key, source_passphrase, lambda: read_new_passphrase(passphrase_file)
    )
    write_key_pair(key_path, private_pem, pub_path, public_pem)
