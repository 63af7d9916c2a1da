"""Requirement evaluation with containers/image's verdicts and reasons (policy_eval_simple.go,
policy_eval_baselayer.go, policy_eval_sigstore.go): signatures made here with a real key,
checked by the real verification code."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from hangar.policy.config import parse_policy
from hangar.policy.context import PolicyContext
from hangar.policy.evaluation import (
    ACCEPTED,
    NO_SIGNATURE,
    REJECTED,
    UNCHECKED,
    Signatures,
    evaluate,
    needs_signatures,
)
from hangar.policy.registries import RegistriesConfig
from hangar.sigstore.attachment import NewSignature, SignatureLayer
from hangar.sigstore.keys import PrivateKey
from hangar.sigstore.payload import build_payload

REPO = "registry.example/ns/app"
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32
KEY = PrivateKey(ec.generate_private_key(ec.SECP256R1()))
OTHER_KEY = PrivateKey(ec.generate_private_key(ec.SECP256R1()))


def pem(key: PrivateKey) -> str:
    return key.public_key().pem().decode()


def signed(identity: str, digest: str = DIGEST, key: PrivateKey = KEY):
    payload = build_payload(identity, digest, creator=None, timestamp=None)
    new = NewSignature(payload, key.sign(payload))
    return new.layer(), payload


def context(requirements: list[dict], scopes: dict | None = None) -> PolicyContext:
    document: dict = {"default": requirements}
    if scopes is not None:
        document["transports"] = {"docker": scopes}
    return PolicyContext(parse_policy(json.dumps(document).encode()), RegistriesConfig(None))


def sigstore(**fields) -> dict:
    data = base64.b64encode(pem(KEY).encode()).decode()
    return {"type": "sigstoreSigned", "keyData": data, **fields}


def verdict(ctx: PolicyContext, image: str, signatures: Signatures | None):
    _, requirements = ctx.requirements_for(image)
    return evaluate(requirements, image, DIGEST, signatures, ctx.keys)


def test_accept_anything_and_reject() -> (
    None
):  # Go: TestPRInsecureAcceptAnything..., TestPRReject...
    image = f"{REPO}:v1"
    assert verdict(context([{"type": "insecureAcceptAnything"}]), image, None).status == ACCEPTED
    rejected = verdict(context([{"type": "reject"}]), image, None)
    assert rejected.status == REJECTED
    assert rejected.reason == f"Running image docker://{image} is rejected by policy."


def test_signed_base_layer_is_rejected_as_c_image_does() -> None:
    ctx = context([{"type": "signedBaseLayer", "baseLayerIdentity": {"type": "matchExact"}}])
    result = verdict(ctx, f"{REPO}:v1", None)
    assert (result.status, result.reason) == (REJECTED, "signedBaseLayer not implemented yet!")


def test_signed_by_is_never_a_pass() -> None:
    ctx = context([{"type": "signedBy", "keyType": "GPGKeys", "keyData": "YWJj"}])
    result = verdict(ctx, f"{REPO}:v1", None)
    assert result.status == UNCHECKED
    assert "not supported by hangar" in result.reason


@pytest.mark.parametrize(
    "extra",
    [{"rekorPublicKeyData": "YWJj"}],
)
def test_rekor_requirement_is_never_a_pass(extra: dict) -> None:
    ctx = context([sigstore(**extra)])
    layer = signed(f"{REPO}:v1")
    result = verdict(ctx, f"{REPO}:v1", Signatures([layer]))
    assert result.status == UNCHECKED
    assert "not checkable by hangar" in result.reason


def test_a_later_reject_wins_over_an_unchecked_requirement() -> None:
    ctx = context(
        [{"type": "signedBy", "keyType": "GPGKeys", "keyData": "YWJj"}, {"type": "reject"}]
    )
    assert verdict(ctx, f"{REPO}:v1", None).status == REJECTED


def test_every_requirement_must_accept() -> None:  # Go: TestPolicyContextIsRunningImageAllowed
    ctx = context([{"type": "insecureAcceptAnything"}, sigstore()])
    assert verdict(ctx, f"{REPO}:v1", Signatures([])).status == REJECTED
    assert verdict(ctx, f"{REPO}:v1", Signatures([signed(f"{REPO}:v1")])).status == ACCEPTED


def test_no_signature() -> None:
    result = verdict(context([sigstore()]), f"{REPO}:v1", Signatures([]))
    assert (result.status, result.reason) == (REJECTED, NO_SIGNATURE)


def test_only_non_signature_attachments() -> None:
    other = SignatureLayer("application/vnd.in-toto+json", "sha256:" + "00" * 32, 2, {}, {})
    result = verdict(context([sigstore()]), f"{REPO}:v1", Signatures([(other, b"{}")]))
    assert result.reason == (
        NO_SIGNATURE + " (0 non-sigstore signatures, 1 sigstore non-signature attachments)"
    )


def test_tag_identity_by_tag_and_by_digest() -> None:
    ctx = context([sigstore()])
    layers = Signatures([signed(f"{REPO}:v1")])
    assert verdict(ctx, f"{REPO}:v1", layers).status == ACCEPTED
    assert verdict(ctx, f"{REPO}@{OTHER_DIGEST}", layers).status == ACCEPTED  # repository match
    wrong_tag = verdict(ctx, f"{REPO}:v2", layers)
    assert wrong_tag.status == REJECTED
    assert "does not match" in wrong_tag.reason


def test_several_refused_signatures_are_all_named() -> None:
    ctx = context([sigstore()])
    layers = Signatures([signed(f"{REPO}:v2"), signed(f"{REPO}:v1", key=OTHER_KEY)])
    result = verdict(ctx, f"{REPO}:v1", layers)
    assert result.reason.startswith("None of the signatures were accepted, reasons: ")
    assert "does not match" in result.reason
    assert "does not verify" in result.reason


def test_signature_for_another_digest() -> None:
    result = verdict(
        context([sigstore()]), f"{REPO}:v1", Signatures([signed(f"{REPO}:v1", OTHER_DIGEST)])
    )
    assert result.status == REJECTED
    assert OTHER_DIGEST in result.reason


def test_unreadable_layer_and_attachments_off() -> None:
    ctx = context([sigstore()])
    good = [signed(f"{REPO}:v1")]
    broken = verdict(ctx, f"{REPO}:v1", Signatures(good, unreadable="layer 2/2 cannot be read"))
    assert (broken.status, broken.reason) == (REJECTED, "layer 2/2 cannot be read")
    off = verdict(ctx, f"{REPO}:v1", Signatures(good, attachments_off_for="registry.example"))
    assert off.status == REJECTED
    assert off.reason.endswith(
        "podman will not look for these signatures: set use-sigstore-attachments: true for "
        "registry.example in registries.d"
    )


def test_scopes_choose_the_requirements() -> None:
    ctx = context(
        [{"type": "reject"}],
        {REPO: [sigstore()], "registry.example": [{"type": "insecureAcceptAnything"}]},
    )
    assert ctx.requirements_for(f"{REPO}:v1")[0] == f'transports.docker."{REPO}"'
    assert (
        ctx.requirements_for("registry.example/other:v1")[0]
        == 'transports.docker."registry.example"'
    )
    assert ctx.requirements_for("elsewhere.example/x:v1")[0] == "default"


@pytest.mark.parametrize(
    ("requirements", "needed"),
    [
        ([{"type": "reject"}, {"type": "sigstoreSigned", "keyData": "YWJj"}], False),
        ([{"type": "insecureAcceptAnything"}], False),
        ([{"type": "insecureAcceptAnything"}, {"type": "sigstoreSigned", "keyData": "YWJj"}], True),
    ],
)
def test_signatures_are_read_only_when_c_image_reads_them(requirements: list, needed: bool) -> None:
    assert needs_signatures(context(requirements).policy.default) is needed


def test_key_paths_any_key_is_enough(tmp_path: Path) -> None:
    other, mine = tmp_path / "other.pub", tmp_path / "mine.pub"
    other.write_text(pem(OTHER_KEY))
    mine.write_text(pem(KEY))
    ctx = context([{"type": "sigstoreSigned", "keyPaths": [str(other), str(mine)]}])
    assert verdict(ctx, f"{REPO}:v1", Signatures([signed(f"{REPO}:v1")])).status == ACCEPTED


def test_unreadable_key_path_rejects_the_image(tmp_path: Path) -> None:
    ctx = context([{"type": "sigstoreSigned", "keyPath": str(tmp_path / "missing.pub")}])
    result = verdict(ctx, f"{REPO}:v1", Signatures([signed(f"{REPO}:v1")]))
    assert result.status == REJECTED
    assert "missing.pub" in result.reason


def test_remap_identity_for_a_mirror() -> None:
    remap = {
        "type": "remapIdentity",
        "prefix": "mirror.example",
        "signedPrefix": "registry.example",
    }
    ctx = context([sigstore(signedIdentity=remap)])
    layers = Signatures([signed(f"{REPO}:v1")])
    assert verdict(ctx, "mirror.example/ns/app:v1", layers).status == ACCEPTED
    assert verdict(ctx, "mirror.example/ns/app:v2", layers).status == REJECTED
