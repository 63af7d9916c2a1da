"""`hangar sign --signature-format bundle|both` end to end on the real registry
(distribution 2.8, which has no referrers API: the referrers tag schema's index is where bundles
are listed, as cosign v3 would list them there).

Every artifact, index and bundle is read back with the test bed's own HTTP client and checked
field by field against bundles.md; the bundle is parsed by the models generated from sigstore's
protobuf-specs (sigstore-protobuf-specs) and its DSSE signature verified by securesystemslib,
implementations other than hangar's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from pathlib import Path

import jsonschema
import pytest

from tests.support import http
from tests.support.bundles import (
    BUNDLE_V03,
    COSIGN_SIGN,
    EMPTY_DIGEST,
    check_bundle,
    read_referrers,
    referrers_tag,
)
from tests.support.cli import (
    KEY1_PUB,
    KEY2,
    KEY2_PASS,
    KEY2_PUB,
    check_hangar_attachment,
    run_hangar,
    sig_tag,
    sign_args,
    signed_tags,
    validate_args,
    write_list,
)
from tests.support.errors_doc import documented, log_line
from tests.support.images import push_image
from tests.support.paths import REPO
from tests.support.registry import RegistryServer, write_auth_json

SCHEMA = json.loads((REPO / "docs" / "report.schema.json").read_text())


def report_records(path: Path) -> list[dict]:
    """The per-digest records of a --report, checked against docs/report.schema.json."""
    document = json.loads(path.read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    return [d for r in document["results"] for d in r["digests"]]


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


def repo_name(prefix: str) -> str:
    return f"{prefix}/app-{uuid.uuid4().hex[:8]}"


def test_sign_both_writes_the_sig_and_a_cosign_v3_bundle_per_digest(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("bundles")
    image = push_image(registry_http, repo, "v1", kind="oci-index")
    ref = f"{registry_http.host}/{repo}:v1"
    listing = write_list(tmp_path / "list", ref)
    report = tmp_path / "report.json"
    args = sign_args(listing, registry_http, "--signature-format", "both", "--report", str(report))
    result = run_hangar(args, home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    wanted = [image.platforms["linux/amd64"], image.platforms["linux/arm64"], image.digest]
    assert signed_tags(registry_http, repo) == {sig_tag(d) for d in wanted}
    tags = set(http.list_tags(registry_http, repo))
    assert {referrers_tag(d) for d in wanted} <= tags
    for digest in wanted:
        check_hangar_attachment(registry_http, repo, digest, ref, KEY1_PUB)
        referrers = read_referrers(registry_http, repo, digest)
        assert len(referrers) == 1
        check_bundle(registry_http, repo, digest, referrers[0], KEY1_PUB)
        assert f"Signed (bundle) [{registry_http.host}/{repo}@{digest}]" in result.stderr
    records = report_records(report)
    assert {d["bundle"]["action"] for d in records} == {"signed"}
    assert {d["bundle"]["listed"] for d in records} == {"referrers-tag"}
    assert "6 signatures written" in result.stderr

    again = run_hangar(args, home, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    for digest in wanted:
        assert len(read_referrers(registry_http, repo, digest)) == 1
        assert f"Already signed (bundle) [{registry_http.host}/{repo}@{digest}]" in again.stderr


def test_a_second_key_adds_its_bundle_and_keeps_the_first_entry_byte_for_byte(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("bundles")
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    ref = f"{registry_http.host}/{repo}:v1"
    listing = write_list(tmp_path / "list", ref)
    first = run_hangar(sign_args(listing, registry_http, "--signature-format", "bundle"), home)
    assert first.returncode == 0, first.stderr
    assert sig_tag(image.digest) not in http.list_tags(registry_http, repo)
    before = json.loads(http.get_manifest(registry_http, repo, referrers_tag(image.digest))[0])
    second = run_hangar(
        sign_args(
            listing, registry_http, "--signature-format", "bundle", key=KEY2, passphrase=KEY2_PASS
        ),
        home,
    )
    assert second.returncode == 0, second.stderr
    after = json.loads(http.get_manifest(registry_http, repo, referrers_tag(image.digest))[0])
    assert before["manifests"][0] in after["manifests"]
    assert len(after["manifests"]) == 2
    assert after["manifests"] == sorted(after["manifests"], key=lambda e: e["digest"])
    verified = {
        key.name
        for entry in after["manifests"]
        for key in (KEY1_PUB, KEY2_PUB)
        if check_bundle(registry_http, repo, image.digest, entry, key, must_verify=False)
    }
    assert verified == {KEY1_PUB.name, KEY2_PUB.name}


def test_the_artifact_is_exactly_what_cosign_v3_writes(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("bundles")
    image = push_image(registry_http, repo, "v1", kind="docker-manifest")
    listing = write_list(tmp_path / "list", f"{registry_http.host}/{repo}:v1")
    result = run_hangar(sign_args(listing, registry_http, "--signature-format", "bundle"), home)
    assert result.returncode == 0, result.stderr
    index_bytes, content_type, _ = http.get_manifest(
        registry_http, repo, referrers_tag(image.digest)
    )
    assert content_type == "application/vnd.oci.image.index.v1+json"
    index = json.loads(index_bytes)
    assert list(index) == ["schemaVersion", "mediaType", "manifests"]
    entry = index["manifests"][0]
    assert list(entry) == ["mediaType", "size", "digest", "artifactType", "annotations"]
    artifact_bytes, artifact_type, _ = http.get_manifest(registry_http, repo, entry["digest"])
    assert artifact_type == "application/vnd.oci.image.manifest.v1+json"
    assert entry["size"] == len(artifact_bytes)
    assert entry["artifactType"] == BUNDLE_V03
    artifact = json.loads(artifact_bytes)
    assert list(artifact) == [
        "schemaVersion", "mediaType", "config", "layers", "annotations", "subject", "artifactType",
    ]  # fmt: skip
    assert artifact["config"] == {
        "mediaType": "application/vnd.oci.empty.v1+json",
        "size": 2,
        "digest": EMPTY_DIGEST,
        "artifactType": BUNDLE_V03,
    }
    assert http.get_blob(registry_http, repo, EMPTY_DIGEST) == b"{}"
    assert artifact["subject"] == {
        "mediaType": image.media_type,
        "size": len(image.manifest),
        "digest": image.digest,
    }
    assert entry["annotations"] == artifact["annotations"]
    annotations = artifact["annotations"]
    assert list(annotations) == sorted(annotations)
    assert annotations["dev.sigstore.bundle.content"] == "dsse-envelope"
    assert annotations["dev.sigstore.bundle.predicateType"] == COSIGN_SIGN
    assert len(annotations["org.opencontainers.image.created"]) == len("2026-12-03T14:33:14Z")
    assert artifact["artifactType"] == BUNDLE_V03
    (layer,) = artifact["layers"]
    assert list(layer) == ["mediaType", "size", "digest"]
    assert layer["mediaType"] == BUNDLE_V03
    bundle = http.get_blob(registry_http, repo, layer["digest"])
    assert layer["size"] == len(bundle)
    assert layer["digest"] == "sha256:" + hashlib.sha256(bundle).hexdigest()
    document = json.loads(bundle)
    assert list(document) == ["mediaType", "verificationMaterial", "dsseEnvelope"]
    assert document["verificationMaterial"] == {
        "publicKey": {"hint": base64.b64encode(hashlib.sha256(_spki(KEY1_PUB)).digest()).decode()}
    }
    assert check_bundle(registry_http, repo, image.digest, entry, KEY1_PUB)


def _spki(pem: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(pem.read_bytes())
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _sign(server: RegistryServer, home: Path, listing: Path, fmt: str, key: str = "key1") -> None:
    private, passphrase = (KEY2, KEY2_PASS) if key == "key2" else (None, None)
    extra = {"key": private, "passphrase": passphrase} if private else {}
    result = run_hangar(sign_args(listing, server, "--signature-format", fmt, **extra), home)
    assert result.returncode == 0, result.stderr


def _validate(
    server: RegistryServer, home: Path, listing: Path, fmt: str, tmp_path: Path, key=KEY1_PUB
):
    report = tmp_path / f"validate-{fmt}-{key.name}.json"
    args = validate_args(
        listing, server, "--signature-format", fmt, "--report", str(report), keys=(key,)
    )
    result = run_hangar(args, home, cwd=tmp_path)
    return result, report_records(report)


@pytest.mark.parametrize(
    ("signed", "expected"),
    [
        ("legacy", {"legacy": 0, "bundle": 1, "both": 1, "any": 0}),
        ("bundle", {"legacy": 1, "bundle": 0, "both": 1, "any": 0}),
        ("both", {"legacy": 0, "bundle": 0, "both": 0, "any": 0}),
    ],
)
def test_validate_checks_the_format_asked_for_and_says_per_format_why(
    registry_http: RegistryServer, home: Path, tmp_path: Path, signed: str, expected: dict
) -> None:
    repo = repo_name("validate-bundles")
    push_image(registry_http, repo, "v1", kind="oci-manifest")
    listing = write_list(tmp_path / "list", f"{registry_http.host}/{repo}:v1")
    _sign(registry_http, home, listing, signed)
    for fmt, code in expected.items():
        result, records = _validate(registry_http, home, listing, fmt, tmp_path)
        assert result.returncode == code, (fmt, result.stderr)
        (record,) = records
        formats = record["formats"]
        assert formats["legacy"]["passed"] == (signed != "bundle")
        assert formats["bundle"]["passed"] == (signed != "legacy")
        assert formats["bundle"]["source"] == "referrers-tag"
        if signed != "legacy":
            (bundle,) = formats["bundle"]["bundles"]
            assert bundle["accepted"] and bundle["predicateType"] == COSIGN_SIGN
        if fmt != "legacy":
            for name in ("legacy", "bundle"):
                verdict = "PASS" if formats[name]["passed"] else "FAIL"
                assert f"{name}: {verdict}: [" in result.stderr
        if signed == "bundle":
            assert "only a bundle verifies: podman, CRI-O" in result.stderr
            assert any("only a bundle verifies" in note for note in record["notes"])
        if signed == "legacy" and fmt in ("bundle", "both"):
            assert "bundle: no bundle" in record["reason"]


def test_validate_names_cosign_v3s_trap_and_sign_warns_before_springing_it(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    """key1 signs .sig only; key2 then adds a bundle. cosign v3 `verify --key key1` now reads
    only bundles and fails, though key1's .sig still verifies: validate says so per digest,
    and key2's sign warned before writing it."""
    repo = repo_name("trap")
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    listing = write_list(tmp_path / "list", f"{registry_http.host}/{repo}:v1")
    _sign(registry_http, home, listing, "legacy")
    result, records = _validate(registry_http, home, listing, "legacy", tmp_path)
    assert result.returncode == 0 and records[0]["notes"] == []
    warned = run_hangar(
        sign_args(
            listing, registry_http, "--signature-format", "bundle", key=KEY2, passphrase=KEY2_PASS
        ),
        home,
    )
    assert warned.returncode == 0, warned.stderr
    subs = {registry_http.host: "REGISTRY", repo: "trap/app"}
    line = log_line(warned.stderr, "signature(s) by other keys", level="[WARN]")
    assert f"{registry_http.host}/{repo}@{image.digest}: its .sig holds 1 signature(s)" in line
    documented("sign-bundle-next-to-foreign-sig", 0, line, subs)
    result, records = _validate(registry_http, home, listing, "legacy", tmp_path)
    assert result.returncode == 0, result.stderr  # podman's verdict is unchanged
    (note,) = records[0]["notes"]
    assert note.startswith(
        "cosign v3 `verify --key` fails here although the .sig signature verifies"
    )
    assert f"{registry_http.host}/{repo}:v1] linux/amd64 {image.digest}: {note}" in result.stderr
    documented("validate-cosign-v3-trap", 0, log_line(result.stderr, note, level="[WARN]"), subs)
    result, records = _validate(registry_http, home, listing, "bundle", tmp_path)
    assert result.returncode == 1
    assert "no bundle verifies with the key(s) given" in records[0]["reason"]
    # key1 adding its own bundle ends the trap; no second warning (a bundle exists already).
    both = run_hangar(sign_args(listing, registry_http, "--signature-format", "both"), home)
    assert both.returncode == 0, both.stderr
    assert "signature(s) by other keys" not in both.stderr
    result, records = _validate(registry_http, home, listing, "both", tmp_path)
    assert result.returncode == 0, result.stderr
    assert records[0]["notes"] == []


