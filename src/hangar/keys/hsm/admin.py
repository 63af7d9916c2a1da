"""What `hangar pkcs11 ...` and `generate-sigstore-key --pkcs11` do in a token: list tokens,
list keys as ready-to-use URIs, make a P-256 key pair whose private half never leaves it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote

import pkcs11
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_named_curve_parameters

from hangar.errors import KeyFileError
from hangar.keys.hsm import objects
from hangar.keys.hsm.objects import KeyInfo
from hangar.keys.hsm.token import (
    TokenInfo,
    find_token,
    load_module,
    module_lock,
    module_path,
    open_session,
    read_pin,
    token_infos,
    warn_pin_value,
)
from hangar.keys.uri import parse
from hangar.sigstore.keys import PublicKey

P256_OID = "1.2.840.10045.3.1.7"
NEW_KEY_ID_BYTES = 8


@dataclass(frozen=True)
class TokenKeys:
    token: TokenInfo
    module_path: str
    keys: list[KeyInfo]

    def uris(self) -> list[str]:
        return [key.uri(self.token, self.module_path) for key in self.keys]


def list_tokens(given_module: str | None) -> tuple[str, list[TokenInfo]]:
    """The module path used and its initialized tokens."""
    path = module_path(None, given_module)
    return path, [info for info, _ in token_infos(load_module(path))]


def selection_uri(token: str, given_module: str | None, pin_source: str | None) -> str:
    """The URI `--token LABEL --module-path M --pin-source S` mean."""
    query = [f"module-path={quote(given_module)}"] if given_module else []
    if pin_source:
        query.append(f"pin-source={quote(pin_source, safe=':/')}")
    return f"pkcs11:token={quote(token)}" + (f"?{'&'.join(query)}" if query else "")


def list_keys(uri_text: str) -> TokenKeys:
    """The private keys of the token the URI names (logged in: private keys are private)."""
    uri = parse(uri_text)
    path = module_path(uri)
    lib = load_module(path)
    info, token = find_token(lib, uri)
    session = open_session(lib, token, info, read_pin(uri, info))
    try:
        with module_lock(lib.so):
            return TokenKeys(info, path, objects.key_infos(session))
    finally:
        with module_lock(lib.so):
            session.close()


def generate_key_pair(uri_text: str) -> tuple[PublicKey, str]:
    """A new ECDSA P-256 pair in the token, named by the URI's object= (and id=, else a random
    one); the private key is sensitive and never extractable. Returns its public key and the
    URI that signs with it (without the PIN)."""
    uri = parse(uri_text)
    warn_pin_value(uri)
    if not uri.object:
        raise KeyFileError(
            f"PKCS#11 URI {uri}: no object= to name the new key",
            hint="add ;object=LABEL to the URI, e.g. pkcs11:token=TOKEN;object=release",
        )
    path = module_path(uri)
    lib = load_module(path)
    info, token = find_token(lib, uri)
    session = open_session(lib, token, info, read_pin(uri, info), rw=True)
    key_id = uri.id or os.urandom(NEW_KEY_ID_BYTES)
    where = f"PKCS#11 token {info.describe()}"
    try:
        with module_lock(lib.so):
            _refuse_existing(session, uri.object, key_id, where)
            parameters = session.create_domain_parameters(
                KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters(P256_OID)},
                local=True,
            )
            public, _ = parameters.generate_keypair(
                store=True,
                label=uri.object,
                id=key_id,
                public_template={Attribute.VERIFY: True, Attribute.TOKEN: True},
                private_template={
                    Attribute.SIGN: True,
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                },
            )
            key = objects.rebuild_public_key(public, where)
    except p11.PKCS11Error as exc:
        raise KeyFileError(
            f"{where}: cannot make a P-256 key pair ({type(exc).__name__})",
            hint="check that the token is writable and supports EC key generation "
            "(CKM_EC_KEY_PAIR_GEN)",
        ) from None
    finally:
        with module_lock(lib.so):
            session.close()
    made = KeyInfo(uri.object, key_id, "EC", can_sign=True, has_public=True)
    return key, made.uri(info, path)


def _refuse_existing(session: pkcs11.Session, label: str, key_id: bytes, where: str) -> None:
    """Never a second key under a label or id: a URI must keep naming one key."""
    for name, value in ((Attribute.LABEL, label), (Attribute.ID, key_id)):
        for object_class in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
            found = list(session.get_objects({Attribute.CLASS: object_class, name: value}))
            if found:
                shown = f"object={label}" if name == Attribute.LABEL else f"id={key_id.hex()}"
                raise KeyFileError(
                    f"{where} already holds a key with {shown}; no key made",
                    hint="choose another object= (and id=), or use the existing key "
                    "(`hangar pkcs11 list-keys`)",
                )
