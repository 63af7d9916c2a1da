"""One way in for every key a command takes: `-k`/`-p` may name a key file or a key URI, and
the URI's scheme picks the backend. A backend is one module with `open_signing_key(text)` and
`open_public_key(text)`; adding one (a KMS) means adding its module and a line to BACKENDS.

Schemes cosign knows that hangar does not support yet get one line that says so, never a
"file not found".
"""

from __future__ import annotations

import importlib
import re
from urllib.parse import unquote

from hangar import output
from hangar.errors import KeyFileError
from hangar.keys import files
from hangar.keys.uri import parse, redact
from hangar.sigstore.keys import PublicKey, SigningKey
from hangar.sigstore.pem import looks_public

# scheme prefix -> module with open_signing_key(text) / open_public_key(text)
BACKENDS = {"pkcs11:": "hangar.keys.hsm.signer"}
# cosign's other key references, refused with a clear line.
NOT_SUPPORTED = {
    "hashivault://": "HashiCorp Vault",
    "awskms://": "AWS KMS",
    "gcpkms://": "Google Cloud KMS",
    "azurekms://": "Azure Key Vault",
    "k8s://": "Kubernetes Secret",
}
_URI = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def describe(spec: str) -> str:
    """A key as messages and the report name it: the path, or the URI with its PIN as ***."""
    return redact(spec)


def is_uri(spec: str) -> bool:
    lowered = spec.lower()
    return any(lowered.startswith(prefix) for prefix in (*BACKENDS, *NOT_SUPPORTED))


def _backend(spec: str) -> str | None:
    """The backend module for a URI, None for a file path; KeyFileError for a URI scheme
    hangar does not support."""
    lowered = spec.lower()
    for prefix, module in BACKENDS.items():
        if lowered.startswith(prefix):
            return module
    for prefix, name in NOT_SUPPORTED.items():
        if lowered.startswith(prefix):
            raise KeyFileError(
                f"key {describe(spec)}: {name} keys ({prefix}) are not supported yet",
                hint="use a key file or a pkcs11: URI (an HSM or a KMS with a PKCS#11 module)",
            )
    if _URI.match(spec) and not spec.lower().startswith("file://"):
        scheme = spec.split(":", 1)[0]
        raise KeyFileError(
            f"key {describe(spec)}: {scheme}:// keys are not supported",
            hint="use a key file or a pkcs11: URI",
        )
    return None


def _file_path(spec: str) -> str:
    return spec[len("file://") :] if spec.lower().startswith("file://") else spec


def open_signing_key(spec: str, passphrase_file: str | None) -> SigningKey:
    """The signing key `-k` names: a key file (decrypted with the passphrase policy of
    hangar.keys.passphrase) or a key in a token."""
    module = _backend(spec)
    if module is None:
        return files.read_signing_key(_file_path(spec), passphrase_file)
    if passphrase_file is not None:
        output.warn(
            f"--sigstore-passphrase-file {passphrase_file} is not used: the key {describe(spec)} "
            "is in a token, opened with its PIN (pin-source=file:PATH in the URI)"
        )
    key: SigningKey = importlib.import_module(module).open_signing_key(spec)
    return key


def open_public_key(spec: str) -> PublicKey:
    """The public key `-p` names: a .pub file, or the public key of a key in a token."""
    module = _backend(spec)
    if module is None:
        return files.load_public_key(_file_path(spec))
    public: PublicKey = importlib.import_module(module).open_public_key(spec)
    return public


def input_files(spec: str) -> list[str]:
    """The files a key spec makes hangar read (the key file; a URI's pin-source file), which
    no output (-o, --report) may overwrite."""
    if not is_uri(spec):
        return [_file_path(spec)]
    if spec.lower().startswith("pkcs11:"):
        source = parse(spec).pin_source or ""
        if source.startswith("file:"):
            return [unquote(source.removeprefix("file://").removeprefix("file:"))]
    return []


def public_key_of(spec: str, passphrase_file: str | None) -> PublicKey:
    """`hangar public-key -k`: the public key of a private key file (opened with its
    passphrase), of a .pub file, or of a key in a token."""
    if _backend(spec) is not None:
        return open_public_key(spec)
    path = _file_path(spec)
    if looks_public(files.read_key_file(path, "public key")):
        return files.load_public_key(path)
    return files.read_signing_key(path, passphrase_file).public_key()


def close(key: SigningKey) -> None:
    """Release what a key holds (a token session); nothing for a key file."""
    closer = getattr(key, "close", None)
    if closer is not None:
        closer()
