"""RFC 7512 PKCS#11 URIs as cosign writes them, and the redaction that hides a pin-value."""

from __future__ import annotations

import pytest

from hangar.errors import KeyFileError
from hangar.keys.backends import describe, is_uri
from hangar.keys.uri import parse, redact, redact_arguments

SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so"


def test_cosigns_form_parses_into_token_object_module_and_pin() -> None:
    uri = parse(f"pkcs11:token=release;object=signing?module-path={SOFTHSM}&pin-value=1234")
    assert (uri.token, uri.object, uri.module_path, uri.pin_value) == (
        "release",
        "signing",
        SOFTHSM,
        "1234",
    )
    assert uri.id is None and uri.slot_id is None and uri.serial is None


def test_percent_encoded_values_are_bytes_for_id_and_text_elsewhere() -> None:
    uri = parse("pkcs11:token=My%20Token;id=%4a%01%ff;slot-id=7;serial=ab%3Bcd")
    assert uri.token == "My Token"
    assert uri.id == b"\x4a\x01\xff"
    assert uri.slot_id == 7
    assert uri.serial == "ab;cd"
    assert uri.selects_key() == "id=%4a%01%ff"
    assert str(uri) == "pkcs11:token=My%20Token;id=%4a%01%ff;slot-id=7;serial=ab%3Bcd"


def test_pin_source_is_read_and_pin_value_never_shown() -> None:
    uri = parse("pkcs11:token=t;object=k?pin-source=file:/run/secrets/pin")
    assert uri.pin_source == "file:/run/secrets/pin" and uri.pin_value is None
    secret = parse("pkcs11:token=t;object=k?pin-value=s3cret&module-path=/m.so")
    assert "s3cret" not in str(secret) and "s3cret" not in repr(secret)
    assert str(secret) == "pkcs11:token=t;object=k?pin-value=***&module-path=/m.so"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("pkcs11:token=t;objcet=k", "unknown attribute objcet="),
        ("pkcs11:token=t;module-path=/m.so", "module-path= belongs in the query (after ?) part"),
        ("pkcs11:token=t?object=k", "object= belongs in the path (before ?) part"),
        ("pkcs11:token=t;token=u", "token= is given twice"),
        ("pkcs11:token", '"token" is not NAME=VALUE'),
        ("pkcs11:slot-id=zero", "slot-id=zero is not a number"),
        ("pkcs11:type=key", "type=key is not one of"),
        ("pkcs11:token=t?pin-value=1&pin-source=file:/p", "both pin-value and pin-source"),
        ("pkcs11:slot-description=SoftHSM", "does not choose tokens by slot-description="),
    ],
)
def test_a_malformed_uri_is_refused_with_what_to_fix(text: str, needle: str) -> None:
    with pytest.raises(KeyFileError) as caught:
        parse(text)
    assert needle in str(caught.value)
    assert caught.value.hint


def test_an_error_about_a_uri_never_shows_its_pin() -> None:
    with pytest.raises(KeyFileError) as caught:
        parse("pkcs11:token=t;bogus=1?pin-value=topsecret")
    assert "topsecret" not in str(caught.value) and "pin-value=***" in str(caught.value)


def test_redaction_covers_every_place_a_pin_value_can_sit_in_argv() -> None:
    argv = [
        "sign",
        "-k",
        "pkcs11:token=t?pin-value=1234&module-path=/m.so",
        "--sigstore-key=pkcs11:token=t?module-path=/m.so&PIN-VALUE=abcd",
        "-p",
        "plain.pub",
    ]
    redacted = redact_arguments(argv)
    assert redacted == [
        "sign",
        "-k",
        "pkcs11:token=t?pin-value=***&module-path=/m.so",
        "--sigstore-key=pkcs11:token=t?module-path=/m.so&PIN-VALUE=***",
        "-p",
        "plain.pub",
    ]
    assert redact("no pin here") == "no pin here"


def test_uris_and_files_are_told_apart() -> None:
    assert is_uri("pkcs11:token=t") and is_uri("PKCS11:token=t") and is_uri("awskms:///k")
    assert not is_uri("keys/cosign.key") and not is_uri("pkcs11.key")
    assert describe("pkcs11:token=t?pin-value=9") == "pkcs11:token=t?pin-value=***"
