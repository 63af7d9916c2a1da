"""Reading JSON as containers/image's paranoid parser does (duplicate keys refused, exact
fields, Go's handling of null), with the path of the field that is wrong. policy/config.py
builds the policy from these."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hangar.sigstore.attachment import decode_signature


class Invalid(Exception):
    """The first problem found, with the path of the field (`transports.docker."x"[0].type`)."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}" if path else why)


class JSONObject(dict):
    """A JSON object that remembers its first duplicate key (Go's paranoid parser refuses it)."""

    duplicate: str | None = None


def object_pairs(pairs: list[tuple[str, Any]]) -> JSONObject:
    result = JSONObject()
    for key, value in pairs:
        if key in result and result.duplicate is None:
            result.duplicate = key
        result[key] = value
    return result


def json_object(value: Any, path: str, allowed: tuple[str, ...] | None) -> JSONObject:
    """A JSON object with no duplicate key and, when `allowed` is given, no other key."""
    if not isinstance(value, JSONObject):
        raise Invalid(path, f"a JSON object is expected, not {kind_of(value)}")
    if value.duplicate is not None:
        raise Invalid(path, f'duplicate key "{value.duplicate}"')
    if allowed is not None:
        for key in value:
            if key not in allowed:
                raise Invalid(path, f'unknown key "{key}"')
    return value


def exact_fields(value: Any, path: str, fields: tuple[str, ...]) -> JSONObject:
    """ParanoidUnmarshalJSONObjectExactFields: exactly these keys."""
    obj = json_object(value, path, fields)
    for key in fields:
        if key not in obj:
            raise Invalid(path, f'key "{key}" missing')
    return obj


def kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def string_field(obj: JSONObject, key: str, path: str) -> str:
    """A string field; a missing field or null is "" (Go leaves the string empty)."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{path}.{key}", f"a string is expected, not {kind_of(value)}")
    return value


def strings_field(obj: JSONObject, key: str, path: str) -> list[str] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Invalid(f"{path}.{key}", "an array of strings is expected")
    return value


def bytes_field(obj: JSONObject, key: str, path: str) -> bytes | None:
    """Go's []byte: standard base64 in a string; null leaves it unset."""
    value = obj.get(key)
    if value is None:
        return None
    decoded = decode_signature(value) if isinstance(value, str) else None
    if decoded is None:
        raise Invalid(f"{path}.{key}", "base64 data in a string is expected")
    return decoded


def bytes_list_field(obj: JSONObject, key: str, path: str) -> list[bytes] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise Invalid(f"{path}.{key}", "an array of base64 strings is expected")
    items = [
        bytes_field(JSONObject(item=item), "item", f"{path}.{key}[{i}]")
        for i, item in enumerate(value)
    ]
    return [item or b"" for item in items]


def quoted(value: Any) -> str:
    return json.dumps(value) if value is not None else '""'


def listed(obj: JSONObject, key: str, path: str, parse: Callable[..., Any]) -> Any:
    """A list field of sigstoreSigned: once present (even as null) it must have entries."""
    if key not in obj:
        return None
    values = parse(obj, key, path) or []
    if not values:
        raise Invalid(f"{path}.{key}", f'"{key}" contains no entries')
    return values
