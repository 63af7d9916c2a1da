"""policy.json parsing strictness, ported from containers/image's signature/policy_config_test.go
and policy_config_sigstore_test.go (the Go test name beside each case), and its
fixtures/policy.json.

The Go tests start from a valid object and break it one way at a time (breakFns, invalidObjects,
duplicateFields); here each broken variant is put where it lives in a policy.json and must be
refused with PolicyError, and each allowed variant must parse.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from hangar.policy.config import PolicyError, load_policy, parse_policy
from hangar.policy.requirements import (
    InsecureAcceptAnything,
    Reject,
    SignedBaseLayer,
    SignedBy,
    SigstoreSigned,
)
from tests.support.paths import CIMAGE_FIXTURES

Edit = Callable[[dict[str, Any]], None]

SIGNED_BY = {  # xNewPRSignedByKeyData(SBKeyTypeGPGKeys, []byte("abc"), MatchRepoDigestOrExact)
    "type": "signedBy",
    "keyType": "GPGKeys",
    "keyData": "YWJj",
    "signedIdentity": {"type": "matchRepoDigestOrExact"},
}
SIGSTORE = {  # NewPRSigstoreSignedKeyData([]byte("abc"), NewPRMMatchRepoDigestOrExact())
    "type": "sigstoreSigned",
    "keyData": "YWJj",
    "signedIdentity": {"type": "matchRepoDigestOrExact"},
}
POLICY = {  # TestPolicyUnmarshalJSON's valid object
    "default": [SIGNED_BY],
    "transports": {
        "docker": {
            "docker.io/library/busybox": [dict(SIGNED_BY, keyData="ZGVm")],
            "registry.access.redhat.com": [
                dict(
                    SIGNED_BY, keyType="signedByGPGKeys", signedIdentity={"type": "matchRepository"}
                )
            ],
        },
        "atomic": {"registry.access.redhat.com/rhel7": [SIGNED_BY]},
        "unknown": {"registry.access.redhat.com/rhel7": [SIGNED_BY]},
    },
}


def parse(document: Any) -> Any:
    return parse_policy(json.dumps(document).encode())


def edited(base: dict[str, Any], edit: Edit) -> dict[str, Any]:
    value = copy.deepcopy(base)
    edit(value)
    return value


def as_default(requirement: Any) -> dict[str, Any]:
    return {"default": [requirement]}


def as_identity(identity: Any) -> dict[str, Any]:
    return as_default(dict(SIGSTORE, signedIdentity=identity))


def with_duplicate(encoded: str, name: str, value: Any) -> bytes:
    """addExtraJSONMember: the same member once more at the end of the object."""
    assert encoded.endswith("}")
    return f"{encoded[:-1]},{json.dumps(name)}:{json.dumps(value)}}}".encode()


def refused(data: bytes) -> None:
    with pytest.raises(PolicyError):
        parse_policy(data)


# --- fixtures/policy.json ----------------------------------------------------------------------


def test_fixture_policy() -> None:  # Go: TestNewPolicyFromFile, TestDefaultPolicy (success)
    policy = load_policy(CIMAGE_FIXTURES / "policy.json")
    assert policy.default == (Reject(),)
    assert policy.transports["dir"][""] == (InsecureAcceptAnything(),)
    docker = policy.docker
    assert docker is not None
    assert len(docker) == 14
    assert docker["example.com/playground"] == (InsecureAcceptAnything(),)
    hardened = docker["example.com/hardened"]
    assert [type(r) for r in hardened] == [SignedBy, SignedBy, SignedBaseLayer]
    assert hardened[0].identity.name == "matchRepository"  # type: ignore[union-attr]
    assert hardened[2].identity.name == "exactRepository"  # type: ignore[union-attr]
    remap = docker["private-mirror:5000/vendor-mirror"][0]
    assert remap.identity.remap == ("private-mirror:5000/vendor-mirror", "vendor.example.com")  # type: ignore[union-attr]
    key_data = docker["example.com/sigstore/key-data-example"][0]
    assert isinstance(key_data, SigstoreSigned)
    assert key_data.key_datas == (b"nonsense",)
    assert key_data.identity.name == "matchRepoDigestOrExact"
    key_path = docker["example.com/sigstore/key-path-example"][0]
    assert isinstance(key_path, SigstoreSigned)
    assert key_path.key_paths == ("/keys/public-key",)
    assert key_path.identity.name == "matchRepository"


@pytest.mark.parametrize("data", [b"", b"&", b"1", b"[]", b'"x"'])
def test_not_a_policy_object(data: bytes) -> None:
    # Go: TestNewPolicyFromBytes ("" fails), testInvalidJSONInput ("&", "1")
    refused(data)


def test_unreadable_policy_file_names_the_file(tmp_path) -> None:  # Go: TestNewPolicyFromFile
    with pytest.raises(PolicyError, match=r"cannot read policy file .*does-not-exist"):
        load_policy(tmp_path / "does-not-exist")


# --- the policy object -------------------------------------------------------------------------


def test_policy_valid() -> None:  # Go: TestPolicyUnmarshalJSON (success)
    policy = parse(POLICY)
    assert isinstance(policy.default[0], SignedBy)
    assert set(policy.transports) == {"docker", "atomic", "unknown"}


@pytest.mark.parametrize(
    "edit",
    [
        # Go: TestPolicyUnmarshalJSON breakFns
        lambda v: v.pop("default"),  # "default" missing
        lambda v: v.update(unexpected=1),  # extra top-level sub-object
        lambda v: v.update(default=1),  # "default" not an array
        lambda v: v.update(default={}),
        lambda v: v.update(transports=1),  # "transports" not an object
        lambda v: v.update(transports=[]),
        lambda v: v.update(default=[]),  # "default" an invalid (empty) PolicyRequirements
    ],
)
def test_policy_broken(edit: Edit) -> None:
    refused(json.dumps(edited(POLICY, edit)).encode())


@pytest.mark.parametrize("field", ["default", "transports"])
def test_policy_duplicate_field(field: str) -> None:  # Go: TestPolicyUnmarshalJSON duplicates
    refused(with_duplicate(json.dumps(POLICY), field, POLICY[field]))


@pytest.mark.parametrize(
    "edit",
    [
        lambda v: v.pop("transports"),  # Go: TestPolicyUnmarshalJSON allowed: no transports
        lambda v: v.update(transports={}),  # an empty map of transports
    ],
)
def test_policy_allowed_changes(edit: Edit) -> None:
    assert parse(edited(POLICY, edit)).transports == {}


# --- transport scopes --------------------------------------------------------------------------

SCOPES = {  # TestPolicyTransportScopesWithTransportUnmarshalJSON's valid docker scopes
    "docker.io/library/busybox": [SIGNED_BY],
    "registry.access.redhat.com": [SIGNED_BY],
    "": [SIGNED_BY],
}


def in_docker(scopes: dict[str, Any]) -> dict[str, Any]:
    return {"default": [{"type": "reject"}], "transports": {"docker": scopes}}


@pytest.mark.parametrize(
    "edit",
    [
        # Go: TestPolicyTransportScopesWithTransportUnmarshalJSON breakFns
        lambda v: v.update({"docker.io/library/busybox": 1}),  # a scope is not an array
        lambda v: v.update({"docker.io/library/busybox": {}}),
        lambda v: v.update({"": 1}),
        lambda v: v.update({"": {}}),
        lambda v: v.update({"docker.io/library/busybox": []}),  # an invalid PolicyRequirements
        lambda v: v.update({"": []}),
    ],
)
def test_scopes_broken(edit: Edit) -> None:
    refused(json.dumps(in_docker(edited(SCOPES, edit))).encode())


@pytest.mark.parametrize("scope", ["docker.io/library/busybox", ""])
def test_scopes_duplicate(scope: str) -> None:  # Go: ...WithTransportUnmarshalJSON duplicates
    encoded = json.dumps(in_docker(SCOPES))
    inner = json.dumps(SCOPES)
    duplicated = with_duplicate(inner, scope, [SIGNED_BY]).decode()
    refused(encoded.replace(inner, duplicated).encode())


@pytest.mark.parametrize("edit", [lambda v: v.pop(""), lambda v: v.clear()])
def test_scopes_allowed_changes(edit: Edit) -> None:
    # Go: ...WithTransportUnmarshalJSON allowed: no "" scope; no scope at all
    assert parse(in_docker(edited(SCOPES, edit))).docker is not None


# --- requirement lists and types ---------------------------------------------------------------


@pytest.mark.parametrize(
    "requirements",
    [
        [],  # Go: TestPolicyRequirementsUnmarshalJSON: no requirements
        [1],  # a member is not an object
        [{"type": "this is invalid"}],  # a member has an invalid type
        [dict(SIGNED_BY, keyType="this is invalid")],  # valid type, invalid contents
    ],
)
def test_requirements_broken(requirements: list[Any]) -> None:
    refused(json.dumps({"default": requirements}).encode())


@pytest.mark.parametrize(
    "requirement",
    [
        1,  # Go: TestNewPolicyRequirementFromJSON: not an object
        {},  # missing type
        {"type": "this is invalid"},  # invalid type
        dict(SIGNED_BY, keyType="this is invalid"),  # valid type but invalid contents
    ],
)
def test_requirement_from_json_broken(requirement: Any) -> None:
    refused(json.dumps(as_default(requirement)).encode())


@pytest.mark.parametrize("kind", ["insecureAcceptAnything", "reject"])
@pytest.mark.parametrize(
    "requirement",
    [
        {},  # Go: TestPRInsecureAcceptAnythingUnmarshalJSON / TestPRRejectUnmarshalJSON: no type
        {"type": 1},  # wrong type
        {"type": "this is invalid"},
        {"type": "KIND", "unknown": "foo"},  # extra fields
    ],
)
def test_simple_requirements_broken(kind: str, requirement: dict[str, Any]) -> None:
    if requirement.get("type") == "KIND":
        requirement = dict(requirement, type=kind)
    refused(json.dumps(as_default(requirement)).encode())


@pytest.mark.parametrize("kind", ["insecureAcceptAnything", "reject"])
def test_simple_requirements(kind: str) -> None:
    # Go: TestPRInsecureAcceptAnythingUnmarshalJSON / TestPRRejectUnmarshalJSON: success, dup
    parsed = parse(as_default({"type": kind})).default[0]
    assert parsed == (InsecureAcceptAnything() if kind != "reject" else Reject())
    refused(as_default_bytes(with_duplicate(json.dumps({"type": kind}), "type", kind)))


def as_default_bytes(requirement: bytes) -> bytes:
    return b'{"default":[' + requirement + b"]}"


# --- signedBy ----------------------------------------------------------------------------------

SIGNED_BY_BREAKS: list[Edit] = [
    # Go: TestPRSignedByUnmarshalJSON breakFns
    lambda v: v.pop("type"),
    lambda v: v.update(type=1),
    lambda v: v.update(type="this is invalid"),
    lambda v: v.update(unexpected=1),
    lambda v: v.pop("keyType"),
    lambda v: v.update(keyType="this is invalid"),
    lambda v: v.pop("keyData"),  # none of keyPath, keyPaths, keyData
    lambda v: v.update(keyPath="/foo/bar", keyPaths=["/1", "/2"]),  # all three
    lambda v: (v.update(keyPath="/foo/bar", keyPaths=["/1", "/2"]), v.pop("keyData")),  # two
    lambda v: v.update(keyPath="/foo/bar"),
    lambda v: v.update(keyPaths=["/1", "/2"]),
    lambda v: (v.pop("keyData"), v.update(keyPath=1)),  # invalid keyPath
    lambda v: (v.pop("keyData"), v.update(keyPaths=1)),  # invalid keyPaths
    lambda v: (v.pop("keyData"), v.update(keyPaths=[1])),
    lambda v: v.update(keyData=1),  # invalid keyData
    lambda v: v.update(keyData="this is invalid base64"),
    lambda v: v.update(signedIdentity="this is invalid"),
    lambda v: v.update(signedIdentity=None),  # an explicit null
    # Go: TestSBKeyTypeUnmarshalJSON: "" is not a key type
    lambda v: v.update(keyType=""),
]


@pytest.mark.parametrize("edit", SIGNED_BY_BREAKS)
def test_signed_by_broken(edit: Edit) -> None:
    refused(json.dumps(as_default(edited(SIGNED_BY, edit))).encode())


@pytest.mark.parametrize("field", ["type", "keyType", "keyData", "signedIdentity"])
def test_signed_by_duplicate(field: str) -> None:  # Go: TestPRSignedByUnmarshalJSON duplicates
    refused(as_default_bytes(with_duplicate(json.dumps(SIGNED_BY), field, SIGNED_BY[field])))


@pytest.mark.parametrize(
    "edit",
    [
        # Go: TestPRSignedByUnmarshalJSON: keyPath and keyPaths variants, no signedIdentity
        lambda v: (v.pop("keyData"), v.update(keyPath="/foo/bar")),
        lambda v: (v.pop("keyData"), v.update(keyPaths=["/1", "/2"])),
        lambda v: v.pop("signedIdentity"),
    ],
)
@pytest.mark.parametrize(
    "key_type", ["GPGKeys", "signedByGPGKeys", "X509Certificates", "signedByX509CAs"]
)  # Go: TestSBKeyTypeIsValid
def test_signed_by_allowed(edit: Edit, key_type: str) -> None:
    parsed = parse(as_default(edited(dict(SIGNED_BY, keyType=key_type), edit))).default[0]
    assert isinstance(parsed, SignedBy)
    assert parsed.key_type == key_type
    assert parsed.identity.name == "matchRepoDigestOrExact"  # the default when absent


# --- signedBaseLayer ---------------------------------------------------------------------------

BASE_LAYER = {
    "type": "signedBaseLayer",
    "baseLayerIdentity": {
        "type": "exactReference",
        "dockerReference": "registry.access.redhat.com/rhel7/rhel:7.2.3",
    },
}


@pytest.mark.parametrize(
    "edit",
    [
        # Go: TestPRSignedBaseLayerUnmarshalJSON breakFns
        lambda v: v.pop("type"),
        lambda v: v.update(type=1),
        lambda v: v.update(type="this is invalid"),
        lambda v: v.update(unexpected=1),
        lambda v: v.pop("baseLayerIdentity"),
        lambda v: v.update(baseLayerIdentity="this is invalid"),
        lambda v: v.update(baseLayerIdentity=None),
    ],
)
def test_signed_base_layer_broken(edit: Edit) -> None:
    refused(json.dumps(as_default(edited(BASE_LAYER, edit))).encode())


def test_signed_base_layer() -> None:  # Go: TestPRSignedBaseLayerUnmarshalJSON success, dup
    assert isinstance(parse(as_default(BASE_LAYER)).default[0], SignedBaseLayer)
    for field in ("type", "baseLayerIdentity"):
        refused(as_default_bytes(with_duplicate(json.dumps(BASE_LAYER), field, BASE_LAYER[field])))


# --- sigstoreSigned ----------------------------------------------------------------------------

FULCIO = {"caPath": "/foo/baz", "oidcIssuer": "https://example.com", "subjectEmail": "a@b.c"}
PKI = {"caRootsPath": "/foo/bar", "caIntermediatesPath": "/foo/baz", "subjectHostname": "x.com"}


def without_key(v: dict[str, Any], **fields: Any) -> None:
    v.pop("keyData")
    v.update(fields)


SIGSTORE_BREAKS: list[Edit] = [
    # Go: TestPRSigstoreSignedUnmarshalJSON breakFns
    lambda v: v.pop("type"),
    lambda v: v.update(type=1),
    lambda v: v.update(type="this is invalid"),
    lambda v: v.update(unexpected=1),
    lambda v: v.pop("keyData"),  # no key source at all
    lambda v: v.update(keyPath="/foo/bar"),  # keyPath and keyData
    lambda v: v.update(keyPaths=["/foo/bar", "/foo/baz"]),  # keyPaths and keyData
    lambda v: v.update(keyDatas=["YWJj", "ZGVm"]),  # keyData and keyDatas
    lambda v: v.update(fulcio=FULCIO),  # keyData and fulcio
    lambda v: v.update(pki=PKI),  # keyData and pki
    lambda v: without_key(v, keyPath=1),
    lambda v: without_key(v, keyPaths=1),
    lambda v: without_key(v, keyPaths={}),
    lambda v: without_key(v, keyPaths=[]),
    lambda v: v.update(keyData=1),
    lambda v: v.update(keyData="this is invalid base64"),
    lambda v: without_key(v, keyDatas=1),
    lambda v: without_key(v, keyDatas={}),
    lambda v: without_key(v, keyDatas=[]),
    lambda v: without_key(v, fulcio=1),
    lambda v: without_key(v, fulcio={}),
    lambda v: without_key(v, fulcio=None),
    lambda v: without_key(v, pki=1),
    lambda v: without_key(v, pki={}),
    lambda v: without_key(v, pki=None),
    lambda v: v.update(rekorPublicKeyPath="/foo/baz", rekorPublicKeyData=""),
    lambda v: v.update(rekorPublicKeyPath=1),
    lambda v: v.update(rekorPublicKeyPath="/foo/baz", rekorPublicKeyPaths=["/baz/a", "/baz/b"]),
    lambda v: v.update(rekorPublicKeyPaths=1),
    lambda v: v.update(rekorPublicKeyPaths={}),
    lambda v: v.update(rekorPublicKeyPaths=[]),
    lambda v: v.update(rekorPublicKeyData=1),
    lambda v: v.update(rekorPublicKeyData="this is invalid base64"),
    lambda v: v.update(rekorPublicKeyData="YQ==", rekorPublicKeyDatas=["YQ==", "Yg=="]),
    lambda v: v.update(rekorPublicKeyDatas=1),
    lambda v: v.update(rekorPublicKeyDatas={}),
    lambda v: v.update(rekorPublicKeyDatas=[]),
    lambda v: v.update(signedIdentity="this is invalid"),
    lambda v: v.update(signedIdentity=None),
    # Go: TestNewPRSigstoreSigned: fulcio without Rekor; pki with Rekor
    lambda v: without_key(v, fulcio=FULCIO),
    lambda v: without_key(v, pki=PKI, rekorPublicKeyPath="/foo/rekor"),
]


@pytest.mark.parametrize("edit", SIGSTORE_BREAKS)
def test_sigstore_signed_broken(edit: Edit) -> None:
    refused(json.dumps(as_default(edited(SIGSTORE, edit))).encode())


@pytest.mark.parametrize(
    ("edit", "duplicates"),
    [
        # Go: TestPRSigstoreSignedUnmarshalJSON: the valid variants and their duplicateFields
        (lambda v: None, ["type", "keyData", "signedIdentity"]),
        (lambda v: without_key(v, keyPath="/foo/bar"), ["type", "keyPath", "signedIdentity"]),
        (lambda v: without_key(v, keyPaths=["/1", "/2"]), ["type", "keyPaths", "signedIdentity"]),
        (lambda v: without_key(v, keyDatas=["YWJj", "ZGVm"]), ["keyDatas"]),
        (
            lambda v: without_key(v, fulcio=FULCIO, rekorPublicKeyPath="/foo/rekor"),
            ["fulcio", "rekorPublicKeyPath"],
        ),
        (lambda v: v.update(rekorPublicKeyPaths=["/a", "/b"]), ["rekorPublicKeyPaths"]),
        (lambda v: v.update(rekorPublicKeyData="YWJj"), ["rekorPublicKeyData"]),
        (lambda v: v.update(rekorPublicKeyDatas=["YWJj"]), ["rekorPublicKeyDatas"]),
        (lambda v: without_key(v, pki=PKI), ["pki", "signedIdentity"]),
        (lambda v: v.pop("signedIdentity"), ["type"]),  # allowed: signedIdentity absent
    ],
)
def test_sigstore_signed_valid_variants(edit: Edit, duplicates: list[str]) -> None:
    value = edited(SIGSTORE, edit)
    parsed = parse(as_default(value)).default[0]
    assert isinstance(parsed, SigstoreSigned)
    for field in duplicates:
        refused(as_default_bytes(with_duplicate(json.dumps(value), field, value[field])))


def test_sigstore_signed_key_sources_and_checkability() -> None:
    keys = parse(as_default(dict(SIGSTORE, keyDatas=["YWJj", "ZGVm"], keyData=None))).default[0]
    assert keys.key_datas == (b"abc", b"def")  # type: ignore[union-attr]
    assert keys.not_checkable() is None  # type: ignore[union-attr]
    fulcio = edited(SIGSTORE, lambda v: without_key(v, fulcio=FULCIO, rekorPublicKeyPath="/r"))
    assert "fulcio" in parse(as_default(fulcio)).default[0].not_checkable()  # type: ignore[union-attr]
    rekor = dict(SIGSTORE, rekorPublicKeyPath="/r")
    assert "rekorPublicKey" in parse(as_default(rekor)).default[0].not_checkable()  # type: ignore[union-attr]
    pki = edited(SIGSTORE, lambda v: without_key(v, pki=PKI))
    assert "pki" in parse(as_default(pki)).default[0].not_checkable()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("edit", "valid"),
    [
        # Go: TestPRSigstoreSignedFulcioUnmarshalJSON
        (lambda f: None, True),
        (lambda f: f.update(unexpected=1), False),
        (lambda f: f.pop("caPath"), False),
        (lambda f: f.update(caData=""), False),  # caPath and caData
        (lambda f: f.update(caPath=1), False),
        (lambda f: f.update(oidcIssuer=1), False),
        (lambda f: f.pop("oidcIssuer"), False),
        (lambda f: f.update(subjectEmail=1), False),
        (lambda f: f.pop("subjectEmail"), False),
        (lambda f: (f.pop("caPath"), f.update(caData="YWJj")), True),
        (lambda f: (f.pop("caPath"), f.update(caData=1)), False),
        (lambda f: (f.pop("caPath"), f.update(caData="this is invalid base64")), False),
    ],
)
def test_fulcio(edit: Edit, valid: bool) -> None:
    document = as_default(
        {"type": "sigstoreSigned", "fulcio": edited(FULCIO, edit), "rekorPublicKeyPath": "/r"}
    )
    if valid:
        parse(document)
    else:
        refused(json.dumps(document).encode())


@pytest.mark.parametrize(
    ("edit", "valid"),
    [
        # Go: TestPRSigstoreSignedPKIUnmarshalJSON
        (lambda p: None, True),
        (lambda p: p.update(unexpected=1), False),
        (lambda p: p.pop("caRootsPath"), False),
        (lambda p: p.update(caRootsData=""), False),
        (lambda p: p.update(caRootsPath=1), False),
        (lambda p: p.update(caIntermediatesData=""), False),
        (lambda p: p.update(caIntermediatesPath=1), False),
        (lambda p: p.update(subjectHostname=1), False),
        (lambda p: p.update(subjectEmail=1), False),
        (lambda p: (p.pop("subjectHostname"), p.pop("subjectEmail", None)), False),
        (lambda p: (p.pop("caRootsPath"), p.update(caRootsData="YWJj")), True),
        (lambda p: (p.pop("caRootsPath"), p.update(caRootsData=1)), False),
        (lambda p: (p.pop("caRootsPath"), p.update(caRootsData="this is invalid base64")), False),
    ],
)
def test_pki(edit: Edit, valid: bool) -> None:
    document = as_default({"type": "sigstoreSigned", "pki": edited(PKI, edit)})
    if valid:
        parse(document)
    else:
        refused(json.dumps(document).encode())


# --- signedIdentity ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "identity",
    [
        1,  # Go: TestNewPolicyReferenceMatchFromJSON: not an object
        {},  # missing type
        {"type": "this is invalid"},  # invalid type
        {"type": "exactReference", "dockerReference": ""},  # valid type, invalid contents
    ],
)
def test_reference_match_from_json_broken(identity: Any) -> None:
    refused(json.dumps(as_identity(identity)).encode())


@pytest.mark.parametrize("kind", ["matchExact", "matchRepoDigestOrExact", "matchRepository"])
@pytest.mark.parametrize(
    "identity",
    [
        {},  # Go: TestPRMMatchExactUnmarshalJSON, TestPRMMatchRepoDigestOrExactUnmarshalJSON,
        {"type": 1},  # TestPRMMatchRepositoryUnmarshalJSON invalidObjects
        {"type": "this is invalid"},
        {"type": "KIND", "unknown": "foo"},
    ],
)
def test_simple_identities_broken(kind: str, identity: dict[str, Any]) -> None:
    if identity.get("type") == "KIND":
        identity = dict(identity, type=kind)
    refused(json.dumps(as_identity(identity)).encode())


@pytest.mark.parametrize("kind", ["matchExact", "matchRepoDigestOrExact", "matchRepository"])
def test_simple_identities(kind: str) -> None:
    assert parse(as_identity({"type": kind})).default[0].identity.name == kind  # type: ignore[union-attr]
    duplicated = with_duplicate(json.dumps({"type": kind}), "type", kind).decode()
    document = json.dumps(as_identity("IDENTITY")).replace('"IDENTITY"', duplicated)
    refused(document.encode())


EXACT_REFERENCE = {"type": "exactReference", "dockerReference": "library/busybox:latest"}
EXACT_REPOSITORY = {"type": "exactRepository", "dockerRepository": "library/busybox:latest"}
REMAP = {
    "type": "remapIdentity",
    "prefix": "example.com/docker-library",
    "signedPrefix": "docker.io/library",
}


@pytest.mark.parametrize(
    ("base", "edit"),
    [
        # Go: TestPRMExactReferenceUnmarshalJSON breakFns
        (EXACT_REFERENCE, lambda v: v.pop("type")),
        (EXACT_REFERENCE, lambda v: v.update(type=1)),
        (EXACT_REFERENCE, lambda v: v.update(type="this is invalid")),
        (EXACT_REFERENCE, lambda v: v.update(unexpected=1)),
        (EXACT_REFERENCE, lambda v: v.pop("dockerReference")),
        (EXACT_REFERENCE, lambda v: v.update(dockerReference=1)),
        # Go: TestNewPRMExactReference: "", uppercase, missing tag
        (EXACT_REFERENCE, lambda v: v.update(dockerReference="")),
        (EXACT_REFERENCE, lambda v: v.update(dockerReference="INVALIDUPPERCASE:latest")),
        (EXACT_REFERENCE, lambda v: v.update(dockerReference="library/busybox")),
        # Go: TestPRMExactRepositoryUnmarshalJSON breakFns
        (EXACT_REPOSITORY, lambda v: v.pop("type")),
        (EXACT_REPOSITORY, lambda v: v.update(type=1)),
        (EXACT_REPOSITORY, lambda v: v.update(type="this is invalid")),
        (EXACT_REPOSITORY, lambda v: v.update(unexpected=1)),
        (EXACT_REPOSITORY, lambda v: v.pop("dockerRepository")),
        (EXACT_REPOSITORY, lambda v: v.update(dockerRepository=1)),
        # Go: TestNewPRMExactRepository: "", uppercase
        (EXACT_REPOSITORY, lambda v: v.update(dockerRepository="")),
        (EXACT_REPOSITORY, lambda v: v.update(dockerRepository="INVALIDUPPERCASE")),
        # Go: TestPRMRemapIdentityUnmarshalJSON breakFns
        (REMAP, lambda v: v.pop("type")),
        (REMAP, lambda v: v.update(type=1)),
        (REMAP, lambda v: v.update(type="this is invalid")),
        (REMAP, lambda v: v.update(unexpected=1)),
        (REMAP, lambda v: v.pop("prefix")),
        (REMAP, lambda v: v.update(prefix=1)),
        (REMAP, lambda v: v.update(prefix="this is invalid")),
        (REMAP, lambda v: v.pop("signedPrefix")),
        (REMAP, lambda v: v.update(signedPrefix=1)),
        (REMAP, lambda v: v.update(signedPrefix="this is invalid")),
        # Go: TestNewPRMRemapIdentity: invalid prefix / signedPrefix
        (REMAP, lambda v: v.update(prefix="")),
        (REMAP, lambda v: v.update(prefix="example.com/UPPERCASEISINVALID")),
        (REMAP, lambda v: v.update(signedPrefix="")),
        (REMAP, lambda v: v.update(signedPrefix="example.com/UPPERCASEISINVALID")),
    ],
)
def test_configured_identities_broken(base: dict[str, Any], edit: Edit) -> None:
    refused(json.dumps(as_identity(edited(base, edit))).encode())


@pytest.mark.parametrize("base", [EXACT_REFERENCE, EXACT_REPOSITORY, REMAP])
def test_configured_identities(base: dict[str, Any]) -> None:
    # Go: TestPRMExactReferenceUnmarshalJSON, TestPRMExactRepositoryUnmarshalJSON,
    # TestPRMRemapIdentityUnmarshalJSON: success and duplicateFields
    assert parse(as_identity(base)).default[0].identity.name == base["type"]  # type: ignore[union-attr]
    for field, value in base.items():
        duplicated = with_duplicate(json.dumps(base), field, value).decode()
        document = json.dumps(as_identity("IDENTITY")).replace('"IDENTITY"', duplicated)
        refused(document.encode())


def test_error_names_the_field_in_one_line() -> None:
    document = as_default(dict(SIGSTORE, signedIdentity={"type": "matchExact", "extra": 1}))
    with pytest.raises(PolicyError) as caught:
        parse_policy(json.dumps(document).encode(), source="/etc/containers/policy.json")
    assert str(caught.value).startswith(
        "invalid policy in /etc/containers/policy.json: "
        'default[0].signedIdentity: unknown key "extra"'
    )
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


# -- fields older containers/image releases refuse ------------------------------------------


def test_key_lists_are_named_with_the_release_that_introduced_them() -> None:
    key = {"type": "sigstoreSigned", "signedIdentity": {"type": "matchRepoDigestOrExact"}}
    document = {
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                "registry.test/a": [{**key, "keyPaths": ["/k1.pub", "/k2.pub"]}],
                "registry.test/b": [{**key, "keyDatas": ["AAAA"]}],
                "registry.test/c": [{**key, "keyPath": "/k1.pub"}],
            }
        },
    }
    policy = parse_policy(json.dumps(document).encode())
    assert [warning.split(",")[0] for warning in policy.newer_fields] == [
        'transports."docker"."registry.test/a"[0] uses keyPaths',
        'transports."docker"."registry.test/b"[0] uses keyDatas',
    ]
    first = policy.newer_fields[0]
    assert "which containers/image accepts since 5.33.0" in first
    assert 'older ones (5.29: Unknown key "keyPaths") refuse the whole policy.json' in first


def test_a_policy_of_single_keys_has_nothing_to_warn_about() -> None:
    document = {"default": [{"type": "sigstoreSigned", "keyPath": "/k.pub"}]}
    assert parse_policy(json.dumps(document).encode()).newer_fields == ()
