"""`hangar sign validate --policy/--registries-d/--system-policy` end to end: the real command,
a real registry, images signed by `hangar sign`, and the user's own containers configuration.

Each case states the verdict containers/image gives for that configuration (signature/
policy_eval_*.go, docker/registries_d.go) and checks the ACCEPTED/REJECTED lines, the exit code,
the failed file and the --report JSON.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import http
from tests.support.attachments import (
    MAX_SIGNATURE_BLOB,
    Layer,
    in_toto_statement,
    payload,
    push_attachment,
    signed_layer,
)
from tests.support.cli import KEY1_PUB, KEY2_PUB, failed_lines, run_hangar, sign_args
from tests.support.errors_doc import documented
from tests.support.images import IN_TOTO, PushedImage, push_image
from tests.support.policy_files import attachments_on, registries_d, sigstore, write_policy
from tests.support.registry import RegistryServer

NO_SIGNATURE = "A signature was required, but no signature exists"


@dataclass(frozen=True)
class Signed:
    server: RegistryServer
    image: PushedImage
    ref: str  # HOST/REPO:v1


def repo_name(prefix: str) -> str:
    return f"policy-{prefix}/app-{uuid.uuid4().hex[:8]}"


def write_list(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def push_and_sign(
    server: RegistryServer, home: Path, work: Path, kind: str = "oci-index", *flags: str
) -> Signed:
    image = push_image(server, repo_name("signed"), "v1", kind=kind)
    ref = f"{server.host}/{image.repository}:v1"
    signed = run_hangar(sign_args(write_list(work / "to-sign", ref), server, *flags), home)
    assert signed.returncode == 0, signed.stderr
    return Signed(server, image, ref)


def validate(
    list_file: Path, server: RegistryServer, home: Path, cwd: Path, *flags: str
) -> tuple[int, list[str], str]:
    args = ["sign", "validate", "-f", str(list_file), "--tls-verify=false", *flags]
    result = run_hangar(args, home, cwd=cwd)
    verdicts = [
        line[line.index("] ", line.index("[IMG:")) + 2 :]
        for line in result.stderr.splitlines()
        if any(word in line for word in ("ACCEPTED: ", "REJECTED: ", "NOT CHECKED: "))
    ]
    return result.returncode, verdicts, result.stderr


def test_signed_image_accepted_by_tag_and_by_digest_per_platform(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    signed = push_and_sign(registry_http, isolated_home, tmp_path)
    host = registry_http.host
    policy = write_policy(tmp_path / "policy.json", {host: [sigstore()]})
    regs = attachments_on(tmp_path / "registries.d", host)
    list_file = write_list(tmp_path / "list", signed.ref)
    report = tmp_path / "report.json"
    code, verdicts, stderr = validate(
        list_file, registry_http, isolated_home, tmp_path,
        "--policy", str(policy), "--registries-d", str(regs), "--report", str(report),
    )  # fmt: skip
    assert code == 0, stderr
    assert verdicts == [
        f"ACCEPTED: [{signed.ref}] {platform} {signed.image.platforms[platform]}: "
        "pulled by tag, by digest"
        for platform in ("linux/amd64", "linux/arm64")
    ]
    records = json.loads(report.read_text())["results"]
    text = json.dumps(records)
    assert f"{registry_http.host}/{signed.image.repository}@{signed.image.digest}" in text
    assert '"verdict": "ACCEPTED"' in text


def test_attachments_off_in_registries_d_is_a_rejection_with_the_fix(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    signed = push_and_sign(registry_http, isolated_home, tmp_path, "oci-manifest")
    host = registry_http.host
    policy = write_policy(tmp_path / "policy.json", {host: [sigstore()]})
    # What Debian ships: a lookaside for default-docker, attachments never turned on.
    regs = registries_d(
        tmp_path / "registries.d", "default-docker:\n  lookaside: file:///var/lib/sigstore\n"
    )
    list_file = write_list(tmp_path / "list", signed.ref)
    code, verdicts, stderr = validate(
        list_file, registry_http, isolated_home, tmp_path,
        "--policy", str(policy), "--registries-d", str(regs),
    )  # fmt: skip
    assert code == 1
    digest = signed.image.digest
    fix = (
        f"{NO_SIGNATURE}: podman will not look for these signatures: set "
        f"use-sigstore-attachments: true for {host} in registries.d"
    )
    subs = {host: "REGISTRY", signed.image.repository: "good/app"}
    documented(
        "policy-attachments-off", 1, next(x for x in stderr.splitlines() if "REJECTED" in x), subs
    )
    scope = f'(transports.docker."{host}")'
    assert verdicts == [
        f"REJECTED: [{signed.ref}] linux/amd64 {digest} pulled by tag as {signed.ref} {scope}: "
        + fix,
        f"REJECTED: [{signed.ref}] linux/amd64 {digest} pulled by digest as "
        f"{host}/{signed.image.repository}@{digest} {scope}: " + fix,
    ]
    assert failed_lines(tmp_path / "sign-failed.txt") == [signed.ref]


def test_unsigned_image_and_wrong_key_are_rejected(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    signed = push_and_sign(registry_http, isolated_home, tmp_path, "oci-manifest")
    unsigned = push_image(registry_http, repo_name("unsigned"), "v1", kind="oci-manifest")
    unsigned_ref = f"{registry_http.host}/{unsigned.repository}:v1"
    host = registry_http.host
    regs = attachments_on(tmp_path / "registries.d", host)
    list_file = write_list(tmp_path / "list", signed.ref, unsigned_ref)

    policy = write_policy(tmp_path / "policy.json", {host: [sigstore()]})
    code, verdicts, _ = validate(
        list_file, registry_http, isolated_home, tmp_path,
        "--policy", str(policy), "--registries-d", str(regs),
    )  # fmt: skip
    assert code == 1
    assert verdicts[0].startswith(f"ACCEPTED: [{signed.ref}] linux/amd64")
    assert [v.rsplit(": ", 1)[1] for v in verdicts[1:]] == [NO_SIGNATURE, NO_SIGNATURE]
    assert failed_lines(tmp_path / "sign-failed.txt") == [unsigned_ref]

    other_key = write_policy(tmp_path / "other.json", {host: [sigstore(KEY2_PUB)]})
    code, verdicts, _ = validate(
        write_list(tmp_path / "one", signed.ref), registry_http, isolated_home, tmp_path,
        "--policy", str(other_key), "--registries-d", str(regs),
    )  # fmt: skip
    assert code == 1
    assert len(verdicts) == 2
    assert all(v.startswith("REJECTED: ") and "does not verify" in v for v in verdicts)


def test_identity_rule_from_the_policy_decides_per_pull(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    # hangar signs the tag (host/repo:v1). matchExact accepts a pull by that tag only; pulled
    # by digest the reference is host/repo@digest, which no signature names.
    signed = push_and_sign(registry_http, isolated_home, tmp_path, "oci-manifest")
    host = registry_http.host
    regs = attachments_on(tmp_path / "registries.d", host)
    rule = {"type": "matchExact"}
    policy = write_policy(tmp_path / "policy.json", {host: [sigstore(signedIdentity=rule)]})
    list_file = write_list(tmp_path / "list", signed.ref)
    code, verdicts, _ = validate(
        list_file, registry_http, isolated_home, tmp_path,
        "--policy", str(policy), "--registries-d", str(regs),
    )  # fmt: skip
    assert code == 1
    digest = signed.image.digest
    assert verdicts[0].startswith(f"ACCEPTED: [{signed.ref}] linux/amd64 {digest} pulled by tag")
    assert verdicts[1].startswith(f"REJECTED: [{signed.ref}] linux/amd64 {digest} pulled by digest")
    assert "(matchExact)" in verdicts[1]


def test_scopes_accept_anything_reject_and_not_checkable(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    host = registry_http.host
    open_image = push_image(registry_http, "open/app", "v1", kind="oci-manifest")
    gpg_image = push_image(registry_http, "gpg/app", "v1", kind="oci-manifest")
    closed_image = push_image(registry_http, "closed/app", "v1", kind="oci-manifest")
    refs = [f"{host}/{image.repository}:v1" for image in (open_image, gpg_image, closed_image)]
    policy = write_policy(
        tmp_path / "policy.json",
        {
            f"{host}/open": [{"type": "insecureAcceptAnything"}],
            f"{host}/gpg": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}],
        },
    )
    regs = attachments_on(tmp_path / "registries.d", host)
    code, verdicts, stderr = validate(
        write_list(tmp_path / "list", *refs), registry_http, isolated_home, tmp_path,
        "--policy", str(policy), "--registries-d", str(regs),
    )  # fmt: skip
    assert code == 1
    assert verdicts[0].startswith(f"ACCEPTED: [{refs[0]}]")
    assert verdicts[1].startswith(f"NOT CHECKED: [{refs[1]}]")
    assert verdicts[1].endswith("signedBy (GPGKeys, simple signing) is not supported by hangar")
    assert verdicts[3].startswith(f"REJECTED: [{refs[2]}]")
    assert verdicts[3].endswith(
        f"(default): Running image docker://{refs[2]} is rejected by policy."
    )
    subs = {registry_http.host: "REGISTRY"}
    not_checked = next(line for line in stderr.splitlines() if "NOT CHECKED" in line)
    rejected = next(line for line in stderr.splitlines() if "is rejected by policy" in line)
    documented("policy-signed-by-not-checked", 1, not_checked, subs)
    documented("policy-rejected-by-default", 1, rejected, subs)
    assert failed_lines(tmp_path / "sign-failed.txt") == refs[1:]
    assert "Summary: 3 images: 1 passed, 0 skipped for platform, 2 failed" in stderr


def test_all_instances_under_the_policy(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    signed = push_and_sign(registry_http, isolated_home, tmp_path, "oci-index-attestations")
    host = registry_http.host
    policy = write_policy(tmp_path / "policy.json", {host: [sigstore()]})
    regs = attachments_on(tmp_path / "registries.d", host)
    list_file = write_list(tmp_path / "list", signed.ref)
    flags = ("--policy", str(policy), "--registries-d", str(regs))
    code, verdicts, _ = validate(list_file, registry_http, isolated_home, tmp_path, *flags)
    assert code == 0
    code, verdicts, _ = validate(
        list_file, registry_http, isolated_home, tmp_path, *flags, "--all-instances"
    )
    assert code == 1
    rejected = [v for v in verdicts if v.startswith("REJECTED: ")]
    assert rejected and all("attestation of linux/" in v for v in rejected)
    assert all(v.endswith(NO_SIGNATURE) for v in rejected)


def test_system_policy_reads_the_usual_locations(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    signed = push_and_sign(registry_http, isolated_home, tmp_path, "oci-manifest")
    config = isolated_home / ".config" / "containers"
    config.mkdir(parents=True)
    write_policy(config / "policy.json", {registry_http.host: [sigstore()]})
    attachments_on(config / "registries.d", registry_http.host)
    code, verdicts, stderr = validate(
        write_list(tmp_path / "list", signed.ref), registry_http, isolated_home, tmp_path,
        "--system-policy",
    )  # fmt: skip
    assert code == 0, stderr
    assert (
        f"[INFO] Policy {config / 'policy.json'}, registries.d {config / 'registries.d'}" in stderr
    )
    assert verdicts == [
        f"ACCEPTED: [{signed.ref}] linux/amd64 {signed.image.digest}: pulled by tag, by digest"
    ]


INVALID_POLICIES = {
    "policy-empty-requirements": (
        {"default": []},
        "default: the list of requirements must not be empty",
    ),
    "policy-unknown-key": (
        {"default": [{"type": "reject", "keyPath": "/k"}]},
        'default[0]: unknown key "keyPath"',
    ),
    "policy-no-default": ({"transports": {}}, 'the "default" policy is missing'),
    "policy-two-key-sources": (
        {"default": [{"type": "sigstoreSigned", "keyPath": "/k", "keyData": "YWJj"}]},
        "default[0]: exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio and pki",
    ),
}


@pytest.mark.parametrize("case", list(INVALID_POLICIES))
def test_invalid_policy_is_one_line_exit_2_before_any_network(
    isolated_home: Path, tmp_path: Path, case: str
) -> None:
    document, field = INVALID_POLICIES[case]
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(document))
    # 127.0.0.1:9 refuses connections: any network attempt would show as a per-line error.
    list_file = write_list(tmp_path / "list", "127.0.0.1:9/never/contacted:v1")
    result = run_hangar(
        ["sign", "validate", "-f", str(list_file), "--policy", str(policy)], isolated_home
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"[ERRO] invalid policy in {policy}: {field}"
        + result.stderr.split(field, 1)[1].rstrip("\n")
    ]
    assert "podman/CRI-O refuse this policy too" in result.stderr
    documented(case, 2, result.stderr.rstrip("\n"), {str(tmp_path): "TMP"})


POLICY_USAGE = {
    "usage-policy-with-public-key": (
        ["--policy", "P", "-p", str(KEY1_PUB)],
        "-p/--sigstore-pubkey is not used with --policy",
    ),
    "usage-policy-with-rule-flag": (
        ["--policy", "P", "--require-tag-identity"],
        "--require-tag-identity is not used",
    ),
    "usage-policy-twice": (
        ["--policy", "P", "--system-policy"],
        "--policy and --system-policy exclude each other",
    ),
    "usage-registries-d-alone": (
        ["--registries-d", "D", "-p", str(KEY1_PUB)],
        "--registries-d needs --policy FILE",
    ),
}


@pytest.mark.parametrize("case", list(POLICY_USAGE))
def test_usage_errors(isolated_home: Path, tmp_path: Path, case: str) -> None:
    flags, message = POLICY_USAGE[case]
    list_file = write_list(tmp_path / "list", "127.0.0.1:9/never/contacted:v1")
    result = run_hangar(["sign", "validate", "-f", str(list_file), *flags], isolated_home)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert message in result.stderr
    documented(case, 2, result.stderr.rstrip("\n"), {})


# --- hangar sign policy ------------------------------------------------------------------------


def consumer_blocks(stdout: str) -> dict[str, str]:
    """The three printed parts by their heading's first word: policy.json, registries.d,
    cosign; each without its `#` heading."""
    blocks = {}
    for block in stdout.strip("\n").split("\n\n"):
        heading, _, body = block.partition("\n")
        assert heading.startswith("# ")
        blocks[heading[2:].split()[0]] = body
    return blocks


def test_sign_policy_output_accepts_signed_and_rejects_unsigned(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    signed = push_and_sign(registry_http, isolated_home, tmp_path, "oci-manifest")
    namespace = signed.image.repository.split("/")[0]
    unsigned = push_image(registry_http, f"{namespace}/unsigned", "v1", kind="oci-manifest")
    unsigned_ref = f"{registry_http.host}/{unsigned.repository}:v1"
    scope = f"{registry_http.host}/{namespace}"

    printed = run_hangar(
        ["sign", "policy", "-p", str(KEY1_PUB), "--registry", scope], isolated_home
    )
    assert printed.returncode == 0, printed.stderr
    blocks = consumer_blocks(printed.stdout)
    assert set(blocks) == {
        "policy.json", "registries.d", "cosign", "kyverno-sig:", "kyverno-bundle:",
        "policy-controller:",
    }  # fmt: skip
    assert blocks["cosign"] == (
        f"cosign verify --key {KEY1_PUB} --insecure-ignore-tlog=true {scope}/IMAGE:TAG"
    )
    policy = tmp_path / "policy.json"
    policy.write_text(blocks["policy.json"])
    regs = registries_d(tmp_path / "registries.d", blocks["registries.d"] + "\n")

    list_file = write_list(tmp_path / "list", signed.ref, unsigned_ref)
    code, verdicts, _ = validate(
        list_file, registry_http, isolated_home, tmp_path,
        "--policy", str(policy), "--registries-d", str(regs),
    )  # fmt: skip
    assert code == 1
    assert verdicts[0] == (
        f"ACCEPTED: [{signed.ref}] linux/amd64 {signed.image.digest}: pulled by tag, by digest"
    )
    assert [v.split(":")[0] for v in verdicts[1:]] == ["REJECTED", "REJECTED"]
    assert all(v.endswith(NO_SIGNATURE) for v in verdicts[1:])
    assert failed_lines(tmp_path / "sign-failed.txt") == [unsigned_ref]


@pytest.mark.parametrize(
    ("identity", "rule"),
    [
        ("tag", "matchRepoDigestOrExact"),
        ("digest", "matchRepository"),
        ("repository", "matchRepository"),
    ],
)
def test_sign_policy_follows_the_signed_identity(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path, identity: str, rule: str
) -> None:
    # Each --signed-identity of `hangar sign`, with the rule printed for it, is accepted.
    signed = push_and_sign(
        registry_http, isolated_home, tmp_path, "oci-manifest", "--signed-identity", identity
    )
    printed = run_hangar(
        ["sign", "policy", "-p", str(KEY1_PUB), "--registry", registry_http.host,
         "--signed-identity", identity],
        isolated_home,
    )  # fmt: skip
    blocks = consumer_blocks(printed.stdout)
    assert json.loads(blocks["policy.json"])["transports"]["docker"][registry_http.host][0][
        "signedIdentity"
    ] == {"type": rule}
    (tmp_path / "policy.json").write_text(blocks["policy.json"])
    regs = registries_d(tmp_path / "registries.d", blocks["registries.d"] + "\n")
    code, verdicts, stderr = validate(
        write_list(tmp_path / "list", signed.ref), registry_http, isolated_home, tmp_path,
        "--policy", str(tmp_path / "policy.json"), "--registries-d", str(regs),
    )  # fmt: skip
    assert code == 0, stderr
    assert verdicts == [
        f"ACCEPTED: [{signed.ref}] linux/amd64 {signed.image.digest}: pulled by tag, by digest"
    ]


@pytest.mark.parametrize("registry", ["team", "", "example.com/UPPER"])
def test_sign_policy_refuses_what_is_not_a_registry(isolated_home: Path, registry: str) -> None:
    result = run_hangar(
        ["sign", "policy", "-p", str(KEY1_PUB), "--registry", registry], isolated_home
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"[ERRO] --registry {registry!r} is not a registry or namespace (write HOST[:PORT] or "
        "HOST[:PORT]/namespace, e.g. registry.example.com/team)"
    ]
    if registry == "team":
        documented("sign-policy-not-a-registry", 1, result.stderr.rstrip("\n"), {})


def test_unreadable_layer_rejects_only_where_podman_reads_signatures(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    # c/image reads the .sig attachment wherever registries.d turns attachments on: for
    # sigstoreSigned, and when the pull copies the signatures (copy/sign.go sourceSignatures,
    # whatever the policy). One layer it cannot read (here an in-toto statement over 4 MiB)
    # then rejects the image beside a valid signature.
    image = push_image(registry_http, repo_name("unreadable"), "v1", kind="oci-manifest")
    ref = f"{registry_http.host}/{image.repository}:v1"
    good = signed_layer(payload(ref, image.digest))
    big = Layer(in_toto_statement(MAX_SIGNATURE_BLOB), None, media_type=IN_TOTO)
    push_attachment(registry_http, image.repository, image.digest, [good, big])
    regs = attachments_on(tmp_path / "registries.d", registry_http.host)
    list_file = write_list(tmp_path / "list", ref)

    strict = write_policy(tmp_path / "strict.json", {registry_http.host: [sigstore()]})
    code, verdicts, _ = validate(
        list_file, registry_http, isolated_home, tmp_path,
        "--policy", str(strict), "--registries-d", str(regs),
    )  # fmt: skip
    assert code == 1
    assert len(verdicts) == 2
    big_digest = big.descriptor()["digest"]
    for verdict in verdicts:
        assert verdict.startswith(f"REJECTED: [{ref}] linux/amd64 {image.digest} pulled by")
        assert f"layer 2/2 {big_digest} ({IN_TOTO}) cannot be read: exceeded maximum" in verdict

    open_policy = write_policy(
        tmp_path / "open.json", {registry_http.host: [{"type": "insecureAcceptAnything"}]}
    )
    code, verdicts, _ = validate(
        list_file, registry_http, isolated_home, tmp_path,
        "--policy", str(open_policy), "--registries-d", str(regs),
    )  # fmt: skip
    assert code == 1
    assert len(verdicts) == 2
    for verdict in verdicts:
        assert verdict.startswith(f"REJECTED: [{ref}] linux/amd64 {image.digest} pulled by")
        assert f"layer 2/2 {big_digest} ({IN_TOTO}) cannot be read: exceeded maximum" in verdict
        assert verdict.endswith("(podman/CRI-O fetch every signature layer as they pull)")
    # Attachments off: podman reads no signature at all, and accepts anything.
    off = registries_d(tmp_path / "registries-off.d", "docker: {}\n")
    code, verdicts, _ = validate(
        list_file, registry_http, isolated_home, tmp_path,
        "--policy", str(open_policy), "--registries-d", str(off),
    )  # fmt: skip
    assert code == 0
    assert verdicts == [f"ACCEPTED: [{ref}] linux/amd64 {image.digest}: pulled by tag, by digest"]


def test_a_missing_layer_blob_fails_the_pull_under_a_scope_that_accepts_anything(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    """The pull copies the signatures after the policy check: a `.sig` layer whose blob the
    registry lacks fails it ("blob unknown to registry") whatever the policy accepts."""
    image = push_image(registry_http, repo_name("missing"), "v1", kind="oci-manifest")
    ref = f"{registry_http.host}/{image.repository}:v1"
    good = signed_layer(payload(ref, image.digest))
    gone = Layer(in_toto_statement(1024), None, media_type=IN_TOTO)
    push_attachment(registry_http, image.repository, image.digest, [good, gone])
    http.delete_blob(registry_http, image.repository, gone.descriptor()["digest"])
    regs = attachments_on(tmp_path / "registries.d", registry_http.host)
    open_policy = write_policy(
        tmp_path / "open.json", {registry_http.host: [{"type": "insecureAcceptAnything"}]}
    )
    report = tmp_path / "report.json"
    code, verdicts, stderr = validate(
        write_list(tmp_path / "list", ref), registry_http, isolated_home, tmp_path,
        "--policy", str(open_policy), "--registries-d", str(regs), "--report", str(report),
    )  # fmt: skip
    assert code == 1, stderr
    assert len(verdicts) == 2 and not any("ACCEPTED" in verdict for verdict in verdicts)
    gone_digest = gone.descriptor()["digest"]
    for verdict in verdicts:
        assert verdict.startswith(f"REJECTED: [{ref}] linux/amd64 {image.digest} pulled by")
        assert gone_digest in verdict
    records = json.loads(report.read_text())["results"]
    assert [d["verdict"] for d in records[0]["digests"]] == ["REJECTED", "REJECTED"]


def test_a_policy_with_key_lists_warns_which_containers_image_refuses_it(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    """keyPaths (several keys in one requirement) came with containers/image 5.33.0: older
    ones refuse the whole policy.json (5.29: Unknown key "keyPaths"). validate judges the
    policy as the newer ones do, and says so."""
    signed = push_and_sign(registry_http, isolated_home, tmp_path, "oci-manifest")
    host = registry_http.host
    requirement = {
        "type": "sigstoreSigned",
        "keyPaths": [str(KEY2_PUB), str(KEY1_PUB)],
        "signedIdentity": {"type": "matchRepoDigestOrExact"},
    }
    policy = write_policy(tmp_path / "policy.json", {host: [requirement]})
    regs = attachments_on(tmp_path / "registries.d", host)
    code, verdicts, stderr = validate(
        write_list(tmp_path / "list", signed.ref), registry_http, isolated_home, tmp_path,
        "--policy", str(policy), "--registries-d", str(regs),
    )  # fmt: skip
    assert code == 0, stderr
    assert [verdict.split(":")[0] for verdict in verdicts] == ["ACCEPTED"]
    warnings = [line for line in stderr.splitlines() if "keyPaths" in line]
    assert len(warnings) == 1 and warnings[0].startswith("[WARN]"), stderr
    assert "containers/image accepts since 5.33.0" in warnings[0]
    documented(
        "policy-key-lists-need-containers-image-5.33",
        0,
        warnings[0],
        {str(tmp_path): "TMP", host: "REGISTRY"},
    )
