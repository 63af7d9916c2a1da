"""`hangar sign` end to end: the real command against a real registry.

Every attachment is read back with the test bed's own HTTP client and checked field by field,
and every signature is verified with `cryptography`, independently of hangar's code.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.support import http
from tests.support.cli import (
    HANGAR,
    KEY1_PUB,
    KEY2,
    KEY2_PASS,
    KEY2_PUB,
    check_hangar_attachment,
    check_payload,
    failed_lines,
    hangar_env,
    read_attachment,
    run_hangar,
    sig_tag,
    sign_args,
    signed_tags,
    verify_with,
)
from tests.support.images import push_image, push_schema1_image, push_vector_attachment
from tests.support.registry import RegistryServer, write_auth_json


def repo_name(prefix: str) -> str:
    return f"{prefix}/app-{uuid.uuid4().hex[:8]}"


def write_list(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


@pytest.mark.parametrize("kind", ["oci-index", "docker-list"])
def test_multi_arch_signs_each_default_platform_and_the_index(
    registry_http: RegistryServer, home: Path, tmp_path: Path, kind: str
) -> None:
    repo = repo_name("multi")
    image = push_image(registry_http, repo, "v1", kind=kind)
    ref = f"{registry_http.host}/{repo}:v1"
    result = run_hangar(
        sign_args(write_list(tmp_path / "list", ref), registry_http), home, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    wanted = [image.platforms["linux/amd64"], image.platforms["linux/arm64"], image.digest]
    assert signed_tags(registry_http, repo) == {sig_tag(d) for d in wanted}
    for digest in wanted:
        layers = check_hangar_attachment(registry_http, repo, digest, ref, KEY1_PUB)
        assert len(layers) == 1
    for line in (f"Signed [{registry_http.host}/{repo}@{d}]" for d in wanted):
        assert line in result.stderr
    assert (
        "Summary: 1 image: 1 signed, 0 already signed, 0 skipped for platform, 0 failed; "
        in result.stderr
    )
    assert "3 signatures written" in result.stderr
    assert not (tmp_path / "sign-failed.txt").exists()


def test_attachment_config_and_manifest_are_exactly_c_image_shaped(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("shape")
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    ref = f"{registry_http.host}/{repo}:v1"
    result = run_hangar(sign_args(write_list(tmp_path / "list", ref), registry_http), home)
    assert result.returncode == 0, result.stderr
    manifest, config, layers = read_attachment(registry_http, repo, image.digest)
    assert set(manifest) == {"schemaVersion", "mediaType", "config", "layers"}
    assert config == {
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layers[0].descriptor["digest"]]},
    }
    assert set(layers[0].descriptor) == {"mediaType", "digest", "size", "annotations"}
    assert verify_with(KEY1_PUB, layers[0].signature, layers[0].payload)
    assert not verify_with(KEY2_PUB, layers[0].signature, layers[0].payload)


@pytest.mark.parametrize(
    ("arches", "oses", "expected"),
    [
        ("arm/v7", "linux", ["linux/arm/v7"]),
        ("amd64", "windows", ["windows/amd64"]),
        ("amd64", "linux,windows", ["linux/amd64", "windows/amd64"]),
        ("arm", "linux", ["linux/arm/v7"]),
    ],
)
def test_platform_filter(
    registry_http: RegistryServer,
    home: Path,
    tmp_path: Path,
    arches: str,
    oses: str,
    expected: list[str],
) -> None:
    repo = repo_name("filter")
    image = push_image(registry_http, repo, "v1", kind="oci-index")
    ref = f"{registry_http.host}/{repo}:v1"
    args = sign_args(write_list(tmp_path / "list", ref), registry_http, "-a", arches, "--os", oses)
    result = run_hangar(args, home)
    assert result.returncode == 0, result.stderr
    wanted = {sig_tag(image.platforms[p]) for p in expected} | {sig_tag(image.digest)}
    assert signed_tags(registry_http, repo) == wanted


def test_attestation_entries_are_never_signed(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("attest")
    image = push_image(registry_http, repo, "v1", kind="oci-index-attestations")
    ref = f"{registry_http.host}/{repo}:v1"
    result = run_hangar(sign_args(write_list(tmp_path / "list", ref), registry_http), home)
    assert result.returncode == 0, result.stderr
    tags = signed_tags(registry_http, repo)
    assert tags == {
        sig_tag(image.platforms["linux/amd64"]),
        sig_tag(image.platforms["linux/arm64"]),
        sig_tag(image.digest),
    }
    assert not any(sig_tag(d) in tags for d in image.attestations.values())


def test_single_manifest_of_another_platform_is_skipped_not_failed(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("skip")
    push_image(registry_http, repo, "v1", kind="docker-manifest", platforms=["linux/s390x"])
    push_image(registry_http, repo, "v2", kind="docker-manifest", platforms=["linux/amd64"])
    ref = f"{registry_http.host}/{repo}:v1"
    other = f"{registry_http.host}/{repo}:v2"
    result = run_hangar(
        sign_args(write_list(tmp_path / "list", ref, other), registry_http), home, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert f"no matching platform (it has linux/s390x), skipped [{ref}]" in result.stderr
    assert "1 signed, 0 already signed, 1 skipped for platform, 0 failed" in result.stderr
    assert len(signed_tags(registry_http, repo)) == 1
    assert not (tmp_path / "sign-failed.txt").exists()


def test_no_sign_index(registry_http: RegistryServer, home: Path, tmp_path: Path) -> None:
    repo = repo_name("noindex")
    image = push_image(registry_http, repo, "v1", kind="docker-list")
    ref = f"{registry_http.host}/{repo}:v1"
    args = sign_args(write_list(tmp_path / "list", ref), registry_http, "--sign-index=false")
    assert run_hangar(args, home).returncode == 0
    assert sig_tag(image.digest) not in signed_tags(registry_http, repo)
    assert len(signed_tags(registry_http, repo)) == 2


@pytest.mark.parametrize("mode", ["tag", "digest", "repository"])
def test_identity_modes(
    registry_http: RegistryServer, home: Path, tmp_path: Path, mode: str
) -> None:
    repo = repo_name("identity")
    image = push_image(registry_http, repo, "v1", kind="oci-index")
    name = f"{registry_http.host}/{repo}"
    args = sign_args(
        write_list(tmp_path / "list", f"{name}:v1"), registry_http, "--signed-identity", mode
    )
    assert run_hangar(args, home).returncode == 0
    for digest in (image.platforms["linux/amd64"], image.digest):
        expected = {"tag": f"{name}:v1", "digest": f"{name}@{digest}", "repository": name}[mode]
        check_hangar_attachment(registry_http, repo, digest, expected, KEY1_PUB)


def test_line_by_digest_gets_a_digest_identity(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("bydigest")
    image = push_image(registry_http, repo, "v1", kind="oci-index")
    name = f"{registry_http.host}/{repo}"
    list_file = write_list(tmp_path / "list", f"{name}@{image.digest}")
    assert run_hangar(sign_args(list_file, registry_http), home).returncode == 0
    amd64 = image.platforms["linux/amd64"]
    check_hangar_attachment(registry_http, repo, amd64, f"{name}@{amd64}", KEY1_PUB)


def test_registry_and_project_override(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    image = push_image(registry_http, f"sign-test/slsa-{suffix}", "latest", kind="oci-manifest")
    list_file = write_list(tmp_path / "list", f"hxstarrys/slsa-{suffix}:latest")
    args = sign_args(
        list_file, registry_http, "--registry", registry_http.host, "--project", "sign-test"
    )
    result = run_hangar(args, home)
    assert result.returncode == 0, result.stderr
    identity = f"{registry_http.host}/sign-test/slsa-{suffix}:latest"
    check_hangar_attachment(
        registry_http, f"sign-test/slsa-{suffix}", image.digest, identity, KEY1_PUB
    )


def test_appends_to_an_attachment_written_by_containers_image(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("vector")
    pushed = push_vector_attachment(registry_http, repo)
    before = json.loads(pushed.signature_manifest)
    name = f"{registry_http.host}/{repo}"
    list_file = write_list(tmp_path / "list", f"{name}@{pushed.digest}")
    args = sign_args(list_file, registry_http, "-a", "amd64,arm64")
    result = run_hangar(args, home)
    assert result.returncode == 0, result.stderr
    manifest, config, layers = read_attachment(registry_http, repo, pushed.digest)
    assert manifest["layers"][:2] == before["layers"]  # untouched, in order
    assert len(layers) == 3
    old_config = json.loads((Path(pushed_vector_dir()) / "sig-config.json").read_bytes())
    assert config["rootfs"]["diff_ids"][:2] == old_config["rootfs"]["diff_ids"]
    assert config["rootfs"]["diff_ids"][2] == layers[2].descriptor["digest"]
    check_payload(layers[2].payload, f"{name}@{pushed.digest}", pushed.digest)
    # the signatures c/image wrote still verify with their keys
    assert verify_with(KEY1_PUB, layers[0].signature, layers[0].payload)
    assert verify_with(KEY2_PUB, layers[1].signature, layers[1].payload)
    assert verify_with(KEY1_PUB, layers[2].signature, layers[2].payload)


def pushed_vector_dir() -> Path:
    from tests.support.images import VECTOR_ATTACHMENT

    return VECTOR_ATTACHMENT


def test_rerun_is_idempotent_and_force_adds(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("idem")
    image = push_image(registry_http, repo, "v1", kind="oci-index")
    ref = f"{registry_http.host}/{repo}:v1"
    list_file = write_list(tmp_path / "list", ref)
    assert run_hangar(sign_args(list_file, registry_http), home).returncode == 0
    again = run_hangar(sign_args(list_file, registry_http), home)
    assert again.returncode == 0, again.stderr
    assert "1 already signed" in again.stderr and "0 signatures written" in again.stderr
    assert len(read_attachment(registry_http, repo, image.digest)[2]) == 1
    forced = run_hangar(sign_args(list_file, registry_http, "--force"), home)
    assert forced.returncode == 0
    assert len(read_attachment(registry_http, repo, image.digest)[2]) == 2
    # another identity is another signature, not "already signed"
    other = run_hangar(sign_args(list_file, registry_http, "--signed-identity", "digest"), home)
    assert "1 signed" in other.stderr
    assert len(read_attachment(registry_http, repo, image.digest)[2]) == 3


def test_duplicate_lines_and_shared_manifests_sign_once(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("dup")
    image = push_image(registry_http, repo, "v1", kind="oci-index")
    # a second tag of the same index: same digests, same .sig tags, another identity
    http.put_manifest(registry_http, repo, "v1-again", image.manifest, image.media_type)
    name = f"{registry_http.host}/{repo}"
    list_file = write_list(tmp_path / "list", *([f"{name}:v1"] * 6), f"{name}:v1-again")
    result = run_hangar(sign_args(list_file, registry_http, "-j", "8"), home)
    assert result.returncode == 0, result.stderr
    # Every digest signed once per identity. (An image's digests are signed at the same
    # time, so two of the six identical lines may share them: which lines count as "already
    # signed" is not fixed, the signatures written are.)
    digests = [image.platforms["linux/amd64"], image.platforms["linux/arm64"], image.digest]
    for digest in digests:
        layers = read_attachment(registry_http, repo, digest)[2]
        identities = sorted(
            layer.document["critical"]["identity"]["docker-reference"] for layer in layers
        )
        assert identities == [f"{name}:v1", f"{name}:v1-again"], digest
    assert f"{2 * len(digests)} signatures written" in result.stderr


def test_two_processes_with_different_keys_both_land(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    images = [
        push_image(registry_http, repo_name("race"), "v1", kind="oci-index") for _ in range(8)
    ]
    refs = [f"{registry_http.host}/{image.repository}:v1" for image in images]
    list_file = write_list(tmp_path / "list", *refs)
    runs = []
    for key, passphrase, failed in ((None, None, "f1"), (KEY2, KEY2_PASS, "f2")):
        extra = ["-j", "8", "-o", str(tmp_path / failed)]
        args = (
            sign_args(list_file, registry_http, *extra)
            if key is None
            else sign_args(list_file, registry_http, *extra, key=key, passphrase=passphrase)
        )
        runs.append(
            subprocess.Popen(
                [HANGAR, *args],
                env=hangar_env(home),
                text=True,
                stderr=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
            )
        )
    for process in runs:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    for image in images:
        for digest in (
            image.platforms["linux/amd64"],
            image.platforms["linux/arm64"],
            image.digest,
        ):
            layers = read_attachment(registry_http, image.repository, digest)[2]
            keys = sorted(
                "key1"
                if verify_with(KEY1_PUB, x.signature, x.payload)
                else "key2"
                if verify_with(KEY2_PUB, x.signature, x.payload)
                else "?"
                for x in layers
            )
            assert keys == ["key1", "key2"], (image.repository, digest, keys)


def test_failed_file_round_trip(registry_http: RegistryServer, home: Path, tmp_path: Path) -> None:
    repo = repo_name("retry")
    good = push_image(registry_http, repo, "v1", kind="oci-manifest")
    name = f"{registry_http.host}/{repo}"
    missing = f"{name}:not-yet"
    list_file = write_list(
        tmp_path / "list",
        "# comment",
        f"  {name}:v1  ",
        missing,
        "Bad/Upper:case",
        "",
        "a b c",
    )
    result = run_hangar(sign_args(list_file, registry_http), home, cwd=tmp_path)
    assert result.returncode == 1
    failed = tmp_path / "sign-failed.txt"
    assert failed_lines(failed) == [missing, "Bad/Upper:case"]
    assert "line 4" in result.stderr and "lowercase" in result.stderr
    assert "mirror list format" in result.stderr
    assert "1 signed" in result.stderr and "2 failed" in result.stderr
    assert missing in result.stderr
    assert signed_tags(registry_http, repo) == {sig_tag(good.digest)}
    # fix the bad line by hand (the header stays), push the missing image, retry the rest
    failed.write_text(failed.read_text().replace("Bad/Upper:case\n", ""))
    push_image(registry_http, repo, "not-yet", kind="oci-manifest")
    retry = run_hangar(sign_args(failed, registry_http), home, cwd=tmp_path)
    assert retry.returncode == 0, retry.stderr
    assert not failed.exists()


def test_report_lists_every_digest(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("report")
    image = push_image(registry_http, repo, "v1", kind="oci-index")
    ref = f"{registry_http.host}/{repo}:v1"
    report = tmp_path / "report.json"
    args = sign_args(write_list(tmp_path / "list", ref), registry_http, "--report", str(report))
    assert run_hangar(args, home).returncode == 0
    records = json.loads(report.read_text())["results"]
    assert [r["status"] for r in records] == ["signed"]
    digests = {d["digest"]: d for d in records[0]["digests"]}
    assert set(digests) == {
        image.platforms["linux/amd64"],
        image.platforms["linux/arm64"],
        image.digest,
    }
    assert all(d["action"] == "signed" and d["identity"] == ref for d in digests.values())


def test_schema1_is_a_clear_failure(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("schema1")
    push_schema1_image(registry_http, repo, "old")
    ref = f"{registry_http.host}/{repo}:old"
    result = run_hangar(
        sign_args(write_list(tmp_path / "list", ref), registry_http), home, cwd=tmp_path
    )
    assert result.returncode == 1
    assert "schema1" in result.stderr and "not supported" in result.stderr
    assert "Traceback" not in result.stderr
    assert failed_lines(tmp_path / "sign-failed.txt") == [ref]


def test_basic_auth_with_podman_auth_json(
    registry_basic: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("basic")
    image = push_image(registry_basic, repo, "v1", kind="oci-manifest")
    ref = f"{registry_basic.host}/{repo}:v1"
    list_file = write_list(tmp_path / "list", ref)
    denied = run_hangar(sign_args(list_file, registry_basic, "--skip-login"), home, cwd=tmp_path)
    assert denied.returncode == 1
    assert f"hangar login {registry_basic.host}" in denied.stderr
    write_auth_json(
        home / ".config/containers/auth.json",
        registry_basic.host,
        registry_basic.username,
        registry_basic.password,
    )
    result = run_hangar(sign_args(list_file, registry_basic), home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    check_hangar_attachment(registry_basic, repo, image.digest, ref, KEY1_PUB)


def test_token_auth_and_debug_never_prints_secrets(
    registry_token: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("token")
    image = push_image(registry_token, repo, "v1", kind="oci-index")
    ref = f"{registry_token.host}/{repo}:v1"
    write_auth_json(
        home / ".config/containers/auth.json",
        registry_token.host,
        registry_token.username,
        registry_token.password,
    )
    report = tmp_path / "report.json"
    args = sign_args(
        write_list(tmp_path / "list", ref),
        registry_token,
        "--debug",
        "--report",
        str(report),
        "-j",
        "4",
    )
    result = run_hangar(args, home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[DEBU]" in result.stderr
    check_hangar_attachment(registry_token, repo, image.digest, ref, KEY1_PUB)
    tokens = [t.token for t in registry_token.token_server.issued]
    secrets = [registry_token.password, *tokens, KEY1_PASS_TEXT]
    written = result.stdout + result.stderr + report.read_text()
    for secret in secrets:
        assert secret not in written


KEY1_PASS_TEXT = "not_secure_passphrase"


def test_https_with_ca_in_certs_d(
    registry_https: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("tls")
    image = push_image(registry_https, repo, "v1", kind="oci-manifest")
    ref = f"{registry_https.host}/{repo}:v1"
    list_file = write_list(tmp_path / "list", ref)
    untrusted = run_hangar(sign_args(list_file, registry_https), home, cwd=tmp_path)
    assert untrusted.returncode == 1
    assert "--tls-verify=false" in untrusted.stderr
    registry_https.install_ca(home)
    result = run_hangar(sign_args(list_file, registry_https), home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    check_hangar_attachment(registry_https, repo, image.digest, ref, KEY1_PUB)


def test_ctrl_c_stops_new_images_and_lists_the_rest(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("interrupt")
    images = [push_image(registry_http, repo, f"v{i}", kind="oci-manifest") for i in range(3)]
    name = f"{registry_http.host}/{repo}"
    # A long list: the run is interrupted long before its end.
    lines = [f"{name}:v{i % 3}" for i in range(3000)]
    list_file = write_list(tmp_path / "list", *lines)
    process = subprocess.Popen(
        [HANGAR, *sign_args(list_file, registry_http)],
        cwd=tmp_path,
        env=hangar_env(home),
        text=True,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
        http.head_manifest(registry_http, repo, sig_tag(i.digest)) for i in images
    ):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    failed = failed_lines(tmp_path / "sign-failed.txt")
    done = stderr.count("Signed [") + stderr.count("Already signed [")
    assert 0 < len(failed) < len(lines)
    assert len(failed) + done == len(lines)
    assert set(failed) <= set(lines)
    assert "Traceback" not in stderr


def test_flag_errors_are_one_line(home: Path, tmp_path: Path) -> None:
    list_file = write_list(tmp_path / "list", "127.0.0.1:1/a/b:v1")
    cases = [
        (["sign", "-f", str(list_file), "-k", "x", "--timeout", "10"], "missing unit"),
        (["sign", "-f", str(list_file), "-k", "x", "--timeout", "-1s"], "must be positive"),
        (["sign", "-f", str(list_file), "-k", "x", "--jobs", "abc"], "not a valid integer"),
        (["sign", "-k", "x"], "-f/--file is required"),
        (["sign", "-f", str(list_file)], "-k/--sigstore-key is required"),
        (["sign", "-f", str(tmp_path / "nope"), "-k", "x"], "nope"),
        (["sign", "-f", str(list_file), "-k", str(tmp_path / "missing.key")], "missing.key"),
    ]
    for args, message in cases:
        result = run_hangar(args, home)
        assert result.returncode in (1, 2), (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_jobs_out_of_range_warns_and_uses_one(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("jobs")
    push_image(registry_http, repo, "v1", kind="oci-manifest")
    list_file = write_list(tmp_path / "list", f"{registry_http.host}/{repo}:v1")
    result = run_hangar(sign_args(list_file, registry_http, "--jobs", "0"), home)
    assert result.returncode == 0
    assert "--jobs 0 is outside 1-20: using 1 worker(s)" in result.stderr
    assert "with 1 worker(s)" in result.stderr


def test_global_flags_after_the_subcommand(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("global")
    push_image(registry_http, repo, "v1", kind="oci-manifest")
    list_file = write_list(tmp_path / "list", f"{registry_http.host}/{repo}:v1")
    before = run_hangar(
        ["--debug", "--insecure-policy", *sign_args(list_file, registry_http)], home
    )
    after = run_hangar([*sign_args(list_file, registry_http, "--debug", "--insecure-policy")], home)
    assert before.returncode == 0 and after.returncode == 0
    assert "[DEBU]" in before.stderr and "[DEBU]" in after.stderr


def test_timeout_fails_the_image_not_the_run(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    """An unreachable registry with a tiny --timeout: the line fails, the good one signs."""
    repo = repo_name("timeout")
    good = push_image(registry_http, repo, "v1", kind="oci-manifest")
    list_file = write_list(
        tmp_path / "list", "127.0.0.1:9/nothing/here:v1", f"{registry_http.host}/{repo}:v1"
    )
    result = run_hangar(
        sign_args(list_file, registry_http, "--timeout", "20s", "--skip-login"), home, cwd=tmp_path
    )
    assert result.returncode == 1
    assert "127.0.0.1:9" in result.stderr
    assert failed_lines(tmp_path / "sign-failed.txt") == ["127.0.0.1:9/nothing/here:v1"]
    assert sig_tag(good.digest) in signed_tags(registry_http, repo)


def test_environment_passphrase(registry_http: RegistryServer, home: Path, tmp_path: Path) -> None:
    repo = repo_name("envpass")
    push_image(registry_http, repo, "v1", kind="oci-manifest")
    list_file = write_list(tmp_path / "list", f"{registry_http.host}/{repo}:v1")
    args = ["sign", "-f", str(list_file), "-k", str(KEY2), "--tls-verify=false"]
    result = run_hangar(args, home, COSIGN_PASSWORD=KEY2_PASS.read_text().splitlines()[0])
    assert result.returncode == 0, result.stderr
    wrong = run_hangar(args, home, COSIGN_PASSWORD="wrong")
    assert wrong.returncode == 1
    errors = [line for line in wrong.stderr.splitlines() if line.startswith("[ERRO]")]
    assert len(errors) == 1 and "passphrase" in errors[0], wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_crlf_passphrase_file_both_ways(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    """A passphrase file saved on Windows (CRLF). skopeo made cimage key4 from such a file (its
    passphrase ends in CR): hangar signs with it from the same file. A key hangar makes from
    such a file uses the trimmed passphrase, and hangar warns that skopeo reads another one."""
    from hangar.errors import KeyFileError
    from hangar.keys.files import load_private_key

    cimage_keys = KEY2.parent
    repo = repo_name("crlf")
    push_image(registry_http, repo, "skopeo-key", kind="oci-manifest")
    push_image(registry_http, repo, "hangar-key", kind="oci-manifest")
    name = f"{registry_http.host}/{repo}"

    skopeo_list = write_list(tmp_path / "skopeo.list", f"{name}:skopeo-key")
    key4 = cimage_keys / "key4.private"
    signed = run_hangar(
        sign_args(skopeo_list, registry_http, key=key4, passphrase=cimage_keys / "key4.passphrase"),
        home,
    )
    assert signed.returncode == 0, signed.stderr
    validate = ["sign", "validate", "-f", str(skopeo_list), "--tls-verify=false"]
    checked = run_hangar([*validate, "-p", str(cimage_keys / "key4.pub")], home, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr

    crlf = tmp_path / "crlf.passphrase"
    crlf.write_bytes(b"windows passphrase\r\n")
    crlf.chmod(0o600)
    prefix = tmp_path / "made"
    made = run_hangar(
        ["generate-sigstore-key", "-p", str(prefix), "--passphrase-file", str(crlf)], home
    )
    assert made.returncode == 0, made.stderr
    assert (
        f"[WARN] passphrase file {crlf}: the new key's passphrase is the file's content without "
        "surrounding white space, but podman and skopeo read its first line as written"
    ) in made.stderr
    key_file = Path(f"{prefix}.key")
    with pytest.raises(KeyFileError):  # what skopeo would read from the file
        load_private_key(key_file, b"windows passphrase\r")
    load_private_key(key_file, b"windows passphrase")
    hangar_list = write_list(tmp_path / "hangar.list", f"{name}:hangar-key")
    signed = run_hangar(sign_args(hangar_list, registry_http, key=key_file, passphrase=crlf), home)
    assert signed.returncode == 0, signed.stderr
    validate = ["sign", "validate", "-f", str(hangar_list), "--tls-verify=false"]
    checked = run_hangar([*validate, "-p", f"{prefix}.pub"], home, cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