def test_validate_with_policy_refuses_another_format(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    listing = write_list(tmp_path / "list", f"{registry_http.host}/x/y:v1")
    policy = tmp_path / "policy.json"
    policy.write_text('{"default":[{"type":"insecureAcceptAnything"}]}')
    args = ["sign", "validate", "-f", str(listing), "--policy", str(policy)]
    result = run_hangar([*args, "--signature-format", "bundle"], home, cwd=tmp_path)
    assert result.returncode == 2
    line = log_line(result.stderr, "reads only the .sig tag")
    documented("usage-signature-format-with-policy", 2, line, {})


def test_a_referrers_tag_holding_something_else_fails_the_line_and_is_left_alone(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    """The tag `sha256-<hex>` is an ordinary tag: another tool may have put anything there.
    hangar refuses to rewrite what is not a referrers index (as ggcr does), fails that line
    only, and the other image of the list is signed."""
    repo = repo_name("occupied")
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    other = push_image(registry_http, repo_name("occupied"), "v1", kind="oci-manifest")
    squatter = push_image(registry_http, repo, referrers_tag(image.digest), kind="oci-manifest")
    listing = write_list(
        tmp_path / "list",
        f"{registry_http.host}/{repo}:v1",
        f"{registry_http.host}/{other.repository}:v1",
    )
    result = run_hangar(
        sign_args(listing, registry_http, "--signature-format", "both"), home, cwd=tmp_path
    )
    assert result.returncode == 1
    line = log_line(result.stderr, "is not an OCI image index")
    subs = {
        registry_http.host: "REGISTRY",
        repo: "occupied/app",
        referrers_tag(image.digest): "sha256-HEX",
    }
    documented("sign-referrers-tag-not-an-index", 1, line, subs)
    assert (
        http.get_manifest(registry_http, repo, referrers_tag(image.digest))[0] == squatter.manifest
    )
    assert len(read_referrers(registry_http, other.repository, other.digest)) == 1
    # The .sig signature of the failed line was still written (podman's format is independent).
    check_hangar_attachment(
        registry_http, repo, image.digest, f"{registry_http.host}/{repo}:v1", KEY1_PUB
    )


def _foreign_referrer(server: RegistryServer, repo: str, digest: str) -> tuple[str, bytes]:
    """An SBOM another tool attached to `digest` (not a bundle), with fields hangar does not
    write; listed in the referrers index. Returns its digest and its index entry's bytes."""
    sbom = b'{"spdxVersion":"SPDX-2.3"}'
    layer = http.push_blob(server, repo, sbom)
    config = http.push_blob(server, repo, b"{}")
    artifact = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/spdx+json",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "size": 2,
                "digest": config,
            },
            "layers": [{"mediaType": "application/spdx+json", "size": len(sbom), "digest": layer}],
            "subject": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "size": 1,
                "digest": digest,
            },
        },
        separators=(",", ":"),
    ).encode()
    artifact_digest = http.put_manifest(
        server, repo, "sha256:" + hashlib.sha256(artifact).hexdigest(), artifact,
        "application/vnd.oci.image.manifest.v1+json",
    )  # fmt: skip
    # Encoded as Go's encoding/json writes it (what ggcr, oras, cosign write): <, >, & escaped,
    # other characters raw. hangar re-encodes an index that way, so such bytes survive as such.
    entry = (
        b'{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":'
        + str(len(artifact)).encode()
        + b',"digest":"' + artifact_digest.encode()
        + b'","artifactType":"application/spdx+json","annotations":{"x":"\\u003c\xc3\xa9"}}'
    )  # fmt: skip
    index_bytes = http.get_manifest(server, repo, referrers_tag(digest))[0]
    index = index_bytes.replace(b'"manifests":[', b'"manifests":[' + entry + b",", 1)
    http.put_manifest(
        server, repo, referrers_tag(digest), index, "application/vnd.oci.image.index.v1+json"
    )
    return artifact_digest, entry


