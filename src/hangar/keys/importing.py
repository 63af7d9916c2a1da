"""`hangar import-key-pair`: a PEM private key made elsewhere (openssl, a CA, a KMS export) into
the sigstore encrypted format that containers/image, cosign and hangar read.

Accepted: PKCS#1 (`RSA PRIVATE KEY`), PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) and
encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`, opened with its own passphrase), of the types the
verifiers accept. The parsing is `cryptography`'s; this module says what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from hangar.errors import KeyFileError
from hangar.sigstore.encrypted_key import encrypt_private_key
from hangar.sigstore.keys import PrivateKey, UnsupportedKeyError
from hangar.sigstore.pem import COSIGN_PEM_TYPE, SIGSTORE_PEM_TYPE, SUPPORTED_HINT, read_block

IMPORTABLE = ("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY")
_SIGSTORE_TYPES = (COSIGN_PEM_TYPE, SIGSTORE_PEM_TYPE)


def import_key(
    pem: bytes,
    source: str,
    source_passphrase: Callable[[], bytes],
    new_passphrase: Callable[[], bytes],
) -> tuple[bytes, bytes]:
    """(sigstore private key PEM, public key PEM) of the PEM private key `pem`.
    `source_passphrase` is called only for an encrypted PKCS#8 key, `new_passphrase` once the
    key is known to be importable (so nobody types a new passphrase for a key that fails)."""
    where = f"private key {source}"
    pem_type, _ = read_block(pem, where, (*IMPORTABLE, *_SIGSTORE_TYPES))
    if pem_type in _SIGSTORE_TYPES:
        raise KeyFileError(
            f"{where} is already a sigstore key ({pem_type})",
            hint="use it as it is with `hangar sign -k`",
        )
    if pem_type not in IMPORTABLE:
        raise KeyFileError(
            f'{where}: unsupported PEM type "{pem_type}"',
            hint="import-key-pair reads PEM RSA PRIVATE KEY (PKCS#1), PRIVATE KEY (PKCS#8), "
            "EC PRIVATE KEY (SEC1) or ENCRYPTED PRIVATE KEY (encrypted PKCS#8)",
        )
    password = source_passphrase() if pem_type == "ENCRYPTED PRIVATE KEY" else None
    try:
        loaded = serialization.load_pem_private_key(pem, password)
    except ValueError:
        if password is not None:
            raise KeyFileError(
                f"{where}: wrong passphrase, or the key is damaged",
                hint="check --key-passphrase-file: it is the passphrase the key was "
                "encrypted with, not the new one",
            ) from None
        raise KeyFileError(
            f'{where}: the PEM body is not a valid "{pem_type}" key',
            hint="the file is damaged: export the key again",
        ) from None
    except TypeError:
        raise KeyFileError(
            f"{where}: the key is not encrypted as its PEM type says",
            hint="the file is damaged: export the key again",
        ) from None
    except UnsupportedAlgorithm:
        raise KeyFileError(f"{where}: unsupported key type", hint=SUPPORTED_HINT) from None
    try:
        key = PrivateKey(loaded)  # type: ignore[arg-type]
    except UnsupportedKeyError as exc:
        raise KeyFileError(f"{where}: {exc.reason}", hint=SUPPORTED_HINT) from None
    pkcs8 = loaded.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return encrypt_private_key(pkcs8, new_passphrase()), key.public_key().pem()
