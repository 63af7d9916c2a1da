"""The bundle format (hangar.sigstore.dsse, .statement, .bundle, .referrers), pure: what hangar
writes, field by field as cosign v3 `sign --key` writes it with no log (bundles.md), and what
the strict reader and the cosign v3 `verify --key --insecure-ignore-tlog` check refuse."""

from __future__ import annotations

import base64
import hashlib
import json

import betterproto
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from sigstore_protobuf_specs.dev.sigstore.bundle.v1 import Bundle as ModelBundle

from hangar.sigstore.bundle import (
    BUNDLE_V03,
    build_bundle,
    key_hint,
    parse_bundle,
    verify_bundle,
)
from hangar.sigstore.dsse import pae, ssh_keyid
from hangar.sigstore.keys import PrivateKey
from hangar.sigstore.protojson import ProtoJsonError
from hangar.sigstore.statement import build_statement, parse_statement
from tests.support.bundles import dsse_verifies
from tests.support.paths import DATA

DIGEST = "sha256:" + "0123456789abcdef" * 4
KEY = PrivateKey(ec.generate_private_key(ec.SECP256R1()))
OTHER = PrivateKey(ec.generate_private_key(ec.SECP256R1()))
COSIGN_VECTOR = DATA / "bundles" / "cosign-oci-attestation.sigstore.json"


def resign(document: dict, statement: bytes, key: PrivateKey = KEY, **signature) -> bytes:
    envelope = document["dsseEnvelope"]
    envelope["payload"] = base64.b64encode(statement).decode()
    sig = key.sign(pae(envelope["payloadType"], statement))
    envelope["signatures"] = [{"sig": base64.b64encode(sig).decode(), **signature}]
    return json.dumps(document).encode()


def fresh() -> dict:
    return json.loads(build_bundle(KEY, DIGEST))


# -- what is written -----------------------------------------------------------------------


def test_pae_is_the_dsse_v1_encoding() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )  # the DSSE specification's own example (protocol.md)


def test_the_statement_is_cosign_v3_signs_with_no_annotations() -> None:
    statement = build_statement(DIGEST)
    assert statement == (
        b'{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"'
        + DIGEST.split(":")[1].encode()
        + b'"},"annotations":{}}],"predicateType":"https://sigstore.dev/cosign/sign/v1",'
        b'"predicate":{}}'
    )


def test_the_bundle_has_cosign_v3s_fields_and_nothing_else() -> None:
    data = build_bundle(KEY, DIGEST)
    document = json.loads(data)
    assert list(document) == ["mediaType", "verificationMaterial", "dsseEnvelope"]
    assert document["mediaType"] == BUNDLE_V03
    spki = KEY.public_key().der()
    hint = base64.b64encode(hashlib.sha256(spki).digest()).decode()
    assert document["verificationMaterial"] == {"publicKey": {"hint": hint}}
    assert key_hint(KEY.public_key()) == hint
    envelope = document["dsseEnvelope"]
    assert list(envelope) == ["payload", "payloadType", "signatures"]
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    assert base64.b64decode(envelope["payload"]) == build_statement(DIGEST)
    (signature,) = envelope["signatures"]
    assert list(signature) == ["sig"]  # no keyid
    decode_dss_signature(base64.b64decode(signature["sig"]))  # DER, as podman-era verifiers want
    # The protobuf-specs model reads it back unchanged.
    model = ModelBundle.from_dict(document)
    assert model.to_dict() == document
    assert betterproto.which_one_of(model, "content")[0] == "dsse_envelope"


def test_an_implementation_other_than_hangars_verifies_the_dsse_signature(tmp_path) -> None:
    pem = tmp_path / "key.pub"
    pem.write_bytes(KEY.public_key().pem())
    envelope = fresh()["dsseEnvelope"]
    assert dsse_verifies(envelope, pem)
    other = tmp_path / "other.pub"
    other.write_bytes(OTHER.public_key().pem())
    assert not dsse_verifies(envelope, other)


def test_the_dsse_keyid_cosign_would_compare_is_the_ssh_wire_sha256() -> None:
    line = KEY.public_key()._key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    wire = base64.b64decode(line.split()[1])
    assert ssh_keyid(KEY.public_key().der()) == hashlib.sha256(wire).hexdigest()


# -- verification as cosign v3 verify --key --insecure-ignore-tlog -------------------------


def verdict(data: bytes, digest: str = DIGEST, key: PrivateKey = KEY):
    return verify_bundle(parse_bundle(data), digest, key.public_key())


def test_our_bundle_verifies_with_our_key_only_and_for_its_digest_only() -> None:
    data = build_bundle(KEY, DIGEST)
    assert verdict(data).is_signature
    assert verdict(data, key=OTHER).reason == "the DSSE signature does not verify with this key"
    wrong = "sha256:" + "f" * 64
    assert verdict(data, wrong).reason == f"the statement's subject is not {wrong}"


def test_the_hint_is_not_what_decides() -> None:
    document = fresh()
    document["verificationMaterial"]["publicKey"]["hint"] = "c29tZXRoaW5nIGVsc2U="
    assert verdict(json.dumps(document).encode()).accepted  # cosign ignores the hint


def test_an_uppercase_subject_digest_fails_cosigns_claim_check() -> None:
    statement = build_statement(DIGEST).replace(
        DIGEST.split(":")[1].encode(), DIGEST.split(":")[1].upper().encode()
    )
    data = resign(fresh(), statement)
    assert not verdict(data).accepted


