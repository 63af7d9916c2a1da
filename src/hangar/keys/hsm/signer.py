"""Sign with a key that stays in its token.

The SHA-256 digest is computed here, only the signature in the token: CKM_ECDSA over the digest
for EC keys (the token returns raw r||s, written here as the ASN.1 DER that containers/image
requires), CKM_RSA_PKCS over the DER DigestInfo for RSA keys (PKCS#1 v1.5 with SHA-256, as the
key-file path signs).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import pkcs11
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from pkcs11 import Attribute, KeyType, Mechanism
from pkcs11 import exceptions as p11

from hangar.errors import KeyFileError
from hangar.keys.hsm import objects
from hangar.keys.hsm.token import (
    TokenInfo,
    find_token,
    load_module,
    module_lock,
    module_path,
    open_session,
    read_pin,
    warn_pin_value,
)
from hangar.keys.uri import Pkcs11Uri, parse
from hangar.sigstore.keys import PublicKey

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as Module

# DER DigestInfo prefix for SHA-256 (RFC 8017 section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


class TokenSigningKey:
    """A signing key in a PKCS#11 token: satisfies hangar.sigstore.keys.SigningKey. `sign` is
    blocking (a token call) and safe to call from several threads; callers on an event loop
    run it in a worker thread."""

    def __init__(
        self,
        uri: Pkcs11Uri,
        lib: Module,
        token: TokenInfo,
        session: pkcs11.Session,
        key: Any,
        public: PublicKey,
    ) -> None:
        self.uri = uri
        self.token = token
        self._lib = lib
        self._session = session
        self._key = key
        self._public = public
        self._rsa = public.key_type.startswith("rsa")
        self._label = str(objects.attribute(key, Attribute.LABEL, ""))

    def sign(self, data: bytes) -> bytes:
        digest = hashlib.sha256(data).digest()
        try:
            with module_lock(self._lib.so):
                if self._rsa:
                    return bytes(
                        self._key.sign(_SHA256_DIGEST_INFO + digest, mechanism=Mechanism.RSA_PKCS)
                    )
                raw = bytes(self._key.sign(digest, mechanism=Mechanism.ECDSA))
        except p11.PKCS11Error as exc:
            raise self._failed(exc) from None
        half = len(raw) // 2
        return encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )

    def public_key(self) -> PublicKey:
        return self._public

    def close(self) -> None:
        try:
            with module_lock(self._lib.so):
                self._session.close()
        except p11.PKCS11Error:
            pass  # the token is gone: nothing left to close

    def _failed(self, exc: p11.PKCS11Error) -> KeyFileError:
        name = type(exc).__name__
        if isinstance(exc, p11.UserNotLoggedIn):
            return KeyFileError(
                f"PKCS#11 token {self.token.describe()}: key {self._label!r} refused to sign "
                f"({name})",
                hint="the key must allow signing (CKA_SIGN) and the PIN must log in",
            )
        return KeyFileError(
            f"PKCS#11 token {self.token.describe()} stopped answering while signing ({name}): "
            "the token was removed, reset or deleted",
            hint="check the token is present (`hangar pkcs11 list-tokens`), then sign the "
            "failed lines again with -f",
        )

    def __repr__(self) -> str:
        return f"TokenSigningKey({self.uri})"


def open_signing_key(text: str) -> TokenSigningKey:
    """The signing key a `pkcs11:` URI names, logged in and checked before any network
    traffic: the key exists, may sign, and is of a type the verifiers accept."""
    uri = parse(text)
    warn_pin_value(uri)
    lib = load_module(module_path(uri))
    info, token = find_token(lib, uri)
    pin = read_pin(uri, info)
    session = open_session(lib, token, info, pin)
    try:
        with module_lock(lib.so):
            key = objects.find_private_key(session, uri, info)
            label = objects.attribute(key, Attribute.LABEL, "")
            what = f"PKCS#11 token {info.describe()}: key {label!r}"
            if not objects.attribute(key, Attribute.SIGN, False):
                raise KeyFileError(
                    f"{what} cannot sign (its CKA_SIGN attribute is false)",
                    hint="use a key made for signing (pkcs11-tool --keypairgen --usage-sign, "
                    "or hangar generate-sigstore-key --pkcs11)",
                )
            if objects.attribute(key, Attribute.KEY_TYPE) not in (KeyType.EC, KeyType.RSA):
                objects.rebuild_public_key(key, what)  # raises, naming the type
            public_obj = objects.public_key_for_private(session, key, info)
            public = objects.rebuild_public_key(public_obj, what)
    except BaseException:
        with module_lock(lib.so):
            session.close()
        raise
    return TokenSigningKey(uri, lib, info, session, key, public)


def open_public_key(text: str) -> PublicKey:
    """The public key a `pkcs11:` URI names, read from the token: without logging in when the
    token shows it (most do), else logged in with the PIN."""
    uri = parse(text)
    warn_pin_value(uri)
    lib = load_module(module_path(uri))
    info, token = find_token(lib, uri)
    public = None
    if uri.pin_value is None and uri.pin_source is None:
        public = _read_public_key(lib, token, info, uri, None, must_find=False)
    if public is None:  # not visible without logging in: log in (the PIN as for signing)
        public = _read_public_key(lib, token, info, uri, read_pin(uri, info), must_find=True)
    assert public is not None  # must_find raises instead
    return public


def _read_public_key(
    lib: Module,
    token: pkcs11.Token,
    info: TokenInfo,
    uri: Pkcs11Uri,
    pin: str | None,
    *,
    must_find: bool,
) -> PublicKey | None:
    """The public key object the URI names, else the public half of the private key it names;
    None when neither is visible and `must_find` is false, else KeyFileError naming the keys
    present."""
    session = open_session(lib, token, info, pin)
    try:
        with module_lock(lib.so):
            found = objects.find_public_key(session, uri, info)
            if found is None and must_find:
                private = objects.find_private_key(session, uri, info)
                found = objects.public_key_for_private(session, private, info)
            if found is None:
                return None
            return objects.rebuild_public_key(found, f"PKCS#11 token {info.describe()}")
    finally:
        with module_lock(lib.so):
            session.close()
