"""`hangar sign validate` end to end: the real command against a real registry.

Signatures come from three sources: containers/image (tests/data's `cimage-attachment` vector,
pushed as-is), `hangar sign` itself (every --signed-identity mode), and attachments built here
by hand, byte by byte, with the vector private keys (the tampering cases). Each verdict is
checked on what the command prints (`PASS: [ref]`, `FAIL: [ref] PLATFORM DIGEST: reason`), its
exit code, the failed file and, where it matters, the --report JSON.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.support import http
from tests.support.attachments import (
    MAX_SIGNATURE_BLOB,
    Layer,
    compact,
    fingerprint,
    in_toto_statement,
    payload,
    push_attachment,
    sign_b64,
    signed_layer,
)
from tests.support.cli import (
    KEY1,
    KEY1_PASS,
    KEY1_PUB,
    KEY2,
    KEY2_PASS,
    KEY2_PUB,
    OCI_MANIFEST,
    SIMPLESIGNING,
    check_hangar_attachment,
    failed_lines,
    run_hangar,
    sig_tag,
    sign_args,
    validate_args,
)
from tests.support.errors_doc import documented
from tests.support.images import IN_TOTO, PushedImage, push_image, push_vector_attachment
from tests.support.paths import VECTORS
from tests.support.registry import RegistryServer, start_registry, write_auth_json

KEY3_PUB = VECTORS / "cimage-keys" / "key3.pub"
VECTOR_REPOSITORY = "127.0.0.1:5000/vectors/app"  # where c/image signed the vector
NOT_VERIFIED = "signature does not verify with the key (signed by another key, or altered)"
RAW_R_S = (
    "ECDSA signature in raw r||s form (IEEE P1363), not ASN.1 DER: podman/CRI-O refuse it "
    '("invalid signature when validating ASN.1 encoded signature"); sign again with a tool '
    "that writes DER (hangar, cosign, skopeo)"
)
SUMMARY = "[INFO] Summary: {}: {} passed, {} skipped for platform, {} failed; "


# -- helpers -----------------------------------------------------------------------------


def repo_name(prefix: str) -> str:
    return f"validate-{prefix}/app-{uuid.uuid4().hex[:8]}"


def write_list(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def fail_lines(stderr: str) -> list[str]:
    """The `FAIL: ...` lines, without the `[ERRO] [IMG:n] ` prefix."""
    return [line[line.index("FAIL: ") :] for line in stderr.splitlines() if "FAIL: " in line]


def pass_lines(stderr: str) -> list[str]:
    return [line[line.index("PASS: ") :] for line in stderr.splitlines() if "PASS: " in line]


def summary(total: int, passed: int, skipped: int, failed: int) -> str:
    return SUMMARY.format(
        f"{total} image" if total == 1 else f"{total} images", passed, skipped, failed
    )


def critical(identity: str, digest: str) -> str:
    return (
        f'{{"identity":{{"docker-reference":"{identity}"}},'
        f'"image":{{"docker-manifest-digest":"{digest}"}},'
        f'"type":"cosign container image signature"}}'
    )


def blob_file(server: RegistryServer, digest: str) -> Path:
    """Where distribution's filesystem driver keeps a blob's bytes."""
    hex_digest = digest.split(":", 1)[1]
    return server.storage / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"


def new_home(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    home = tmp_path_factory.mktemp(name)
    (home / "run").mkdir(mode=0o700)
    return home


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


# -- the containers/image vector ---------------------------------------------------------


@dataclass(frozen=True)
class VectorSetup:
    server: RegistryServer
    home: Path
    name: str  # HOST/vectors/app: the vector's repository path, on another host:port
    digest: str


@pytest.fixture(scope="module")
def vector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VectorSetup]:
    """The c/image attachment pushed as-is to `vectors/app` on a registry of its own, so that
    only host:port differs from the repository it was signed for."""
    server = start_registry("http", tmp_path_factory.mktemp("vector-registry"))
    try:
        # Ephemeral ports are never 5000; were it so, the default rule would accept the vector.
        assert server.host != "127.0.0.1:5000"
        pushed = push_vector_attachment(server, "vectors/app")
        name = f"{server.host}/vectors/app"
        yield VectorSetup(server, new_home(tmp_path_factory, "vector-home"), name, pushed.digest)
    finally:
        server.close()


VECTOR_KEYS = {
    "key1": (KEY1_PUB,),
    "key2": (KEY2_PUB,),
    "key1+key2": (KEY1_PUB, KEY2_PUB),
}


@pytest.mark.parametrize("keys", list(VECTOR_KEYS))
def test_vector_default_rule_rejects_another_repository(
    vector: VectorSetup, tmp_path: Path, keys: str
) -> None:
    """matchRepoDigestOrExact on the platform manifest's digest reference: the vector names
    127.0.0.1:5000/vectors/app, the image lives at HOST/vectors/app: the repositories differ."""
    digest = vector.digest
    by_tag, by_digest = f"{vector.name}:v1", f"{vector.name}@{digest}"
    list_file = write_list(tmp_path / "list", by_tag, by_digest)
    failed = tmp_path / "failed.txt"
    args = validate_args(list_file, vector.server, "-o", str(failed), keys=VECTOR_KEYS[keys])
    result = run_hangar(args, vector.home, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    image = f"{vector.name}@{digest}"  # what the rule compares with, whatever the line was
    identity_1 = f"identity {VECTOR_REPOSITORY}@{digest} does not match {image} "
    identity_2 = f"identity {VECTOR_REPOSITORY}:v1 does not match {image} "
    rule = "(matchRepoDigestOrExact)"
    reason = {
        "key1": f"{identity_1}{rule}; {NOT_VERIFIED}",  # layer 2 is key2's
        "key2": f"{NOT_VERIFIED}; {identity_2}{rule}",  # layer 1 is key1's
        "key1+key2": f"{identity_1}{rule}; {identity_2}{rule}",
    }[keys]
    assert fail_lines(result.stderr) == [
        f"FAIL: [{by_tag}] linux/amd64 {digest}: {reason}",
        f"FAIL: [{by_digest}] linux/amd64 {digest}: {reason}",
    ]
    assert pass_lines(result.stderr) == []
    assert failed_lines(failed) == [by_tag, by_digest]
    assert summary(2, 0, 0, 2) in result.stderr


@pytest.mark.parametrize("keys", list(VECTOR_KEYS))
def test_vector_exact_repository_accepts_and_reports_each_layer(
    vector: VectorSetup, tmp_path: Path, keys: str
) -> None:
    digest = vector.digest
    by_tag, by_digest = f"{vector.name}:v1", f"{vector.name}@{digest}"
    list_file = write_list(tmp_path / "list", by_tag, by_digest)
    report = tmp_path / "report.json"
    args = validate_args(
        list_file,
        vector.server,
        "--exact-repository",
        VECTOR_REPOSITORY,
        "--report",
        str(report),
        keys=VECTOR_KEYS[keys],
    )
    result = run_hangar(args, vector.home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert pass_lines(result.stderr) == [f"PASS: [{by_tag}]", f"PASS: [{by_digest}]"]
    assert fail_lines(result.stderr) == []
    assert summary(2, 2, 0, 0) in result.stderr
    assert not (tmp_path / "sign-failed.txt").exists()

    records = json.loads(report.read_text())["results"]
    assert [(r["image"], r["status"]) for r in records] == [
        (by_tag, "passed"),
        (by_digest, "passed"),
    ]
    manifest = json.loads((VECTORS / "cimage-attachment" / "sig-manifest.json").read_bytes())
    layer_digests = [layer["digest"] for layer in manifest["layers"]]
    for record in records:
        [entry] = record["digests"]
        assert entry["digest"] == digest
        assert entry["platform"] == "linux/amd64"
        assert entry["passed"] is True and entry["reason"] == "accepted"
        one, two = entry["signatures"]
        assert [one["layer"], two["layer"]] == layer_digests
        key1, key2 = fingerprint(KEY1_PUB), fingerprint(KEY2_PUB)
        expected = {
            "key1": [(True, "accepted", key1), (False, NOT_VERIFIED, None)],
            "key2": [(False, NOT_VERIFIED, None), (True, "accepted", key2)],
            "key1+key2": [(True, "accepted", key1), (True, "accepted", key2)],
        }[keys]
        identities = (f"{VECTOR_REPOSITORY}@{digest}", f"{VECTOR_REPOSITORY}:v1")
        for signature, (accepted, _, _), identity in zip(
            (one, two), expected, identities, strict=True
        ):
            # A payload whose signature did not verify is not read: nothing in it is trusted.
            assert signature["identity"] == (identity if accepted else None)
            assert signature["creator"] == ("containers/image 5.29.3" if accepted else None)
            assert signature["timestamp"] == (1795842641 if accepted else None)
        assert [(s["accepted"], s["reason"], s["key"]) for s in (one, two)] == expected


def test_vector_exact_repository_names_the_repository_it_wants(
    vector: VectorSetup, tmp_path: Path
) -> None:
    other = "127.0.0.1:5000/vectors/other"
    ref = f"{vector.name}:v1"
    list_file = write_list(tmp_path / "list", ref)
    args = validate_args(
        list_file, vector.server, "--exact-repository", other, keys=(KEY1_PUB, KEY2_PUB)
    )
    result = run_hangar(args, vector.home, cwd=tmp_path)
    assert result.returncode == 1
    digest = vector.digest
    assert fail_lines(result.stderr) == [
        f"FAIL: [{ref}] linux/amd64 {digest}: "
        f"identity {VECTOR_REPOSITORY}@{digest} does not match {other} (exactRepository); "
        f"identity {VECTOR_REPOSITORY}:v1 does not match {other} (exactRepository)"
    ]


def test_vector_with_a_key_that_signed_neither_layer(vector: VectorSetup, tmp_path: Path) -> None:
    ref = f"{vector.name}:v1"
    list_file = write_list(tmp_path / "list", ref)
    args = validate_args(
        list_file, vector.server, "--exact-repository", VECTOR_REPOSITORY, keys=(KEY3_PUB,)
    )
    result = run_hangar(args, vector.home, cwd=tmp_path)
    assert result.returncode == 1
    assert fail_lines(result.stderr) == [
        f"FAIL: [{ref}] linux/amd64 {vector.digest}: {NOT_VERIFIED}"  # same for both: said once
    ]


# -- hangar's own signatures, every identity mode, every rule ----------------------------


@dataclass(frozen=True)
class ModeImages:
    server: RegistryServer
    home: Path
    name: str  # HOST/REPO: the four images are tags of one repository
    images: dict[str, PushedImage]  # "tag", "digest", "repository", "no-index"

    def ref(self, case: str) -> str:
        return f"{self.name}:{case}"


MODE_CASES = ("tag", "digest", "repository", "no-index")


@pytest.fixture(scope="module")
def modes(registry_http: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> ModeImages:
    """Four multi-arch images, each signed by `hangar sign` (linux/amd64, linux/arm64 and the
    index): --signed-identity tag, digest, repository; and tag with --sign-index=false."""
    work = tmp_path_factory.mktemp("modes")
    home = new_home(tmp_path_factory, "modes-home")
    repo = repo_name("modes")
    name = f"{registry_http.host}/{repo}"
    images = {case: push_image(registry_http, repo, case, kind="oci-index") for case in MODE_CASES}
    for case in MODE_CASES:
        mode = "tag" if case == "no-index" else case
        extra = ["--signed-identity", mode]
        if case == "no-index":
            extra.append("--sign-index=false")
        list_file = write_list(work / f"{case}.list", f"{name}:{case}")
        result = run_hangar(sign_args(list_file, registry_http, *extra), home, cwd=work)
        assert result.returncode == 0, result.stderr
    return ModeImages(registry_http, home, name, images)


def _mode_fail(modes: ModeImages, case: str, platform: str, reason: str) -> str:
    image = modes.images[case]
    digest = image.digest if platform == "index" else image.platforms[platform]
    return f"FAIL: [{modes.ref(case)}] {platform} {digest}: {reason.format(digest=digest)}"


NAME_ONLY = "identity {name} does not match {name}@{{digest}} (matchRepoDigestOrExact): " + (
    "the signature names no tag or digest"
)
NO_TAG = (
    "no signature with the tag identity {name}:{case} (--require-tag-identity); "
    "signed as {signed}: podman/CRI-O reject a pull by tag"
)
# A line given by tag whose platform signatures name a digest: a pull by that tag is rejected.
BY_TAG = (
    "a pull by tag ({name}:{case}) is rejected: identity {signed} does not match {name}:{case} "
    "(matchRepoDigestOrExact); only a pull by digest is accepted (--pull-by digest)"
)
PLATFORMS = ("linux/amd64", "linux/arm64")

# flags -> for each image: None (PASS) or the reasons of its FAIL lines, per platform
MODE_MATRIX: dict[str, tuple[list[str], dict[str, dict[str, str] | None]]] = {
    "default": (
        [],
        {
            "tag": None,
            "digest": dict.fromkeys(PLATFORMS, BY_TAG),
            "repository": dict.fromkeys(PLATFORMS, NAME_ONLY),
        },
    ),
    "pull-by-digest": (
        ["--pull-by", "digest"],
        {"tag": None, "digest": None, "repository": dict.fromkeys(PLATFORMS, NAME_ONLY)},
    ),
    "accept-repository-identity": (["--accept-repository-identity"], {}),
    "require-tag-identity": (
        ["--require-tag-identity"],
        {
            "digest": dict.fromkeys(PLATFORMS, BY_TAG),  # the pull by tag fails first
            "repository": dict.fromkeys(PLATFORMS, NAME_ONLY),  # the default rule fails first
        },
    ),
    "pull-by-digest-and-require-tag": (
        ["--pull-by", "digest", "--require-tag-identity"],
        {
            "digest": dict.fromkeys(PLATFORMS, NO_TAG),
            "repository": dict.fromkeys(PLATFORMS, NAME_ONLY),
        },
    ),
    "accept-repository-and-require-tag": (
        ["--accept-repository-identity", "--require-tag-identity"],
        {
            "digest": dict.fromkeys(PLATFORMS, NO_TAG),
            "repository": dict.fromkeys(PLATFORMS, NO_TAG),
        },
    ),
    "require-index-signature": (
        ["--require-index-signature"],
        {
            "digest": dict.fromkeys(PLATFORMS, BY_TAG),  # the index: cosign checks no identity
            "repository": dict.fromkeys((*PLATFORMS, "index"), NAME_ONLY),
            "no-index": {"index": "no signature"},
        },
    ),
    "accept-repository-and-require-index": (
        ["--accept-repository-identity", "--require-index-signature"],
        {"no-index": {"index": "no signature"}},
    ),
    "exact-repository": (["--exact-repository", "{name}"], {}),
    "exact-repository-other": (
        ["--exact-repository", "{host}/another/repository"],
        dict.fromkeys(
            MODE_CASES,
            dict.fromkeys(
                PLATFORMS,
                "identity {signed} does not match {host}/another/repository (exactRepository)",
            ),
        ),
    ),
}


def _signed_identity(modes: ModeImages, case: str) -> str:
    if case == "digest":
        return f"{modes.name}@{{digest}}"
    if case == "repository":
        return modes.name
    return modes.ref(case)


@pytest.mark.parametrize("rule", list(MODE_MATRIX))
def test_identity_modes_under_each_rule(modes: ModeImages, tmp_path: Path, rule: str) -> None:
    flags, failing = MODE_MATRIX[rule]
    host = modes.server.host
    flags = [flag.format(name=modes.name, host=host) for flag in flags]
    refs = [modes.ref(case) for case in MODE_CASES]
    list_file = write_list(tmp_path / "list", *refs)
    report = tmp_path / "report.json"
    args = validate_args(list_file, modes.server, *flags, "--report", str(report))
    result = run_hangar(args, modes.home, cwd=tmp_path)

    expected_fail: list[str] = []
    for case in MODE_CASES:
        for platform, template in (failing.get(case) or {}).items():
            reason = template.format(
                name=modes.name,
                case=case,
                host=host,
                signed=_signed_identity(modes, case),
            )
            expected_fail.append(_mode_fail(modes, case, platform, reason))
    failed_refs = [modes.ref(case) for case in MODE_CASES if failing.get(case)]
    passed_refs = [ref for ref in refs if ref not in failed_refs]
    assert fail_lines(result.stderr) == expected_fail, result.stderr
    assert pass_lines(result.stderr) == [f"PASS: [{ref}]" for ref in passed_refs]
    assert result.returncode == (1 if failed_refs else 0)
    failed_file = tmp_path / "sign-failed.txt"
    if failed_refs:
        assert failed_lines(failed_file) == failed_refs
    else:
        assert not failed_file.exists()
    assert summary(4, len(passed_refs), 0, len(failed_refs)) in result.stderr
    records = json.loads(report.read_text())["results"]
    assert [r["status"] for r in records] == [
        "failed" if ref in failed_refs else "passed" for ref in refs
    ]
    # Accepted by digest, rejected by tag: said in the log and the report, PASS or not.
    digest_only = [line for line in result.stderr.splitlines() if "accepted by digest only" in line]
    by_digest = "--pull-by" in flags and rule != "pull-by-digest-and-require-tag"
    assert len(digest_only) == (len(PLATFORMS) if by_digest else 0), digest_only
    tag_pulls = {
        (record["image"].rsplit(":", 1)[1], digest["platform"]): digest.get("tag_pull_accepted")
        for record in records
        for digest in record["digests"]
    }
    if rule in ("default", "pull-by-digest"):
        assert tag_pulls[("tag", "linux/amd64")] is True
        assert tag_pulls[("digest", "linux/amd64")] is False
    names = {modes.name: "REGISTRY/modes/app"}
    if rule == "default":
        (line,) = [x for x in result.stderr.splitlines() if "a pull by tag" in x and "amd64" in x]
        documented("validate-tag-pull-rejected", 1, line, names)
    if rule == "pull-by-digest":
        # The platforms are checked at once: their lines come in any order.
        (line,) = [x for x in digest_only if "linux/amd64" in x]
        documented("validate-accepted-by-digest-only", 1, line, names)


def test_require_tag_identity_for_a_line_listed_by_digest(
    modes: ModeImages, tmp_path: Path
) -> None:
    """A line by digest has no tag to require: digest-mode signatures pass."""
    image = modes.images["digest"]
    ref = f"{modes.name}@{image.digest}"
    list_file = write_list(tmp_path / "list", ref)
    args = validate_args(list_file, modes.server, "--require-tag-identity")
    result = run_hangar(args, modes.home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert pass_lines(result.stderr) == [f"PASS: [{ref}]"]


def test_report_of_a_failed_image_names_every_digest(modes: ModeImages, tmp_path: Path) -> None:
    ref = modes.ref("repository")
    image = modes.images["repository"]
    list_file = write_list(tmp_path / "list", ref)
    report = tmp_path / "report.json"
    args = validate_args(
        list_file, modes.server, "--require-index-signature", "--report", str(report)
    )
    assert run_hangar(args, modes.home, cwd=tmp_path).returncode == 1
    [record] = json.loads(report.read_text())["results"]
    assert record["status"] == "failed"
    assert record["message"] == "3 of 3 digest(s) not accepted (linux/amd64, linux/arm64, index)"
    entries = {entry["platform"]: entry for entry in record["digests"]}
    assert set(entries) == {"linux/amd64", "linux/arm64", "index"}
    for platform, entry in entries.items():
        digest = image.digest if platform == "index" else image.platforms[platform]
        assert entry["digest"] == digest and entry["passed"] is False
        [signature] = entry["signatures"]
        assert signature["identity"] == modes.name
        assert signature["key"] == fingerprint(KEY1_PUB)  # it verified: the identity failed
        assert signature["creator"].startswith("hangar ")
        assert isinstance(signature["timestamp"], int)
        assert signature["accepted"] is False
        assert (
            signature["reason"]
            == entry["reason"]
            == NAME_ONLY.format(name=modes.name).format(digest=digest)
        )


# -- tampering: attachments built by hand --------------------------------------------------


@dataclass(frozen=True)
class Subject:
    server: RegistryServer
    repo: str
    ref: str  # HOST/REPO:v1
    digest: str  # of the single linux/amd64 manifest
    identity: str  # what a good signature names (the tag, as hangar signs by default)


@pytest.fixture
def subject(registry_http: RegistryServer) -> Subject:
    repo = repo_name("tamper")
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    ref = f"{registry_http.host}/{repo}:v1"
    return Subject(registry_http, repo, ref, image.digest, ref)


def _edited_after_signing(t: Subject) -> tuple[list[Layer], str]:
    signed = payload(t.identity, t.digest)
    edited = signed.replace(b'"timestamp":1700000000', b'"timestamp":1700000001')
    return [Layer(edited, sign_b64(signed))], NOT_VERIFIED


def _other_key(t: Subject) -> tuple[list[Layer], str]:
    return [signed_layer(payload(t.identity, t.digest), KEY2, KEY2_PASS)], NOT_VERIFIED


def _no_annotation(t: Subject) -> tuple[list[Layer], str]:
    return [Layer(payload(t.identity, t.digest), None)], "no signature annotation"


def _not_base64(t: Subject) -> tuple[list[Layer], str]:
    good = payload(t.identity, t.digest)
    broken = sign_b64(good)[:-4] + "!!!!"
    return [Layer(good, broken)], "signature annotation is not valid base64"


def _descriptor_names_other_bytes(t: Subject) -> tuple[list[Layer], str]:
    """The descriptor's digest is blob A's (stored, intact); the signature is over bytes B."""
    blob_a = payload(t.identity, t.digest, timestamp=1)
    bytes_b = payload(t.identity, t.digest, timestamp=2)
    return [Layer(blob_a, sign_b64(bytes_b))], NOT_VERIFIED


def _raw_r_s(t: Subject) -> tuple[list[Layer], str]:
    """A valid ECDSA signature, written as r||s (IEEE P1363) instead of DER."""
    blob = payload(t.identity, t.digest)
    r, s = decode_dss_signature(base64.b64decode(sign_b64(blob)))
    raw = base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()
    return [Layer(blob, raw)], RAW_R_S


def _not_simple_signing(t: Subject) -> tuple[list[Layer], str]:
    media_type = "application/vnd.oci.image.layer.v1.tar"
    layer = signed_layer(payload(t.identity, t.digest))
    layer.media_type = media_type
    return [layer], f"not a simple signing layer (media type {media_type!r})"


def _declared_too_large(t: Subject) -> tuple[list[Layer], str]:
    layer = signed_layer(payload(t.identity, t.digest))
    layer.size = MAX_SIGNATURE_BLOB + 1
    reason = (
        f"payload blob is {MAX_SIGNATURE_BLOB + 1} bytes, over the {MAX_SIGNATURE_BLOB} byte limit"
    )
    return [layer], reason


def _malformed(document: bytes, rule: str) -> Callable[[Subject], tuple[list[Layer], str]]:
    def build(t: Subject) -> tuple[list[Layer], str]:
        blob = document.replace(b"IDENTITY", t.identity.encode()).replace(
            b"DIGEST", t.digest.encode()
        )
        return [signed_layer(blob)], f"malformed payload: {rule}"

    return build


CRITICAL = critical("IDENTITY", "DIGEST").encode()
OPTIONAL = b'{"creator":"hangar tests","timestamp":1700000000}'

TAMPER_CASES: dict[str, Callable[[Subject], tuple[list[Layer], str]]] = {
    "payload-edited-after-signing": _edited_after_signing,
    "signed-by-another-key": _other_key,
    "annotation-missing": _no_annotation,
    "annotation-not-base64": _not_base64,
    "descriptor-names-a-blob-of-other-bytes": _descriptor_names_other_bytes,
    "raw-r-s-signature": _raw_r_s,
    "not-a-simple-signing-layer": _not_simple_signing,
    "declared-size-over-the-limit": _declared_too_large,
    "extra-top-level-field": _malformed(
        b'{"critical":' + CRITICAL + b',"optional":' + OPTIONAL + b',"extra":true}',
        'unexpected field "extra" at top level',
    ),
    "extra-critical-field": _malformed(
        b'{"critical":' + CRITICAL[:-1] + b',"extra":1},"optional":' + OPTIONAL + b"}",
        'unexpected field "extra" in critical',
    ),
    "non-integer-timestamp": _malformed(
        b'{"critical":' + CRITICAL + b',"optional":{"timestamp":1700000000.5}}',
        "timestamp is not an integer",
    ),
    "duplicate-keys": _malformed(
        b'{"critical":' + CRITICAL + b',"critical":' + CRITICAL + b',"optional":null}',
        'duplicate key "critical" at top level',
    ),
    "missing-optional": _malformed(
        b'{"critical":' + CRITICAL + b"}", 'missing field "optional" at top level'
    ),
}


def _assert_fails_with(t: Subject, home: Path, tmp_path: Path, reason: str) -> None:
    list_file = write_list(tmp_path / "list", t.ref)
    result = run_hangar(validate_args(list_file, t.server), home, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert fail_lines(result.stderr) == [f"FAIL: [{t.ref}] linux/amd64 {t.digest}: {reason}"]
    assert pass_lines(result.stderr) == []
    assert failed_lines(tmp_path / "sign-failed.txt") == [t.ref]
    assert summary(1, 0, 0, 1) in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("case", list(TAMPER_CASES))
def test_tampered_attachment_fails_with_its_reason(
    subject: Subject, home: Path, tmp_path: Path, case: str
) -> None:
    layers, reason = TAMPER_CASES[case](subject)
    push_attachment(subject.server, subject.repo, subject.digest, layers)
    _assert_fails_with(subject, home, tmp_path, reason)


def test_a_good_layer_beside_each_bad_one_passes(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    """One image per tampering case, its attachment = [the bad layer, a good layer]: one good
    signature is enough; the report keeps the bad layer's verdict. (One run for all cases.)"""
    repo = repo_name("mixed")
    name = f"{registry_http.host}/{repo}"
    expected: dict[str, tuple[str, str]] = {}  # ref -> (digest, reason of the bad layer)
    for case, build in TAMPER_CASES.items():
        image = push_image(registry_http, repo, case, kind="oci-manifest")
        subject = Subject(registry_http, repo, f"{name}:{case}", image.digest, f"{name}:{case}")
        bad, reason = build(subject)
        good = signed_layer(payload(subject.identity, subject.digest, timestamp=1700000099))
        push_attachment(registry_http, repo, subject.digest, [*bad, good])
        expected[subject.ref] = (subject.digest, reason)
    list_file = write_list(tmp_path / "list", *expected)
    report = tmp_path / "report.json"
    result = run_hangar(
        validate_args(list_file, registry_http, "--report", str(report), "-j", "4"),
        home,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(pass_lines(result.stderr)) == sorted(f"PASS: [{ref}]" for ref in expected)
    records = json.loads(report.read_text())["results"]
    assert sorted(record["image"] for record in records) == sorted(expected)
    for record in records:
        digest, reason = expected[record["image"]]
        [entry] = record["digests"]
        assert entry["digest"] == digest and entry["passed"] is True
        bad, good = entry["signatures"]
        assert (bad["accepted"], bad["reason"]) == (False, reason), record["image"]
        assert (good["accepted"], good["reason"]) == (True, "accepted")
        assert good["key"] == fingerprint(KEY1_PUB)
        assert good["identity"] == record["image"]
        assert good["creator"] == "hangar tests"
        assert good["timestamp"] == 1700000099


# -- a layer that cannot be read: podman/CRI-O reject the image, whatever else is there ------

UNREADABLE_CONSEQUENCE = (
    "podman/CRI-O reject the image when any layer of its .sig attachment cannot be read, "
    "even beside a valid signature: repair or remove that layer"
)


def unreadable(position: int, total: int, digest: str, media_type: str, problem: str) -> str:
    return (
        f"layer {position}/{total} {digest} ({media_type}) cannot be read: {problem} "
        f"({UNREADABLE_CONSEQUENCE})"
    )


@dataclass(frozen=True)
class Unreadable:
    layer: Layer
    problem: str
    delete_after: bool = False  # distribution refuses a manifest naming a missing blob


def _unreadable_cases() -> dict[str, Callable[[Subject], Unreadable]]:
    too_large = f"exceeded maximum allowed size of {MAX_SIGNATURE_BLOB} bytes"

    def big_signature(t: Subject) -> Unreadable:
        blob = payload(t.identity, t.digest) + b" " * MAX_SIGNATURE_BLOB
        return Unreadable(
            Layer(blob, sign_b64(blob), size=370), f"{too_large} (its descriptor says 370 bytes)"
        )

    def big_attestation(t: Subject) -> Unreadable:
        blob = in_toto_statement(MAX_SIGNATURE_BLOB)
        layer = Layer(blob, None, media_type=IN_TOTO)
        return Unreadable(layer, f"{too_large} (its descriptor says {len(blob)} bytes)")

    def missing_attestation(t: Subject) -> Unreadable:
        layer = Layer(in_toto_statement(secrets.randbelow(1000)), None, media_type=IN_TOTO)
        return Unreadable(layer, "blob unknown to registry", delete_after=True)

    def missing_signature(t: Subject) -> Unreadable:
        layer = signed_layer(payload(t.identity, t.digest, timestamp=1700000123))
        return Unreadable(layer, "blob unknown to registry", delete_after=True)

    return {
        "signature-served-over-4-mib": big_signature,
        "attestation-over-4-mib": big_attestation,
        "attestation-blob-missing": missing_attestation,
        "signature-blob-missing": missing_signature,
    }


UNREADABLE_CASES = _unreadable_cases()


@pytest.mark.parametrize("case", list(UNREADABLE_CASES))
@pytest.mark.parametrize("position", ["after-the-good-layer", "before-the-good-layer"])
def test_an_unreadable_layer_anywhere_fails_the_image(
    subject: Subject, home: Path, tmp_path: Path, case: str, position: str
) -> None:
    """containers/image fetches every layer first and rejects the image on the first it cannot
    read, whatever its media type: a valid signature beside it does not help."""
    bad = UNREADABLE_CASES[case](subject)
    good = signed_layer(payload(subject.identity, subject.digest, timestamp=1700000099))
    layers = [good, bad.layer] if position == "after-the-good-layer" else [bad.layer, good]
    push_attachment(subject.server, subject.repo, subject.digest, layers)
    bad_digest = bad.layer.descriptor()["digest"]
    if bad.delete_after:
        deleted = http.request(subject.server, "DELETE", f"/v2/{subject.repo}/blobs/{bad_digest}")
        assert deleted.status == 202
    number = layers.index(bad.layer) + 1
    reason = unreadable(number, 2, bad_digest, bad.layer.media_type, bad.problem)
    _assert_fails_with(subject, home, tmp_path, reason)
    report = tmp_path / "report.json"
    list_file = tmp_path / "list"
    run_hangar(validate_args(list_file, subject.server, "--report", str(report)), home)
    [entry] = json.loads(report.read_text())["results"][0]["digests"]
    verdicts = {s["layer"]: (s["accepted"], s["reason"]) for s in entry["signatures"]}
    assert verdicts[bad_digest] == (False, f"cannot be read: {bad.problem}")
    assert verdicts[good.descriptor()["digest"]] == (True, "accepted")


def test_registry_refuses_a_blob_under_another_digest(subject: Subject) -> None:
    """Why the mismatch cases are built the way they are: distribution checks every upload
    (DIGEST_INVALID), so the only ways to make a layer's blob disagree with its signature are
    a descriptor naming a stored blob of other bytes (case descriptor-names-a-blob-of-other-
    bytes) and storage altered behind the registry's back (the next test)."""
    server, repo = subject.server, subject.repo
    opened = http.request(server, "POST", f"/v2/{repo}/blobs/uploads/", body=b"")
    assert opened.status == 202
    location = opened.header("Location") or ""
    separator = "&" if "?" in location else "?"
    claimed = http.sha256_digest(b"bytes A")
    path = location[location.index("/v2/") :] + f"{separator}digest={claimed}"
    refused = http.request(server, "PUT", path, body=b"bytes B")
    assert refused.status == 400 and b"DIGEST_INVALID" in refused.body


def test_blob_altered_in_storage_does_not_match_its_digest(
    subject: Subject, home: Path, tmp_path: Path
) -> None:
    """A registry serves what its storage holds without re-hashing it: hangar checks."""
    good = signed_layer(payload(subject.identity, subject.digest))
    push_attachment(subject.server, subject.repo, subject.digest, [good])
    digest = http.sha256_digest(good.blob)
    stored = blob_file(subject.server, digest)
    assert stored.read_bytes() == good.blob
    altered = good.blob.replace(b"1700000000", b"1700000001")  # same size: same Content-Length
    stored.write_bytes(altered)
    assert http.get_blob(subject.server, subject.repo, digest) == altered
    _assert_fails_with(
        subject,
        home,
        tmp_path,
        unreadable(1, 1, digest, SIMPLESIGNING, "digest mismatch (the registry sent other bytes)"),
    )


def test_blob_deleted_after_the_attachment_was_written(
    subject: Subject, home: Path, tmp_path: Path
) -> None:
    good = signed_layer(payload(subject.identity, subject.digest))
    push_attachment(subject.server, subject.repo, subject.digest, [good])
    digest = http.sha256_digest(good.blob)
    path = f"/v2/{subject.repo}/blobs/{digest}"
    assert http.request(subject.server, "DELETE", path).status == 202
    _assert_fails_with(
        subject, home, tmp_path, unreadable(1, 1, digest, SIMPLESIGNING, "blob unknown to registry")
    )


def test_signature_of_another_image_copied_to_this_one(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("copied")
    image_a = push_image(registry_http, repo, "a", kind="oci-manifest")
    image_b = push_image(registry_http, repo, "b", kind="oci-manifest")
    name = f"{registry_http.host}/{repo}"
    signed = run_hangar(
        sign_args(write_list(tmp_path / "a.list", f"{name}:a"), registry_http), home
    )
    assert signed.returncode == 0, signed.stderr
    sig_a = http.get_manifest(registry_http, repo, sig_tag(image_a.digest))[0]
    http.put_manifest(registry_http, repo, sig_tag(image_b.digest), sig_a, OCI_MANIFEST)
    subject = Subject(registry_http, repo, f"{name}:b", image_b.digest, f"{name}:b")
    _assert_fails_with(
        subject, home, tmp_path, f"payload names {image_a.digest} not {image_b.digest}"
    )


def test_identity_of_another_repository_in_a_hand_made_signature(
    subject: Subject, home: Path, tmp_path: Path
) -> None:
    other = f"{subject.server.host}/someone/else:v1"
    push_attachment(
        subject.server, subject.repo, subject.digest, [signed_layer(payload(other, subject.digest))]
    )
    image = f"{subject.ref.rsplit(':', 1)[0]}@{subject.digest}"
    _assert_fails_with(
        subject, home, tmp_path, f"identity {other} does not match {image} (matchRepoDigestOrExact)"
    )


def test_sig_tag_holding_something_else(subject: Subject, home: Path, tmp_path: Path) -> None:
    """A `.sig` tag that is not an OCI image manifest is a verdict on that digest."""
    index = compact(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [],
        }
    )
    http.put_manifest(
        subject.server,
        subject.repo,
        sig_tag(subject.digest),
        index,
        "application/vnd.oci.image.index.v1+json",
    )
    _assert_fails_with(
        subject,
        home,
        tmp_path,
        "unreadable signature attachment: the signature attachment is a "
        "'application/vnd.oci.image.index.v1+json' document, not an OCI image manifest",
    )


def test_attachment_with_no_layers(subject: Subject, home: Path, tmp_path: Path) -> None:
    push_attachment(subject.server, subject.repo, subject.digest, [])
    _assert_fails_with(subject, home, tmp_path, "no signature (the attachment has no layers)")


def test_unsigned_image(subject: Subject, home: Path, tmp_path: Path) -> None:
    _assert_fails_with(subject, home, tmp_path, "no signature")


# -- keys --------------------------------------------------------------------------------


def test_key_rotation_any_one_key_is_enough(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("rotation")
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    ref = f"{registry_http.host}/{repo}:v1"
    list_file = write_list(tmp_path / "list", ref)
    signed = run_hangar(sign_args(list_file, registry_http, key=KEY2, passphrase=KEY2_PASS), home)
    assert signed.returncode == 0, signed.stderr

    old = run_hangar(validate_args(list_file, registry_http, keys=(KEY1_PUB,)), home, cwd=tmp_path)
    assert old.returncode == 1
    assert fail_lines(old.stderr) == [f"FAIL: [{ref}] linux/amd64 {image.digest}: {NOT_VERIFIED}"]

    neither = run_hangar(
        validate_args(list_file, registry_http, keys=(KEY1_PUB, KEY3_PUB)), home, cwd=tmp_path
    )
    assert neither.returncode == 1
    assert fail_lines(neither.stderr) == [
        f"FAIL: [{ref}] linux/amd64 {image.digest}: signature does not verify with any of "
        "the 2 keys (signed by another key, or altered)"
    ]

    report = tmp_path / "report.json"
    both = run_hangar(
        validate_args(list_file, registry_http, "--report", str(report), keys=(KEY1_PUB, KEY2_PUB)),
        home,
        cwd=tmp_path,
    )
    assert both.returncode == 0, both.stderr
    assert pass_lines(both.stderr) == [f"PASS: [{ref}]"]
    assert not (tmp_path / "sign-failed.txt").exists()
    [record] = json.loads(report.read_text())["results"]
    [signature] = record["digests"][0]["signatures"]
    assert signature["key"] == fingerprint(KEY2_PUB)


def test_key_file_errors_are_one_clear_line(home: Path, tmp_path: Path) -> None:
    list_file = write_list(tmp_path / "list", "127.0.0.1:9/never/contacted:v1")
    missing = tmp_path / "missing.pub"
    cases = [  # a missing file is a usage error (2), a file that holds no public key is not
        ((missing,), f"public key {missing}: the file does not exist", 2),
        ((KEY1_PUB, missing), f"public key {missing}: the file does not exist", 2),
        (
            (KEY1,),
            f'public key {KEY1}: unsupported PEM type "ENCRYPTED COSIGN PRIVATE KEY" '
            "(this is a private key; validation needs the public key of the pair",
            1,
        ),
    ]
    for keys, message, code in cases:
        args = ["sign", "validate", "-f", str(list_file)]
        for key in keys:
            args += ["-p", str(key)]
        result = run_hangar(args, home, cwd=tmp_path)
        assert result.returncode == code, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("[ERRO]")]
        assert len(errors) == 1 and message in errors[0], result.stderr
        assert "Traceback" not in result.stderr
        assert "Validating" not in result.stderr  # refused before any image
        assert not (tmp_path / "sign-failed.txt").exists()
    no_key = run_hangar(["sign", "validate", "-f", str(list_file)], home, cwd=tmp_path)
    assert no_key.returncode == 2
    assert "-p/--sigstore-pubkey is required" in no_key.stderr


# -- platforms ---------------------------------------------------------------------------


def test_multi_arch_with_one_platform_signed_names_the_other(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("half")
    image = push_image(registry_http, repo, "v1", kind="oci-index")
    ref = f"{registry_http.host}/{repo}:v1"
    list_file = write_list(tmp_path / "list", ref)
    signed = run_hangar(sign_args(list_file, registry_http, "-a", "amd64"), home)
    assert signed.returncode == 0, signed.stderr

    result = run_hangar(validate_args(list_file, registry_http), home, cwd=tmp_path)
    assert result.returncode == 1
    assert fail_lines(result.stderr) == [
        f"FAIL: [{ref}] linux/arm64 {image.platforms['linux/arm64']}: no signature"
    ]
    assert f"{ref}: 1 of 2 digest(s) not accepted (linux/arm64)" in result.stderr
    assert failed_lines(tmp_path / "sign-failed.txt") == [ref]
    assert summary(1, 0, 0, 1) in result.stderr

    only_signed = run_hangar(validate_args(list_file, registry_http, "-a", "amd64"), home)
    assert only_signed.returncode == 0, only_signed.stderr
    assert pass_lines(only_signed.stderr) == [f"PASS: [{ref}]"]
    assert "1 digests verified" in only_signed.stderr


@pytest.fixture(scope="module")
def half_signed(
    registry_http: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> PushedImage:
    """A four-platform list where only linux/amd64 and linux/arm/v7 (and the index) are signed;
    linux/arm64 and windows/amd64 are not."""
    work = tmp_path_factory.mktemp("half-signed")
    image = push_image(registry_http, repo_name("filter"), "v1", kind="docker-list")
    list_file = write_list(work / "list", f"{registry_http.host}/{image.reference}")
    signed = run_hangar(
        sign_args(list_file, registry_http, "-a", "amd64,arm/v7"), new_home(tmp_path_factory, "h")
    )
    assert signed.returncode == 0, signed.stderr
    return image


@pytest.mark.parametrize(
    ("flags", "failing"),
    [
        ([], ["linux/arm64"]),  # the defaults: linux, amd64 and arm64
        (["-a", "amd64"], []),
        (["-a", "arm/v7"], []),
        (["-a", "arm"], []),  # an arch without variant selects every variant
        (["-a", "arm64"], ["linux/arm64"]),
        (["--os", "windows", "-a", "amd64"], ["windows/amd64"]),
        (["--os", "linux,windows", "-a", "amd64,arm/v7"], ["windows/amd64"]),
        (["--require-index-signature", "-a", "amd64,arm/v7"], []),
    ],
)
def test_platform_filter_is_honoured(
    half_signed: PushedImage,
    registry_http: RegistryServer,
    home: Path,
    tmp_path: Path,
    flags: list[str],
    failing: list[str],
) -> None:
    ref = f"{registry_http.host}/{half_signed.reference}"
    list_file = write_list(tmp_path / "list", ref)
    result = run_hangar(validate_args(list_file, registry_http, *flags), home, cwd=tmp_path)
    assert fail_lines(result.stderr) == [
        f"FAIL: [{ref}] {platform} {half_signed.platforms[platform]}: no signature"
        for platform in failing
    ]
    assert result.returncode == (1 if failing else 0), result.stderr
    assert pass_lines(result.stderr) == ([] if failing else [f"PASS: [{ref}]"])


def test_image_with_no_matching_platform_is_skipped(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("s390x")
    push_image(registry_http, repo, "v1", kind="oci-manifest", platforms=["linux/s390x"])
    ref = f"{registry_http.host}/{repo}:v1"
    result = run_hangar(
        validate_args(write_list(tmp_path / "list", ref), registry_http), home, cwd=tmp_path
    )
    # Alone in its list, nothing was validated at all: that is a failure naming the platforms.
    assert result.returncode == 1, result.stderr
    assert f"no matching platform (it has linux/s390x), skipped [{ref}]" in result.stderr
    assert summary(1, 0, 1, 0) in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "[ERRO] nothing was validated: no image of the list has a platform matching --os/--arch; "
        "the images have: linux/s390x"
    )
    assert not (tmp_path / "sign-failed.txt").exists()


# -- registries with credentials, concurrency --------------------------------------------


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_registry_with_credentials(
    kind: str, request: pytest.FixtureRequest, home: Path, tmp_path: Path
) -> None:
    server: RegistryServer = request.getfixturevalue(f"registry_{kind}")
    repo = repo_name(kind)
    image = push_image(server, repo, "v1", kind="oci-index")
    ref = f"{server.host}/{repo}:v1"
    list_file = write_list(tmp_path / "list", ref)

    denied = run_hangar(validate_args(list_file, server), home, cwd=tmp_path)
    assert denied.returncode == 3  # not logged in: could not check
    assert f"hangar login {server.host}" in denied.stderr
    assert failed_lines(tmp_path / "sign-failed.txt") == [ref]

    write_auth_json(
        home / ".config/containers/auth.json", server.host, server.username, server.password
    )
    unsigned = run_hangar(validate_args(list_file, server), home, cwd=tmp_path)
    assert unsigned.returncode == 1
    assert fail_lines(unsigned.stderr) == [
        f"FAIL: [{ref}] {platform} {image.platforms[platform]}: no signature"
        for platform in PLATFORMS
    ]
    assert run_hangar(sign_args(list_file, server), home).returncode == 0
    report = tmp_path / "report.json"
    result = run_hangar(
        validate_args(list_file, server, "--require-index-signature", "--report", str(report)),
        home,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert pass_lines(result.stderr) == [f"PASS: [{ref}]"]
    assert "3 digests verified" in result.stderr
    assert not (tmp_path / "sign-failed.txt").exists()
    written = result.stderr + report.read_text()
    secrets_seen = [server.password]
    if server.token_server is not None:
        secrets_seen += [token.token for token in server.token_server.issued]
    assert not any(secret in written for secret in secrets_seen)


def test_several_images_with_four_workers(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("jobs")
    name = f"{registry_http.host}/{repo}"
    kinds = [
        "oci-index",
        "docker-list",
        "oci-manifest",
        "docker-manifest",
        "oci-index-attestations",
    ]
    signed_refs = [f"{name}:signed-{i}" for i in range(8)]
    unsigned_refs = [f"{name}:unsigned-{i}" for i in range(3)]
    for i, ref in enumerate(signed_refs + unsigned_refs):
        push_image(registry_http, repo, ref.rsplit(":", 1)[1], kind=kinds[i % len(kinds)])
    signed = run_hangar(
        sign_args(write_list(tmp_path / "sign.list", *signed_refs), registry_http, "-j", "4"), home
    )
    assert signed.returncode == 0, signed.stderr
    missing = f"{name}:not-pushed-{secrets.token_hex(2)}"
    lines = [*signed_refs, *unsigned_refs, missing]
    list_file = write_list(tmp_path / "list", *lines)
    result = run_hangar(validate_args(list_file, registry_http, "-j", "4"), home, cwd=tmp_path)
    assert result.returncode == 1
    assert "with 4 worker(s)" in result.stderr
    assert sorted(pass_lines(result.stderr)) == sorted(f"PASS: [{ref}]" for ref in signed_refs)
    failed_refs = {
        line.split("]", 1)[0].removeprefix("FAIL: [") for line in fail_lines(result.stderr)
    }
    assert failed_refs == set(unsigned_refs)
    assert all(line.endswith(": no signature") for line in fail_lines(result.stderr))
    assert f"{missing}: image {missing} not found" in result.stderr
    failed = failed_lines(tmp_path / "sign-failed.txt")
    assert sorted(failed) == sorted([*unsigned_refs, missing])
    assert summary(12, 8, 0, 4) in result.stderr


def test_exact_repository_that_is_not_a_reference(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    list_file = write_list(tmp_path / "list", f"{registry_http.host}/none/here:v1")
    result = run_hangar(
        validate_args(list_file, registry_http, "--exact-repository", "Not/A/Repo"),
        home,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "Not/A/Repo" in result.stderr and "lowercase" in result.stderr
    assert "Traceback" not in result.stderr


def test_sign_refuses_to_add_beside_a_missing_foreign_layer(
    subject: Subject, home: Path, tmp_path: Path
) -> None:
    """An attestation someone else attached, whose blob is gone: the registry refuses any
    rewrite of the tag naming it, and consumers reject the image. sign fails that line at once
    with what to repair, and leaves the attachment as it was."""
    statement = in_toto_statement(secrets.randbelow(1000))
    foreign = Layer(statement, None, media_type=IN_TOTO)
    before = push_attachment(subject.server, subject.repo, subject.digest, [foreign])
    digest = http.sha256_digest(statement)
    assert (
        http.request(subject.server, "DELETE", f"/v2/{subject.repo}/blobs/{digest}").status == 202
    )
    list_file = write_list(tmp_path / "list", subject.ref)
    signed = run_hangar(sign_args(list_file, subject.server), home, cwd=tmp_path)
    assert signed.returncode == 1, signed.stderr
    line = next(line for line in signed.stderr.splitlines() if "cannot add a signature" in line)
    subs = {subject.server.host: "REGISTRY", subject.repo: "good/app"}
    documented("sign-attachment-blob-missing", 1, line, subs)
    assert (
        f"[ERRO] [IMG:1] {subject.ref}: linux/amd64 {subject.digest}: cannot add a signature: "
        f"the .sig attachment names layer 1/1 {digest} ({IN_TOTO}), whose blob is not in the "
        "registry; the registry refuses to store the attachment with it, and podman/CRI-O "
        "reject the image because of it (push that blob again, or remove that layer from the "
        ".sig tag)"
    ) in signed.stderr.splitlines()
    assert failed_lines(tmp_path / "sign-failed.txt") == [subject.ref]
    after = http.get_manifest(subject.server, subject.repo, sig_tag(subject.digest))
    assert http.sha256_digest(after[0]) == before
    _assert_fails_with(
        subject, home, tmp_path, unreadable(1, 1, digest, IN_TOTO, "blob unknown to registry")
    )


# -- every instance (`skopeo copy --all`) and attestation manifests ------------------------


def test_all_instances_names_each_unsigned_instance_until_attestations_are_signed(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    """copy --all checks every instance of the index against the policy: each platform,
    filtered or not, and the buildx attestation manifests."""
    repo = repo_name("instances")
    platforms = ("linux/amd64", "linux/arm64", "linux/s390x")
    image = push_image(
        registry_http, repo, "v1", kind="oci-index-attestations", platforms=platforms
    )
    ref = f"{registry_http.host}/{repo}:v1"
    list_file = write_list(tmp_path / "list", ref)
    every = validate_args(list_file, registry_http, "--all-instances")

    def unsigned_instances() -> list[str]:
        result = run_hangar(every, home, cwd=tmp_path)
        assert result.returncode == (1 if fail_lines(result.stderr) else 0), result.stderr
        return fail_lines(result.stderr)

    def fail(label: str, digest: str) -> str:
        return f"FAIL: [{ref}] {label} {digest}: no signature"

    attestation = {p: fail(f"attestation of {p}", image.attestations[p]) for p in platforms}
    assert run_hangar(sign_args(list_file, registry_http), home).returncode == 0
    default_platforms_only = run_hangar(validate_args(list_file, registry_http), home)
    assert default_platforms_only.returncode == 0, default_platforms_only.stderr
    assert unsigned_instances() == [
        fail("linux/s390x", image.platforms["linux/s390x"]),
        *attestation.values(),
    ]

    signed = run_hangar(sign_args(list_file, registry_http, "--sign-attestations"), home)
    assert signed.returncode == 0, signed.stderr
    for platform in ("linux/amd64", "linux/arm64"):
        digest = image.attestations[platform]
        assert f"Signed [{registry_http.host}/{repo}@{digest}] (attestation of {platform})" in (
            signed.stderr
        )
        check_hangar_attachment(registry_http, repo, digest, ref, KEY1_PUB)
    assert unsigned_instances() == [
        fail("linux/s390x", image.platforms["linux/s390x"]),
        attestation["linux/s390x"],
    ]

    everything = sign_args(
        list_file, registry_http, "--sign-attestations", "-a", "amd64,arm64,s390x"
    )
    assert run_hangar(everything, home).returncode == 0
    assert unsigned_instances() == []
    report = tmp_path / "report.json"
    run_hangar([*every, "--report", str(report)], home, cwd=tmp_path)
    [record] = json.loads(report.read_text())["results"]
    assert sorted(entry["digest"] for entry in record["digests"]) == sorted(
        [*image.platforms.values(), *image.attestations.values()]
    )


def test_failed_validate_says_how_to_resign_and_that_command_works(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo = repo_name("resign")
    push_image(registry_http, repo, "v1", kind="oci-index")
    list_file = write_list(tmp_path / "list", f"{registry_http.host}/{repo}:v1")
    result = run_hangar(
        validate_args(list_file, registry_http, "--arch", "amd64"), isolated_home, cwd=tmp_path
    )
    assert result.returncode == 1
    hint = next(line for line in result.stderr.splitlines() if "re-sign them with" in line)
    command = hint.split("`")[1]
    assert command == "hangar sign -f sign-failed.txt -k KEY --arch amd64 --tls-verify=false"
    # the hint, run as written (with a real key), makes the same validate pass
    words = command.split()[1:]
    words[words.index("KEY")] = str(KEY1)
    words += ["--sigstore-passphrase-file", str(KEY1_PASS)]
    resign = run_hangar(words, isolated_home, cwd=tmp_path)
    assert resign.returncode == 0, resign.stderr
    again = run_hangar(
        validate_args(list_file, registry_http, "--arch", "amd64"), isolated_home, cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
