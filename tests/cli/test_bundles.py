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
    write_list,
)
from tests.support.images import push_image
from tests.support.registry import RegistryServer


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
    records = [d for r in json.loads(report.read_text())["results"] for d in r["digests"]]
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
