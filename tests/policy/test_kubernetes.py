"""The Kyverno and policy-controller policies `sign policy` prints (hangar.policy.kubernetes):
valid YAML, the key and the scope where each controller reads them, and for bundles what a
no-log key bundle needs (bundles.md sections 9-10)."""

from __future__ import annotations

import yaml
from cryptography.hazmat.primitives.asymmetric import ec

from hangar.policy.kubernetes import render_kubernetes
from hangar.sigstore.keys import PrivateKey

KEY = PrivateKey(ec.generate_private_key(ec.SECP256R1())).public_key()
SCOPE = "registry.example.com:5000/team"


def documents() -> dict[str, dict]:
    blocks = {}
    for block in render_kubernetes(SCOPE, KEY).strip("\n").split("\n\n"):
        heading, _, body = block.partition("\n")
        assert heading.startswith("# ")
        blocks[heading[2:].split(":")[0]] = yaml.safe_load(body)
    return blocks


def test_three_documents_one_per_format_and_controller() -> None:
    assert set(documents()) == {"kyverno-sig", "kyverno-bundle", "policy-controller"}


def test_kyverno_reads_the_sig_with_type_cosign_and_bundles_with_sigstorebundle() -> None:
    for name, kind in (("kyverno-sig", "Cosign"), ("kyverno-bundle", "SigstoreBundle")):
        policy = documents()[name]
        assert policy["apiVersion"] == "kyverno.io/v1"
        assert policy["kind"] == "ClusterPolicy"
        (rule,) = policy["spec"]["rules"]
        (verify,) = rule["verifyImages"]
        assert verify["type"] == kind
        assert verify["imageReferences"] == [f"{SCOPE}/*"]
        (entry,) = verify["attestors"][0]["entries"]
        keys = entry["keys"]
        assert keys["publicKeys"] == KEY.pem().decode().rstrip("\n")
        assert keys["rekor"] == {"ignoreTlog": True}
        # A key bundle with no log has no observer timestamp either: Kyverno needs both.
        assert keys.get("ctlog") == ({"ignoreSCT": True} if kind == "SigstoreBundle" else None)


def test_policy_controller_gets_a_key_authority_without_a_log() -> None:
    policy = documents()["policy-controller"]
    assert policy["apiVersion"] == "policy.sigstore.dev/v1beta1"
    assert policy["kind"] == "ClusterImagePolicy"
    assert policy["spec"]["images"] == [{"glob": f"{SCOPE}/**"}]
    (authority,) = policy["spec"]["authorities"]
    assert authority["key"]["data"].rstrip("\n") == KEY.pem().decode().rstrip("\n")
    assert "ctlog" not in authority and "signatureFormat" not in authority
    assert policy["metadata"]["name"] == "hangar-registry-example-com-5000-team"
