"""The key objects of a token: find the one a URI names, say which are there, and rebuild a
public key from the token's attributes (EC params and point, or RSA modulus and exponent) as
the standard PKIX key hangar.sigstore verifies with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pkcs11
from cryptography.hazmat.primitives import serialization
from pkcs11 import Attribute, KeyType, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.util.ec import encode_ec_public_key
from pkcs11.util.rsa import encode_rsa_public_key

from hangar.errors import KeyFileError
from hangar.keys.hsm.token import TokenInfo
from hangar.keys.uri import SCHEME, Pkcs11Uri, encode_value
from hangar.sigstore.keys import PublicKey, UnsupportedKeyError

_KEY_TYPES = {KeyType.EC: "EC", KeyType.RSA: "RSA"}
TOKEN_KEY_HINT = (
    "use an ECDSA P-256 key (hangar generate-sigstore-key --pkcs11 URI, or pkcs11-tool "
    "--keypairgen --key-type EC:prime256v1), or P-384, P-521, RSA 2048/3072/4096"
)


@dataclass(frozen=True)
class KeyInfo:
    """A key pair in a token as `hangar pkcs11 list-keys` prints it."""

    label: str
    id: bytes
    key_type: str  # "EC", "RSA", or the PKCS#11 name of another type
    can_sign: bool
    has_public: bool

    def describe(self) -> str:
        return f'"{self.label}" (id {self.id.hex() or "none"}, {self.key_type})'

    def uri(self, token: TokenInfo, module_path: str) -> str:
        """A ready-to-use URI for this key, without any PIN."""
        path = [f"token={encode_value(token.label.encode())}"]
        if self.label:
            path.append(f"object={encode_value(self.label.encode())}")
        if self.id:
            path.append("id=" + "".join(f"%{byte:02x}" for byte in self.id))
        return f"{SCHEME}{';'.join(path)}?module-path={encode_value(module_path.encode())}"


def attribute(obj: Any, name: Attribute, default: Any = None) -> Any:
    try:
        return obj[name]
    except (p11.AttributeTypeInvalid, p11.AttributeSensitive, KeyError):
        return default


def template(uri: Pkcs11Uri, object_class: ObjectClass) -> dict[Attribute, Any]:
    wanted: dict[Attribute, Any] = {Attribute.CLASS: object_class}
    if uri.object is not None:
        wanted[Attribute.LABEL] = uri.object
    if uri.id is not None:
        wanted[Attribute.ID] = uri.id
    return wanted


def key_infos(session: pkcs11.Session) -> list[KeyInfo]:
    """Every private key of the token (a logged-in session sees them), with its public half
    when the token holds one under the same id or label."""
    publics = list(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY}))
    public_ids = {
        (attribute(k, Attribute.ID, b""), attribute(k, Attribute.LABEL, "")) for k in publics
    }
    found = []
    for key in session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}):
        key_id = bytes(attribute(key, Attribute.ID, b""))
        label = attribute(key, Attribute.LABEL, "")
        key_type = attribute(key, Attribute.KEY_TYPE)
        found.append(
            KeyInfo(
                label=label,
                id=key_id,
                key_type=_KEY_TYPES.get(key_type, str(key_type).removeprefix("KeyType.")),
                can_sign=bool(attribute(key, Attribute.SIGN, False)),
                has_public=any(pid == key_id or plabel == label for pid, plabel in public_ids),
            )
        )
    return sorted(found, key=lambda info: (info.label, info.id))


def present(session: pkcs11.Session) -> str:
    keys = key_infos(session)
    return ", ".join(info.describe() for info in keys) or "none"


def find_private_key(session: pkcs11.Session, uri: Pkcs11Uri, token: TokenInfo) -> Any:
    """The one private key the URI names (or the token's only one when it names none)."""
    found = list(session.get_objects(template(uri, ObjectClass.PRIVATE_KEY)))
    where = f"PKCS#11 token {token.describe()}"
    if not found:
        raise KeyFileError(
            f"{where}: no private key matches {uri.selects_key()}; keys present: "
            f"{present(session)}",
            hint="use object=LABEL or id= of one of them (`hangar pkcs11 list-keys` prints "
            "their URIs); the PIN must be given to see private keys",
        )
    if len(found) > 1:
        raise KeyFileError(
            f"{where}: several private keys match {uri.selects_key()}: {present(session)}",
            hint="name one with object=LABEL and id=",
        )
    return found[0]


def find_public_key(session: pkcs11.Session, uri: Pkcs11Uri, token: TokenInfo) -> Any | None:
    """The public key object the URI names, or None when the token holds none."""
    found = list(session.get_objects(template(uri, ObjectClass.PUBLIC_KEY)))
    if len(found) > 1:
        raise KeyFileError(
            f"PKCS#11 token {token.describe()}: several public keys match {uri.selects_key()}",
            hint="name one with object=LABEL and id=",
        )
    return found[0] if found else None


def public_key_for_private(session: pkcs11.Session, private: Any, token: TokenInfo) -> Any:
    """The public key object of a private key: the same id (and label), as pkcs11-tool and
    hangar make pairs."""
    key_id = attribute(private, Attribute.ID)
    label = attribute(private, Attribute.LABEL)
    for name, value in ((Attribute.ID, key_id), (Attribute.LABEL, label)):
        if value in (None, b"", ""):
            continue
        found = list(session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, name: value}))
        if len(found) == 1:
            return found[0]
    raise KeyFileError(
        f"PKCS#11 token {token.describe()}: key {label!r} has no public key object beside it, "
        "so hangar cannot say which public key verifies its signatures",
        hint="import the public key into the token with the same id "
        "(pkcs11-tool --write-object KEY.pub --type pubkey --id ID)",
    )


def rebuild_public_key(obj: Any, what: str) -> PublicKey:
    """A token public key object as a PublicKey; KeyFileError for a type or curve that cosign
    and containers/image do not verify."""
    key_type = attribute(obj, Attribute.KEY_TYPE)
    try:
        if key_type == KeyType.EC:
            der = encode_ec_public_key(obj)
        elif key_type == KeyType.RSA:
            der = encode_rsa_public_key(obj)
        else:
            name = str(key_type).removeprefix("KeyType.")
            raise UnsupportedKeyError(f"unsupported key type {name}")
        key = serialization.load_der_public_key(der)
        return PublicKey(key)  # type: ignore[arg-type]
    except UnsupportedKeyError as exc:
        raise KeyFileError(f"{what}: {exc.reason}", hint=TOKEN_KEY_HINT) from None
    except (ValueError, TypeError) as exc:
        raise KeyFileError(
            f"{what}: its public key attributes do not form a key ({exc})",
            hint=TOKEN_KEY_HINT,
        ) from None
