"""The simple-signing payload: build it as containers/image writes it, parse it as strictly as
containers/image reads it (docs/formats.md shows the document).

The parser mirrors c/image's `signature/internal/sigstore_payload.go` and `json.go`, including
Go's `encoding/json` quirks, because a payload hangar accepts must be one that podman/CRI-O accept
and the other way round:

- duplicate keys and unknown keys are refused in every object the parser walks (top level,
  `critical`, `critical.image`, `critical.identity`, `optional`); inside values of unknown
  `optional` keys c/image decodes into `interface{}`, which takes duplicates (last wins) but
  refuses numbers that do not fit a float64; so do we;
- a JSON `null` given for a string field is the empty string and for `timestamp` is 0 (Go leaves
  the zero value in place); the values are then refused later by digest or identity checks;
- `timestamp` is decoded as a float64 and must be integral and fit an int64: `1.0` and `1e3`
  are accepted (as 1 and 1000), `1.5` is not;
- invalid UTF-8 inside strings and lone UTF-16 surrogates become U+FFFD, as Go decodes them.

`encode_go_json` writes JSON the way Go's `json.Marshal` does (compact, `<`, `>`, `&`, U+2028 and
U+2029 escaped), so that documents written by Go tools are re-encoded byte for byte.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hangar.errors import PayloadError

SIGNATURE_TYPE = "cosign container image signature"

_INT64_MIN = -(2**63)
_INT64_LIMIT = 2**63  # exclusive
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Go's json.Marshal escapes these inside strings (HTML safety, JavaScript line separators).
_GO_ESCAPES = {char: f"\\u{ord(char):04x}" for char in "<>&\u2028\u2029"}
_GO_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")


@dataclass(frozen=True)
class Payload:
    identity: str  # critical.identity.docker-reference
    digest: str  # critical.image.docker-manifest-digest
    creator: str | None
    timestamp: int | None
    optional: dict | None  # the whole optional object; None when it is JSON null


# --- writing ---------------------------------------------------------------------------------


class JsonFloat(float):
    """A JSON number read from a document, with its text kept so it is written back unchanged."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, text: str) -> JsonFloat:
        value = super().__new__(cls, text)
        value.text = text
        return value


def encode_go_json(value: Any) -> bytes:
    """Compact JSON as Go's json.Marshal writes it; dict key order is kept as given."""
    return _encode(value).encode("utf-8")


def _encode(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _encode_string(value)
    if isinstance(value, JsonFloat):
        return value.text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _encode_float(value)
    if isinstance(value, dict):
        items = (f"{_encode_string(key)}:{_encode(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _encode_string(text: str) -> str:
    if not isinstance(text, str):
        raise TypeError("JSON object keys must be strings")
    # Go strings are UTF-8: a lone surrogate cannot exist there, it was already U+FFFD.
    text = _LONE_SURROGATE.sub("\ufffd", text)
    encoded = json.dumps(text, ensure_ascii=False)
    return _GO_ESCAPE_RE.sub(lambda match: _GO_ESCAPES[match.group()], encoded)


def _encode_float(number: float) -> str:
    """Go's float64 format: shortest digits, exponent only below 1e-6 or from 1e21."""
    if not math.isfinite(number):
        raise ValueError("JSON cannot hold NaN or infinity")
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    if 1e-6 <= abs(number) < 1e21:
        if number.is_integer():
            return str(int(number))
        return format(Decimal(repr(number)), "f")
    mantissa, exponent = repr(number).split("e")
    sign = exponent[0]
    return f"{mantissa}e{sign}{exponent[1:].lstrip('0') or '0'}"


def build_payload(
    identity: str, digest: str, *, creator: str | None, timestamp: int | None
) -> bytes:
    """The payload bytes c/image writes (keys sorted, as Go marshals maps).

    `optional` is null when neither creator nor timestamp is given (as cosign writes it).
    """
    if not identity or not digest:
        raise PayloadError("cannot build a payload with an empty identity or digest")
    if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, int)):
        raise PayloadError("the payload timestamp must be an integer number of seconds")
    optional: dict[str, Any] | None = None
    if creator is not None or timestamp is not None:
        optional = {}
        if creator is not None:
            optional["creator"] = creator
        if timestamp is not None:
            optional["timestamp"] = timestamp
    document = {
        "critical": {
            "identity": {"docker-reference": identity},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": optional,
    }
    return encode_go_json(document)


# --- strict reading --------------------------------------------------------------------------


class _Object:
    """A JSON object as written: every key/value pair in order, duplicates included."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = [(_go_text(key), value) for key, value in pairs]


class _Number:
    """A JSON number literal, kept as text: Go decides later how to read it."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _refuse_constant(name: str) -> Any:
    raise PayloadError(f"malformed JSON: {name} is not a JSON value")


_DECODER = json.JSONDecoder(
    object_pairs_hook=_Object,
    parse_float=_Number,
    parse_int=_Number,
    parse_constant=_refuse_constant,
)


def _go_text(text: str) -> str:
    return _LONE_SURROGATE.sub("\ufffd", text)


def parse_payload(data: bytes) -> Payload:
    """Parse payload bytes exactly as c/image does; PayloadError names the rule broken."""
    document = _parse_json(data)
    top = _exact_fields(document, ("critical", "optional"), "at top level")
    creator, timestamp, optional = _read_optional(top["optional"])
    critical = _exact_fields(top["critical"], ("type", "image", "identity"), "in critical")
    signature_type = _go_string(critical["type"], "critical.type")
    if signature_type != SIGNATURE_TYPE:
        raise PayloadError(f"unrecognized signature type {signature_type!r}")
    image = _exact_fields(critical["image"], ("docker-manifest-digest",), "in critical.image")
    digest = _go_string(image["docker-manifest-digest"], "docker-manifest-digest")
    identity_fields = _exact_fields(
        critical["identity"], ("docker-reference",), "in critical.identity"
    )
    identity = _go_string(identity_fields["docker-reference"], "docker-reference")
    return Payload(identity, digest, creator, timestamp, optional)


def _parse_json(data: bytes) -> Any:
    # Go replaces invalid UTF-8 with U+FFFD inside strings; elsewhere it is a syntax error,
    # and so is U+FFFD outside a string here.
    text = data.decode("utf-8", errors="replace")
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"malformed JSON: {exc.msg} at offset {exc.pos}") from None
    except RecursionError:
        raise PayloadError("malformed JSON: nested too deeply") from None


