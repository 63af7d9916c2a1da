"""`hangar generate-sigstore-key`: a new key pair, PREFIX.key (encrypted) and PREFIX.pub.

The crypto modules are imported inside the command so that `hangar --help` stays fast.
"""

from __future__ import annotations

import os

import click

from hangar import output
from hangar.cli._help import GoCommand
from hangar.errors import KeyFileError
from hangar.keys.pairfiles import PUBLIC_MODE, write_files, write_key_pair

EXAMPLES = """\b
Examples:
# Ask for the passphrase twice on the terminal, write sigstore.key and sigstore.pub.
hangar generate-sigstore-key

\b
# In a script: read the passphrase from a file, overwrite existing files.
hangar generate-sigstore-key --prefix release --passphrase-file ./passphrase.txt -y
"""


@click.command(
    "generate-sigstore-key",
    cls=GoCommand,
    epilog=EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "-p",
    "--prefix",
    default="sigstore",
    show_default=True,
    metavar="PREFIX",
    help="write the key pair to PREFIX.key and PREFIX.pub",
)
@click.option(
    "--passphrase-file",
    metavar="FILE",
    help="read the passphrase from FILE (surrounding white space trimmed; a warning says when "
    "podman/skopeo, which read the first line as written, would read another one); otherwise "
    "$COSIGN_PASSWORD when set, otherwise it is asked twice on the terminal",
)
@click.option(
    "-y",
    "--auto-yes/--no-auto-yes",
    default=False,
    help="overwrite existing PREFIX.key / PREFIX.pub without asking",
)
@click.option(
    "--pkcs11",
    "pkcs11_uri",
    metavar="URI",
    help="make the key pair inside this PKCS#11 token (pkcs11:token=T;object=LABEL?...): the "
    "private key never leaves it; only PREFIX.pub is written",
)
def generate_sigstore_key(
    prefix: str, passphrase_file: str | None, auto_yes: bool, pkcs11_uri: str | None
) -> None:
    """Generate a sigstore key pair (PREFIX.key, PREFIX.pub).

    The private key is ECDSA P-256, encrypted with the passphrase as cosign and skopeo write
    it (ENCRYPTED COSIGN PRIVATE KEY, scrypt + NaCl secretbox); cosign, skopeo, podman and
    hangar sign all read it. PREFIX.key gets mode 0600, PREFIX.pub 0644.

    With --pkcs11, the P-256 pair is made in the token (sensitive, never extractable) and only
    PREFIX.pub is written; sign with the URI it prints.
    """
    if pkcs11_uri is not None:
        _generate_in_token(pkcs11_uri, prefix, passphrase_file, auto_yes)
        return
    from hangar.keys.passphrase import read_new_passphrase
    from hangar.sigstore.encrypted_key import generate_key_pair

    key_path, pub_path = target_paths(prefix)
    confirm_overwrite([key_path, pub_path], auto_yes)
    secret = read_new_passphrase(passphrase_file)
    private_pem, public_pem = generate_key_pair(secret)
    write_key_pair(key_path, private_pem, pub_path, public_pem)


def _generate_in_token(uri: str, prefix: str, passphrase_file: str | None, auto_yes: bool) -> None:
    from hangar.keys.hsm.admin import generate_key_pair

    if passphrase_file is not None:
        raise click.UsageError("--passphrase-file is for key files: a token key has a PIN")
    _, pub_path = target_paths(prefix)
    confirm_overwrite([pub_path], auto_yes)
    public, key_uri = generate_key_pair(uri)
    write_files([(pub_path, public.pem(), PUBLIC_MODE)])
    output.info(f"Key pair made in the token; sign with -k {key_uri!r} (add the PIN source)")
    output.info(f"Public key written to {pub_path}")


def target_paths(prefix: str) -> tuple[str, str]:
    if not prefix or not os.path.basename(prefix):
        raise click.UsageError(f'invalid --prefix "{prefix}": it must end in a file name')
    directory = os.path.dirname(prefix) or "."
    if not os.path.isdir(directory):
        raise KeyFileError(
            f"cannot write {prefix}.key: directory {directory} does not exist",
            hint="create it first, or choose another --prefix",
        )
    return f"{prefix}.key", f"{prefix}.pub"


def confirm_overwrite(paths: list[str], auto_yes: bool) -> None:
    """Ask before replacing a key pair: losing a private key loses every signature's key."""
    from hangar.keys.passphrase import stdin_is_terminal

    existing = [path for path in paths if os.path.lexists(path)]
    for path in existing:
        if os.path.isdir(path):
            raise KeyFileError(f"{path} is a directory", hint="choose another --prefix")
    if not existing or auto_yes:
        return
    names = " and ".join(existing)
    verb = "exists" if len(existing) == 1 else "exist"
    if not stdin_is_terminal():
        raise KeyFileError(
            f"{names} already {verb}; not overwriting without confirmation",
            hint="pass -y to overwrite, or choose another --prefix",
        )
    if not click.confirm(f"{names} already {verb}. Overwrite?", default=False, err=True):
        raise KeyFileError(
            f"kept the existing {names}; no key written", hint="choose another --prefix"
        )