def test_inspect_shows_both_formats_and_remove_drops_only_this_keys_bundles(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("remove-bundles")
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    ref = f"{registry_http.host}/{repo}:v1"
    listing = write_list(tmp_path / "list", ref)
    _sign(registry_http, home, listing, "both")
    _sign(registry_http, home, listing, "bundle", key="key2")
    sbom, sbom_entry = _foreign_referrer(registry_http, repo, image.digest)
    entries = read_referrers(registry_http, repo, image.digest)
    bundles = [e for e in entries if e["artifactType"] == BUNDLE_V03]
    ours = [
        e
        for e in bundles
        if check_bundle(registry_http, repo, image.digest, e, KEY1_PUB, must_verify=False)
    ]
    (key1_bundle,) = [e["digest"] for e in ours]
    (key2_entry,) = [e for e in entries if e["digest"] not in (key1_bundle, sbom)]

    shown = run_hangar(
        ["inspect", "--tls-verify=false", "-p", str(KEY1_PUB), "-p", str(KEY2_PUB), ref], home
    )
    assert shown.returncode == 0, shown.stderr
    bundles_line = next(line for line in shown.stdout.splitlines() if line.startswith("Bundles:"))
    assert (
        "2 bundles, 1 by " in bundles_line and "cosign v3; podman reads .sig only" in bundles_line
    )
    signatures = next(x for x in shown.stdout.splitlines() if x.startswith("Signatures:"))
    assert signatures.count("1 by") == 1

    report = tmp_path / "remove.json"
    removed = run_hangar(
        ["sign", "remove", "-f", str(listing), "--tls-verify=false", "-p", str(KEY1_PUB),
         "--report", str(report)],
        home,
        cwd=tmp_path,
    )  # fmt: skip
    assert removed.returncode == 0, removed.stderr
    assert f"bundle {key1_bundle}, key sha256:" in removed.stderr
    index_bytes = http.get_manifest(registry_http, repo, referrers_tag(image.digest))[0]
    assert sbom_entry in index_bytes  # another tool's entry, byte for byte
    after = read_referrers(registry_http, repo, image.digest)
    assert {e["digest"] for e in after} == {sbom, key2_entry["digest"]}
    assert key2_entry in after
    assert http.head_manifest(registry_http, repo, key1_bundle) is None  # the artifact is gone
    assert http.head_manifest(registry_http, repo, sbom) is not None
    assert sig_tag(image.digest) not in http.list_tags(registry_http, repo)  # key1's only .sig
    (record,) = [d for r in json.loads(report.read_text())["results"] for d in r["digests"]]
    assert record["bundles"] == [{"digest": key1_bundle, "reason": record["bundles"][0]["reason"]}]
    result, _ = _validate(registry_http, home, listing, "bundle", tmp_path, key=KEY2_PUB)
    assert result.returncode == 0, result.stderr


def test_bundles_over_https_with_bearer_tokens(
    registry_token: RegistryServer, home: Path, tmp_path: Path
) -> None:
    """The referrers probe, the PUT by digest and the fallback index go through the same
    authentication as the .sig (a token per repository and action), and validate reads them
    back; --debug shows no secret."""
    repo = repo_name("token-bundles")
    image = push_image(registry_token, repo, "v1", kind="oci-manifest")
    ref = f"{registry_token.host}/{repo}:v1"
    assert registry_token.username and registry_token.password
    write_auth_json(
        home / ".config/containers/auth.json",
        registry_token.host,
        registry_token.username,
        registry_token.password,
    )
    listing = write_list(tmp_path / "list", ref)
    signed = run_hangar(
        sign_args(listing, registry_token, "--signature-format", "both", "--debug"), home
    )
    assert signed.returncode == 0, signed.stderr
    assert registry_token.password not in signed.stderr
    (entry,) = read_referrers(registry_token, repo, image.digest)
    assert check_bundle(registry_token, repo, image.digest, entry, KEY1_PUB)
    result, records = _validate(registry_token, home, listing, "both", tmp_path)
    assert result.returncode == 0, result.stderr
    assert records[0]["formats"]["bundle"]["passed"]
