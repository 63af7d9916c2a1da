"""PKCS#11 URIs (RFC 7512) as cosign takes them, parsed into a value; and the redaction that
keeps a `pin-value` out of every log line, error and file.

`pkcs11:token=LABEL;object=LABEL?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=PIN`:
path attributes (`;`) choose the token and the object, query attributes (`&`) say how to reach
them. Values are percent-encoded (`id=%4a`). An attribute this module does not know is refused,
so that a typo (`objcet=`) never silently selects another key. Written by hand because no
maintained Python library parses RFC 7512; the grammar is small (RFC 7512 section 2.3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from hangar.errors import KeyFileError

SCHEME = "pkcs11:"
_PATH_ATTRIBUTES = {
    "token",
    "manufacturer",
    "serial",
    "model",
    "object",
    "type",
    "id",
    "slot-id",
}
# RFC 7512 attributes hangar does not select by (nor does cosign): refused by name, so that a
# URI never silently matches more than its writer meant.
_NOT_MATCHED = {
    "library-manufacturer",
    "library-description",
    "library-version",
    "slot-description",
    "slot-manufacturer",
}
_QUERY_ATTRIBUTES = {"pin-source", "pin-value", "module-name", "module-path"}
_OBJECT_TYPES = {"private", "public", "cert", "secret-key", "data"}
# A pin-value as it appears anywhere in a text (argv, a message): its value up to the next
# query separator, whitespace or quote.
_PIN_VALUE = re.compile(r"(pin-value=)[^&\s'\"]*", re.IGNORECASE)
REDACTED = "***"
URI_HINT = (
    "write it as pkcs11:token=LABEL;object=LABEL?module-path=/path/to/module.so"
    "&pin-source=file:/path/to/pin (RFC 7512)"
)


def redact(text: str) -> str:
    """`text` with every `pin-value=...` shown as `pin-value=***`."""
    return _PIN_VALUE.sub(rf"\g<1>{REDACTED}", text)


def redact_arguments(arguments: list[str]) -> list[str]:
    """Command-line arguments as the report records them: PINs shown as ***."""
    return [redact(argument) for argument in arguments]


def is_pkcs11_uri(text: str) -> bool:
    return text[: len(SCHEME)].lower() == SCHEME


@dataclass(frozen=True, repr=False)
class Pkcs11Uri:
    """A parsed `pkcs11:` URI. `pin_value` is a secret: repr() and str() never show it."""

    path: dict[str, bytes]  # path attributes, percent-decoded
    query: dict[str, bytes]

    def text(self, name: str) -> str | None:
        """A path or query attribute as text (UTF-8), or None when absent."""
        value = self.path.get(name, self.query.get(name))
        return None if value is None else value.decode("utf-8", "replace")

    @property
    def token(self) -> str | None:
        return self.text("token")

    @property
    def serial(self) -> str | None:
        return self.text("serial")

    @property
    def slot_id(self) -> int | None:
        value = self.text("slot-id")
        return None if value is None else int(value)

    @property
    def object(self) -> str | None:
        return self.text("object")

    @property
    def id(self) -> bytes | None:
        return self.path.get("id")

    @property
    def type(self) -> str | None:
        return self.text("type")

    @property
    def module_path(self) -> str | None:
        return self.text("module-path")

    @property
    def pin_value(self) -> str | None:
        return self.text("pin-value")

    @property
    def pin_source(self) -> str | None:
        return self.text("pin-source")

    def selects_key(self) -> str:
        """How this URI names its key, for messages: `object=k1;id=%4a`, or `any key`."""
        parts = [
            f"{name}={encode_value(self.path[name], name)}"
            for name in ("object", "id")
            if name in self.path
        ]
        return ";".join(parts) or "any key"

    def __str__(self) -> str:
        """The URI in canonical form, its PIN (if any) shown as ***."""
        path = ";".join(f"{name}={encode_value(value, name)}" for name, value in self.path.items())
        query = "&".join(
            f"{name}={REDACTED if name == 'pin-value' else encode_value(value)}"
            for name, value in self.query.items()
        )
        return SCHEME + path + (f"?{query}" if query else "")

    def __repr__(self) -> str:
        return f"Pkcs11Uri({self})"


def encode_value(value: bytes, name: str = "") -> str:
    """A value as RFC 7512 writes it: printable characters as they are, others %XX; an id is
    all %XX, as pkcs11-tool and p11tool print it."""
    if name == "id":
        return "".join(f"%{byte:02x}" for byte in value)
    return quote(value, safe="-._~:/@!$'()*+,=")


def parse(text: str) -> Pkcs11Uri:
    """Parse a `pkcs11:` URI; KeyFileError (naming the URI without its PIN) when it is not one
    hangar can use."""
    if not is_pkcs11_uri(text):
        raise KeyFileError(f"{redact(text)} is not a pkcs11: URI", hint=URI_HINT)
    body = text[len(SCHEME) :]
    path_part, _, query_part = body.partition("?")
    path = _attributes(path_part, ";", _PATH_ATTRIBUTES, text)
    query = _attributes(query_part, "&", _QUERY_ATTRIBUTES, text)
    uri = Pkcs11Uri(path, query)
    _check(uri, text)
    return uri


def _attributes(part: str, separator: str, known: set[str], text: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for item in part.split(separator) if part else []:
        name, equals, value = item.partition("=")
        name = name.strip().lower()
        where = f"PKCS#11 URI {redact(text)}"
        if not equals or not name:
            raise KeyFileError(f'{where}: "{redact(item)}" is not NAME=VALUE', hint=URI_HINT)
        if name in _NOT_MATCHED:
            raise KeyFileError(
                f"{where}: hangar does not choose tokens by {name}=",
                hint="choose the token with token=, serial= or slot-id= "
                "(`hangar pkcs11 list-tokens` prints them)",
            )
        if name not in known:
            other = "query (after ?)" if name in _QUERY_ATTRIBUTES else "path (before ?)"
            if name in _QUERY_ATTRIBUTES | _PATH_ATTRIBUTES:
                raise KeyFileError(f"{where}: {name}= belongs in the {other} part", hint=URI_HINT)
            raise KeyFileError(
                f"{where}: unknown attribute {name}=",
                hint="hangar reads token, serial, slot-id, object, id, type, module-path, "
                "pin-value and pin-source; check the spelling",
            )
        if name in found:
            raise KeyFileError(f"{where}: {name}= is given twice", hint="give it once")
        found[name] = unquote_to_bytes(value)
    return found


def _check(uri: Pkcs11Uri, text: str) -> None:
    where = f"PKCS#11 URI {redact(text)}"
    slot = uri.text("slot-id")
    if slot is not None and not slot.isdigit():
        raise KeyFileError(
            f"{where}: slot-id={slot} is not a number",
            hint="slot-id is the decimal slot number `hangar pkcs11 list-tokens` prints",
        )
    if uri.type is not None and uri.type not in _OBJECT_TYPES:
        raise KeyFileError(
            f"{where}: type={uri.type} is not one of {', '.join(sorted(_OBJECT_TYPES))}",
            hint="leave type= out: hangar picks the private key to sign, the public key to verify",
        )
    if uri.pin_value is not None and uri.pin_source is not None:
        raise KeyFileError(
            f"{where}: both pin-value and pin-source are given",
            hint="give one; pin-source=file:PATH keeps the PIN off the command line",
        )