def test_a_foreign_keyid_is_skipped_and_the_right_one_is_accepted() -> None:
    statement = build_statement(DIGEST)
    foreign = resign(fresh(), statement, keyid="not-this-key")
    assert "names another key id" in verdict(foreign).reason
    keyid = ssh_keyid(KEY.public_key().der())
    assert verdict(resign(fresh(), statement, keyid=keyid)).accepted


def test_raw_r_s_signatures_pass_as_sigstore_1_10_takes_them() -> None:
    document = fresh()
    statement = build_statement(DIGEST)
    der = KEY.sign(pae("application/vnd.in-toto+json", statement))
    r, s = decode_dss_signature(der)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    document["dsseEnvelope"]["signatures"] = [{"sig": base64.b64encode(raw).decode()}]
    assert verdict(json.dumps(document).encode()).accepted


def test_an_attestation_bundle_passes_cosign_but_is_not_a_signature_for_hangar() -> None:
    statement = json.loads(build_statement(DIGEST))
    statement["predicateType"] = "https://slsa.dev/provenance/v1"
    result = verdict(resign(fresh(), json.dumps(statement).encode()))
    assert result.accepted and not result.is_signature


def test_two_signatures_or_another_payload_type_fail() -> None:
    document = fresh()
    document["dsseEnvelope"]["signatures"] *= 2
    assert "2 signatures" in verdict(json.dumps(document).encode()).reason
    document = fresh()
    document["dsseEnvelope"]["payloadType"] = "application/json"
    statement = build_statement(DIGEST)
    assert "not in-toto" in verdict(resign(document, statement)).reason


# -- the strict reader ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(extra=1), "unknown field 'extra'"),
        (lambda d: d["verificationMaterial"].update(certificate={"rawBytes": "AA=="}), "only one"),
        (lambda d: d.update(messageSignature={"signature": "AA=="}), "only one of"),
        (lambda d: d.update(mediaType="application/vnd.dev.sigstore.bundle.v0.4+json"), "v0.4"),
        (lambda d: d["dsseEnvelope"].update(payload="!!"), "is not base64"),
        (lambda d: d["verificationMaterial"].pop("publicKey"), "holds no key"),
        (lambda d: d.pop("dsseEnvelope"), "neither a dsseEnvelope"),
        (lambda d: d.pop("verificationMaterial"), "no verificationMaterial"),
        (
            lambda d: d["verificationMaterial"].update(
                tlogEntries=[{"logIndex": "1", "kindVersion": {"kind": "dsse", "version": "0.0.1"}}]
            ),
            "no inclusionProof",
        ),
        (lambda d: d["dsseEnvelope"]["signatures"][0].update(key="x"), "unknown field 'key'"),
    ],
)
def test_what_protojson_and_sigstore_go_refuse_is_refused(mutate, message: str) -> None:
    document = fresh()
    mutate(document)
    with pytest.raises(ProtoJsonError, match=message):
        parse_bundle(json.dumps(document).encode())


def test_a_field_given_twice_in_either_spelling_is_refused() -> None:
    data = build_bundle(KEY, DIGEST).replace(b'"mediaType"', b'"media_type":"x","mediaType"', 1)
    with pytest.raises(ProtoJsonError, match="given twice"):
        parse_bundle(data)
    data = build_bundle(KEY, DIGEST)[:-1] + b',"mediaType":"x"}'
    with pytest.raises(ProtoJsonError, match="given twice"):
        parse_bundle(data)


def test_snake_case_names_url_base64_and_no_padding_are_read_as_protojson_reads_them() -> None:
    document = fresh()
    envelope = document.pop("dsseEnvelope")
    envelope["payload"] = base64.urlsafe_b64encode(base64.b64decode(envelope["payload"]))
    envelope["payload"] = envelope["payload"].decode().rstrip("=")
    document["dsse_envelope"] = envelope
    document["verification_material"] = document.pop("verificationMaterial")
    assert verdict(json.dumps(document).encode()).is_signature


def test_the_statement_reader_is_strict_too() -> None:
    statement = json.loads(build_statement(DIGEST))
    for bad, message in (
        ({**statement, "extra": 1}, "unknown field"),
        ({**statement, "predicate": []}, "predicate is not a JSON object"),
        ({**statement, "subject": [{"digest": {"sha256": "xyz"}}]}, "is not hex"),
        ({**statement, "type": "x"}, "given twice"),
    ):
        with pytest.raises(ProtoJsonError, match=message):
            parse_statement(json.dumps(bad).encode())


def test_cosigns_own_bundle_reads_field_by_field_as_the_protobuf_specs_model_reads_it() -> None:
    data = COSIGN_VECTOR.read_bytes()
    ours = parse_bundle(data)
    model = ModelBundle.from_dict(json.loads(data))
    assert ours.media_type == model.media_type == BUNDLE_V03
    assert ours.material == "certificate"
    assert betterproto.which_one_of(model.verification_material, "content")[0] == "certificate"
    assert ours.tlog_entries == len(model.verification_material.tlog_entries) == 1
    assert ours.public_key_hint is None
    assert ours.envelope is not None and model.dsse_envelope is not None
    assert ours.envelope.payload == model.dsse_envelope.payload
    assert ours.envelope.payload_type == model.dsse_envelope.payload_type
    assert [s.sig for s in ours.envelope.signatures] == [
        s.sig for s in model.dsse_envelope.signatures
    ]
    statement = parse_statement(ours.envelope.payload)
    assert statement.predicate_type == "https://cosign.sigstore.dev/attestation/v1"
    subject = "sha256:" + statement.subjects[0].digest["sha256"]
    # A keyless bundle never passes a key policy (cosign: "a certificate, not a public key").
    result = verify_bundle(ours, subject, KEY.public_key())
    assert result.reason == "the bundle holds a certificate, not a public key"
