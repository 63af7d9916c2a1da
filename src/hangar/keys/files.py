"""Sigstore key files on disk: read them with errors that name the file, warn when a private
key is readable by every user, and open the signing key with the passphrase policy of
hangar.keys.passphrase. The formats themselves are hangar.sigstore's (pure, over bytes).
"""

from __future__ import annotations

import os
from pathlib import Path

from hangar.errors import KeyFileArgumentError, KeyFileError
from hangar.keys import passphrase as passphrase_policy
from hangar.sigstore.encrypted_key import load_private_key_bytes, open_envelope, parse_envelope
from hangar.sigstore.keys import PrivateKey, PublicKey, load_public_key_bytes
from hangar.sigstore.pem import looks_public

# Key files are a few hundred bytes; a cap stops a mistyped path (an image tarball) early.
MAX_KEY_FILE_SIZE = 1024 * 1024


def load_private_key(path: str | os.PathLike[str], passphrase: bytes) -> PrivateKey:
    """Read and decrypt a private key file. KeyFileError on any failure."""
    pem = read_key_file(path, "private key")
    return load_private_key_bytes(pem, passphrase, source=str(path))


def read_signing_key(path: str | os.PathLike[str], passphrase_file: str | None) -> PrivateKey:
    """The signing key with the whole passphrase policy (see hangar.keys.passphrase): the file is
    checked first, then the passphrase is read, then the key is decrypted."""
    source = str(path)
    envelope = parse_envelope(read_key_file(path, "private key"), source)
    secret = passphrase_policy.read_passphrase(passphrase_file, key_path=source)
    return open_envelope(
        envelope, secret.candidates, source, origin=secret.origin, hint=secret.hint
    )


def load_public_key(path: str | os.PathLike[str]) -> PublicKey:
    """Read a public key file. KeyFileError on any failure."""
    return load_public_key_bytes(read_key_file(path, "public key"), source=str(path))


def read_key_file(path: str | os.PathLike[str], what: str) -> bytes:
    """The bytes of a key file, with errors that name it (`what` is "private key" or "public
    key"); warns on a world-readable private key."""
    where = f"{what} {path}"
    file = Path(path)
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE_SIZE + 1)
            # A .pub given to -k is an error of its own: no permissions advice before it.
            if what == "private key" and not looks_public(data):
                passphrase_policy.warn_if_world_readable(handle.fileno(), f"private key {path}")
    except FileNotFoundError:
        raise KeyFileArgumentError(
            f"{where}: the file does not exist", hint="check the path"
        ) from None
    except IsADirectoryError:
        raise KeyFileArgumentError(
            f"{where}: is a directory, not a file", hint="give the path of the key file"
        ) from None
    except OSError as exc:
        raise KeyFileArgumentError(
            f"{where}: cannot read it ({exc.strerror or exc})",
            hint="check the path and the file's permissions",
        ) from None
    if len(data) > MAX_KEY_FILE_SIZE:
        raise KeyFileError(
            f"{where}: the file is larger than {MAX_KEY_FILE_SIZE} bytes, not a key",
            hint="check the path",
        )
    return data
