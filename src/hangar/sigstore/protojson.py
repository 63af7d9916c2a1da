"""JSON read as protobuf-go's protojson reads a message (encoding/protojson/decode.go), which is
how sigstore-go and cosign read bundles and in-toto statements: an unknown field, a field given
twice (in either spelling), a second member of a oneof, or a value of the wrong JSON type is an
error; bytes are base64 (standard or URL alphabet, padding optional); a field may be spelled
with its lowerCamelCase JSON name or its proto snake_case name.

No protobuf runtime on PyPI reads exactly this way without generated classes for sigstore's
protos (the PyPI package generated from them is a test dependency, used to cross-check this
reader), so the few rules needed are written here.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from hangar.errors import HangarError


class ProtoJsonError(HangarError):
    """A document that protojson (so cosign, sigstore-go) refuses to read."""


_BASE64 = re.compile(r"[A-Za-z0-9+/_-]*={0,2}")


class _Duplicate(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen[key] = value
    return seen


def load(data: bytes, what: str) -> dict[str, Any]:
    """The top-level JSON object; duplicate keys anywhere are refused (protojson does)."""
    try:
        document = json.loads(data, object_pairs_hook=_pairs)
    except _Duplicate as exc:
        raise ProtoJsonError(f"{what}: field {exc} is given twice") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtoJsonError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ProtoJsonError(f"{what} is not a JSON object")
    return document


def snake(name: str) -> str:
    """The proto field name of a lowerCamelCase JSON name."""
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), name)


def fields(
    obj: object, allowed: tuple[str, ...], what: str, *, oneofs: tuple[tuple[str, ...], ...] = ()
) -> dict[str, Any]:
    """The members of a message, by JSON name. `allowed`: the JSON names (the snake_case
    spellings are accepted too); `oneofs`: groups of which at most one may be set."""
    if not isinstance(obj, Mapping):
        raise ProtoJsonError(f"{what} is not a JSON object")
    spelled = {name: name for name in allowed} | {snake(name): name for name in allowed}
    found: dict[str, Any] = {}
    for key, value in obj.items():
        name = spelled.get(key)
        if name is None:
            raise ProtoJsonError(f"{what}: unknown field {key!r}")
        if name in found:
            raise ProtoJsonError(f"{what}: field {name!r} is given twice")
        if value is not None:  # protojson: null is the field's default
            found[name] = value
    for group in oneofs:
        present = [name for name in group if name in found]
        if len(present) > 1:
            raise ProtoJsonError(f"{what}: only one of {', '.join(present)} may be set")
    return found


def string(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise ProtoJsonError(f"{what} is not a string")
    return value


def decode_bytes(value: object, what: str) -> bytes:
    """A bytes field: base64, standard or URL alphabet, padding optional (protojson)."""
    text = string(value, what)
    if not _BASE64.fullmatch(text):
        raise ProtoJsonError(f"{what} is not base64")
    text = text.rstrip("=")
    text = text.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ProtoJsonError(f"{what} is not base64") from None


def integer(value: object, what: str) -> int:
    """An int64 field: protojson writes it as a string, and reads a string or a number."""
    if isinstance(value, bool):
        raise ProtoJsonError(f"{what} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
        return int(value)
    raise ProtoJsonError(f"{what} is not an integer")


def repeated(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProtoJsonError(f"{what} is not a JSON array")
    return value


def struct(value: object, what: str) -> dict[str, Any]:
    """A google.protobuf.Struct: any JSON object."""
    if not isinstance(value, dict):
        raise ProtoJsonError(f"{what} is not a JSON object")
    return value


def string_map(value: object, what: str) -> dict[str, str]:
    mapping = struct(value, what)
    for key, item in mapping.items():
        string(item, f"{what}[{key!r}]")
    return mapping
