"""The bundle verdict of one digest and the notes on what it means for the other format's
consumers (hangar.operations.bundle_validation), from discoveries built by hand."""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives.asymmetric import ec

from hangar.attachments.bundles import Discovery, FoundBundle
from hangar.operations.bundle_validation import consumer_notes, judge
from hangar.reference import Reference
from hangar.sigstore.bundle import BUNDLE_V03, build_bundle, parse_bundle
from hangar.sigstore.dsse import IN_TOTO_PAYLOAD_TYPE, pae
from hangar.sigstore.keys import PrivateKey

DIGEST = "sha256:" + "12" * 32
REF = Reference("registry.test", "ns/app", "v1", None)
OURS = PrivateKey(ec.generate_private_key(ec.SECP256R1()))
THEIRS = PrivateKey(ec.generate_private_key(ec.SECP256R1()))


def found(key: PrivateKey, referrer: str = "sha256:" + "aa" * 32) -> FoundBundle:
    return FoundBundle(referrer, parse_bundle(build_bundle(key, DIGEST)), "", BUNDLE_V03)


def discovery(*items: FoundBundle) -> Discovery:
    return Discovery("referrers-tag", None, None, items)


def test_a_bundle_of_the_key_passes_and_is_recorded_with_its_key() -> None:
    check = judge(discovery(found(OURS)), DIGEST, [THEIRS.public_key(), OURS.public_key()])
    assert check.passed and check.reason == "accepted"
    (record,) = check.bundles
    assert record["key"] == OURS.public_key().fingerprint
    assert record["predicateType"] == "https://sigstore.dev/cosign/sign/v1"
    assert consumer_notes(REF, DIGEST, True, check) == []


def test_another_keys_bundle_springs_cosign_v3s_trap_on_a_valid_sig() -> None:
    check = judge(discovery(found(THEIRS)), DIGEST, [OURS.public_key()])
    assert not check.passed
    assert check.reason.startswith("no bundle verifies with the key(s) given: the DSSE")
    (note,) = consumer_notes(REF, DIGEST, True, check)
    assert note.startswith("cosign v3 `verify --key` fails here although the .sig")
    assert consumer_notes(REF, DIGEST, False, check) == []  # nothing passes anyway


def test_a_bundle_only_digest_is_invisible_to_podman() -> None:
    check = judge(discovery(found(OURS)), DIGEST, [OURS.public_key()])
    (note,) = consumer_notes(REF, DIGEST, False, check)
    assert note.startswith("only a bundle verifies: podman, CRI-O")


def test_an_unreadable_bundle_referrer_is_named_for_kyverno() -> None:
    broken = FoundBundle("sha256:" + "bb" * 32, None, "unknown field 'x'", BUNDLE_V03)
    sbom = FoundBundle("sha256:" + "cc" * 32, None, "not a bundle", "application/spdx+json")
    check = judge(discovery(found(OURS), broken, sbom), DIGEST, [OURS.public_key()])
    assert check.passed
    assert check.unreadable_bundles == ["sha256:" + "bb" * 32]  # the SBOM is not one
    (note,) = consumer_notes(REF, DIGEST, True, check)
    assert note.startswith("Kyverno type SigstoreBundle fails on this digest")


def test_an_attestation_bundle_passes_as_cosign_takes_it_and_says_so() -> None:
    document = json.loads(build_bundle(OURS, DIGEST))
    statement = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    statement["predicateType"] = "https://slsa.dev/provenance/v1"
    payload = json.dumps(statement).encode()
    signature = OURS.sign(pae(IN_TOTO_PAYLOAD_TYPE, payload))
    document["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    document["dsseEnvelope"]["signatures"] = [{"sig": base64.b64encode(signature).decode()}]
    attestation = FoundBundle(
        "sha256:" + "dd" * 32, parse_bundle(json.dumps(document).encode()), "", BUNDLE_V03
    )
    check = judge(discovery(attestation), DIGEST, [OURS.public_key()])
    assert check.passed
    assert "an attestation bundle (predicate https://slsa.dev/provenance/v1)" in check.reason


def test_no_referrers_at_all() -> None:
    check = judge(discovery(), DIGEST, [OURS.public_key()])
    assert not check.passed and check.reason == "no bundle (no referrers tag)"