def _exact_fields(node: Any, names: tuple[str, ...], where: str) -> dict[str, Any]:
    """ParanoidUnmarshalJSONObjectExactFields: every name once, nothing else."""
    found = _unique_pairs(node, where, allowed=names)
    for name in names:
        if name not in found:
            raise PayloadError(f'missing field "{name}" {where}')
    return found


def _unique_pairs(node: Any, where: str, allowed: tuple[str, ...] | None) -> dict[str, Any]:
    if not isinstance(node, _Object):
        raise PayloadError(f"expected a JSON object {where}, got {_kind(node)}")
    found: dict[str, Any] = {}
    for key, value in node.pairs:
        if key in found:
            raise PayloadError(f'duplicate key "{key}" {where}')
        if allowed is not None and key not in allowed:
            raise PayloadError(f'unexpected field "{key}" {where}')
        found[key] = value
    return found


def _read_optional(node: Any) -> tuple[str | None, int | None, dict | None]:
    if node is None:  # cosign writes "optional": null
        return None, None, None
    fields = _unique_pairs(node, "in optional", allowed=None)
    creator = timestamp = None
    for key, value in fields.items():
        if key == "creator":
            creator = _go_string(value, "creator")
        elif key == "timestamp":
            timestamp = _go_int64_from_float(value)
        else:
            _check_go_interface(value, key)
    return creator, timestamp, _plain(node)


def _go_string(value: Any, field: str) -> str:
    if value is None:  # Go leaves the zero value for null
        return ""
    if not isinstance(value, str):
        raise PayloadError(f'field "{field}" is not a string')
    return _go_text(value)


def _go_float(number: _Number, field: str) -> float:
    result = float(number.text)
    if math.isinf(result):  # strconv.ParseFloat: ErrRange
        raise PayloadError(f'field "{field}" holds a number out of range')
    return result


def _go_int64_from_float(value: Any) -> int:
    """c/image decodes timestamp into a float64, then requires an integral int64 value."""
    if value is None:
        return 0
    if not isinstance(value, _Number):
        raise PayloadError("timestamp is not a number")
    number = _go_float(value, "timestamp")
    if not number.is_integer() or not _INT64_MIN <= number < _INT64_LIMIT:
        raise PayloadError("timestamp is not an integer")
    return int(number)


def _check_go_interface(value: Any, field: str) -> None:
    """What decoding into interface{} refuses: numbers that do not fit a float64."""
    if isinstance(value, _Number):
        _go_float(value, field)
    elif isinstance(value, _Object):
        for _, item in value.pairs:
            _check_go_interface(item, field)
    elif isinstance(value, list):
        for item in value:
            _check_go_interface(item, field)


def _plain(value: Any) -> Any:
    """The parsed tree as plain Python values (last duplicate wins, as Go maps do)."""
    if isinstance(value, _Object):
        return {key: _plain(item) for key, item in value.pairs}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, _Number):
        return _number_value(value.text)
    if isinstance(value, str):
        return _go_text(value)
    return value


def _number_value(text: str) -> int | float:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return float(text)


def _kind(value: Any) -> str:
    kinds: dict[type, str] = {str: "a string", list: "an array", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, _Number):
        return "a number"
    return kinds.get(type(value), type(value).__name__)
