"""Payload build (byte for byte as c/image) and strict parse (as c/image's parser decides)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hangar.errors import HangarError, PayloadError
from hangar.sigstore.payload import JsonFloat, build_payload, encode_go_json, parse_payload
from tests.sigstore.cimage_dir import CIMAGE_FIXTURES, read_dir_image
from tests.support import paths

VECTORS = paths.VECTORS / "cimage-attachment"
DIGEST = "sha256:" + "ab" * 32
REF = "127.0.0.1:5000/ns/app:v1"
CRITICAL = (
    '{"identity":{"docker-reference":"' + REF + '"},'
    '"image":{"docker-manifest-digest":"' + DIGEST + '"},'
    '"type":"cosign container image signature"}'
)


def payload(critical: str = CRITICAL, optional: str = "null", extra: str = "") -> bytes:
    return ('{"critical":' + critical + ',"optional":' + optional + extra + "}").encode()


# --- build -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["payload-1.json", "payload-2.json"])
def test_build_reproduces_cimage_vector_byte_for_byte(name: str) -> None:
    data = (VECTORS / name).read_bytes()
    fields = json.loads(data)
    rebuilt = build_payload(
        fields["critical"]["identity"]["docker-reference"],
        fields["critical"]["image"]["docker-manifest-digest"],
        creator=fields["optional"]["creator"],
        timestamp=fields["optional"]["timestamp"],
    )
    assert rebuilt == data


def test_build_without_optional_fields_writes_null_like_cosign() -> None:
    data = build_payload(REF, DIGEST, creator=None, timestamp=None)
    assert data == payload()
    parsed = parse_payload(data)
    assert (parsed.creator, parsed.timestamp, parsed.optional) == (None, None, None)


def test_build_with_one_optional_field() -> None:
    assert build_payload(REF, DIGEST, creator="hangar 1", timestamp=None).endswith(
        b'"optional":{"creator":"hangar 1"}}'
    )
    assert build_payload(REF, DIGEST, creator=None, timestamp=7).endswith(
        b'"optional":{"timestamp":7}}'
    )


def test_build_escapes_like_go() -> None:
    data = build_payload(REF, DIGEST, creator="a<b>&c é", timestamp=1)
    assert b'"creator":"a\\u003cb\\u003e\\u0026c \xc3\xa9"' in data
    assert parse_payload(data).creator == "a<b>&c é"


@pytest.mark.parametrize(
    ("identity", "digest", "timestamp"),
    [("", DIGEST, 1), (REF, "", 1), (REF, DIGEST, 1.5), (REF, DIGEST, True)],
)
def test_build_refuses_bad_fields(identity: str, digest: str, timestamp: Any) -> None:
    with pytest.raises(PayloadError):
        build_payload(identity, digest, creator=None, timestamp=timestamp)


def test_payload_error_is_a_hangar_error() -> None:
    assert issubclass(PayloadError, HangarError)


def test_encode_go_json_keeps_number_text_and_formats_floats_like_go() -> None:
    value = {"kept": JsonFloat("1.50"), "big": 1e21, "small": 1.5e-7, "int": 3.0, "neg": -0.0}
    assert encode_go_json(value) == b'{"kept":1.50,"big":1e+21,"small":1.5e-7,"int":3,"neg":-0}'
    assert encode_go_json({"s": "\u2028\x01\ud800"}) == b'{"s":"\\u2028\\u0001\xef\xbf\xbd"}'


# --- parse: accepted -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["payload-1.json", "payload-2.json"])
def test_parse_cimage_vector(name: str) -> None:
    parsed = parse_payload((VECTORS / name).read_bytes())
    assert parsed.digest == "sha256:" + (
        "0a16cbc9fee2e68dda7d056a2dc1ac0153101560833871518340fd2acca3b08c"
    )
    assert parsed.identity.startswith("127.0.0.1:5000/vectors/app")
    assert parsed.creator == "containers/image 5.29.3"
    assert parsed.timestamp == 1795842641
    assert parsed.optional == {"creator": "containers/image 5.29.3", "timestamp": 1795842641}


def test_parse_cosign_payload_with_null_optional() -> None:
    image = read_dir_image(CIMAGE_FIXTURES / "dir-img-cosign-valid")
    parsed = parse_payload(image.signatures[0].payload)
    assert parsed.identity == "192.168.64.2:5000/cosign-signed-single-sample"
    assert parsed.digest == (
        "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
    )
    assert (parsed.creator, parsed.timestamp, parsed.optional) == (None, None, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("1.0", 1),  # Go reads a float64 and accepts any integral value
        ("1e3", 1000),
        ("-0.0", 0),
        ("null", 0),  # Go leaves the zero value for null
        ("-9223372036854775808", -(2**63)),
        ("9007199254740993", 9007199254740992),  # float64 rounding, as Go
    ],
)
def test_timestamp_follows_go_float64_semantics(text: str, expected: int) -> None:
    parsed = parse_payload(payload(optional='{"timestamp":' + text + "}"))
    assert parsed.timestamp == expected


def test_optional_unknown_keys_are_ignored_even_with_nested_duplicates() -> None:
    optional = '{"creator":"x","note":{"a":1,"a":2},"list":[1.5,null,true],"n":1e300}'
    parsed = parse_payload(payload(optional=optional))
    assert parsed.creator == "x"
    assert parsed.timestamp is None
    assert parsed.optional is not None and parsed.optional["note"] == {"a": 2}


def test_empty_optional_object() -> None:
    parsed = parse_payload(payload(optional="{}"))
    assert (parsed.creator, parsed.timestamp, parsed.optional) == (None, None, {})


def test_null_strings_are_empty_strings_like_go() -> None:
    critical = CRITICAL.replace('"' + DIGEST + '"', "null")
    parsed = parse_payload(payload(critical=critical, optional='{"creator":null}'))
    assert parsed.digest == ""
    assert parsed.creator == ""


def test_whitespace_key_order_and_escaped_keys_are_accepted() -> None:
    data = (
        ' {\n "optional" : null ,\t"critical": {"type":"cosign container image signature",'
        '"\\u0069mage":{"docker-manifest-digest":"' + DIGEST + '"},'
        '"identity":{"docker-reference":"' + REF + '"}}}\r\n '
    ).encode()
    parsed = parse_payload(data)
    assert (parsed.identity, parsed.digest) == (REF, DIGEST)


def test_invalid_utf8_bytes_in_creator_become_u_fffd() -> None:
    data = payload(optional='{"creator":"aXb"}').replace(b"aXb", b"a\xffb")
    assert parse_payload(data).creator == "a\ufffdb"


# --- parse: refused --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "malformed JSON"),
        (b"[]", "expected a JSON object at top level"),
        (payload() + b"{}", "malformed JSON: Extra data"),
        (payload() + b" x", "malformed JSON"),
        (b"\xef\xbb\xbf" + payload(), "malformed JSON"),  # Go takes no BOM
        (payload(extra=',"extra":1'), 'unexpected field "extra" at top level'),
        (payload(extra=',"critical":{}'), 'duplicate key "critical" at top level'),
        (b'{"critical":' + CRITICAL.encode() + b"}", 'missing field "optional" at top level'),
        (b'{"optional":null}', 'missing field "critical" at top level'),
        (
            payload(critical=CRITICAL[:-1] + ',"extra":"x"}'),
            'unexpected field "extra" in critical',
        ),
        (
            payload(critical=CRITICAL[:-1] + ',"type":"cosign container image signature"}'),
            'duplicate key "type" in critical',
        ),
        (
            payload(critical=CRITICAL.replace(',"type":"cosign container image signature"', "")),
            'missing field "type" in critical',
        ),
        (
            payload(critical=CRITICAL.replace("cosign container image signature", "other")),
            "unrecognized signature type 'other'",
        ),
        (
            payload(critical=CRITICAL.replace('"cosign container image signature"', "5")),
            'field "critical.type" is not a string',
        ),
        (
            payload(critical=CRITICAL.replace(DIGEST + '"', DIGEST + '","x":1')),
            'unexpected field "x" in critical.image',
        ),
        (
            payload(critical=CRITICAL.replace(REF + '"', REF + '","docker-reference":"a"')),
            'duplicate key "docker-reference" in critical.identity',
        ),
        (
            payload(critical=CRITICAL.replace('{"docker-reference":"' + REF + '"}', "{}")),
            'missing field "docker-reference" in critical.identity',
        ),
        (
            payload(critical=CRITICAL.replace('"' + REF + '"', "[]")),
            'field "docker-reference" is not a string',
        ),
        (payload(critical="null"), "expected a JSON object in critical, got null"),
        (payload(optional="[]"), "expected a JSON object in optional, got an array"),
        (payload(optional='"x"'), "expected a JSON object in optional, got a string"),
        (payload(optional='{"creator":1}'), 'field "creator" is not a string'),
        (payload(optional='{"critical":1,"critical":2}'), 'duplicate key "critical" in optional'),
        (payload(optional='{"timestamp":1.5}'), "timestamp is not an integer"),
        (payload(optional='{"timestamp":"1"}'), "timestamp is not a number"),
        (payload(optional='{"timestamp":true}'), "timestamp is not a number"),
        (payload(optional='{"timestamp":1e400}'), 'field "timestamp" holds a number out of range'),
        (payload(optional='{"timestamp":9223372036854775808}'), "timestamp is not an integer"),
        (payload(optional='{"other":[1e400]}'), 'field "other" holds a number out of range'),
        (payload(optional='{"other":NaN}'), "NaN is not a JSON value"),
        (payload(optional='{"other":Infinity}'), "Infinity is not a JSON value"),
        (payload(optional='{"other":01}'), "malformed JSON"),
        (payload(optional='{"creator":"a\tb"}'), "malformed JSON"),  # raw control character
        (b"[" * 100_000, "malformed JSON"),
    ],
)
def test_parse_refuses(data: bytes, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_payload(data)
    assert message in caught.value.message


def test_lone_surrogate_escapes_become_u_fffd_like_go() -> None:
    parsed = parse_payload(payload(optional='{"creator":"a\\ud800b","x":"\\udfff"}'))
    assert parsed.creator == "a\ufffdb"
    assert parsed.optional == {"creator": "a\ufffdb", "x": "\ufffd"}
