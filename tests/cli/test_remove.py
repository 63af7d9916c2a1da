"""`hangar sign remove` end to end: the real command against a real registry (key rotation).

What remains is read back with the test bed's own HTTP client, compared byte for byte with
what was there, and verified with `cryptography`, independently of hangar's code.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.support import http
from tests.support.cli import (
    HANGAR,
    KEY1_PUB,
    KEY2,
    KEY2_PASS,
    KEY2_PUB,
    check_hangar_attachment,
    failed_lines,
    hangar_env,
    read_attachment,
    run_hangar,
    sig_tag,
    sign_args,
    signed_tags,
    verify_with,
)
from tests.support.errors_doc import documented
from tests.support.images import VECTOR_ATTACHMENT, push_image, push_vector_attachment
from tests.support.paths import VECTORS
from tests.support.registry import RegistryServer, write_auth_json

KEY3 = VECTORS / "cimage-keys" / "key3.private"
KEY3_PASS = VECTORS / "cimage-keys" / "key3.passphrase"
KEY3_PUB = VECTORS / "cimage-keys" / "key3.pub"


def repo_name(prefix: str) -> str:
    return f"{prefix}/app-{uuid.uuid4().hex[:8]}"


def write_list(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def remove_args(list_file: Path, *extra: str) -> list[str]:
    return ["sign", "remove", "-f", str(list_file), "--tls-verify=false", *extra]


def fingerprint(public_key_pem: Path) -> str:
    key = serialization.load_pem_public_key(public_key_pem.read_bytes())
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def signers(server: RegistryServer, repo: str, digest: str) -> list[str]:
    """Which of key1..key3 signed each layer of the digest's attachment, in order."""
    _, _, layers = read_attachment(server, repo, digest)
    names = []
    for layer in layers:
        keys = [("key1", KEY1_PUB), ("key2", KEY2_PUB), ("key3", KEY3_PUB)]
        names += [name for name, pem in keys if verify_with(pem, layer.signature, layer.payload)]
    return names


def tag_digests(server: RegistryServer, repo: str, digests: list[str]) -> dict[str, str | None]:
    return {digest: http.head_manifest(server, repo, sig_tag(digest)) for digest in digests}


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


@pytest.fixture
def two_keys(registry_http: RegistryServer, home: Path, tmp_path: Path):
    """Two images whose every digest key1 and key2 signed: the containers/image vector (its
    attachment as c/image wrote it), and an image hangar signed with both keys."""
    repo = repo_name("rotate")
    vector = push_vector_attachment(registry_http, repo)
    image = push_image(registry_http, repo, "v2", kind="oci-manifest")
    name = f"{registry_http.host}/{repo}"
    hangar_list = write_list(tmp_path / "hangar-list", f"{name}:v2")
    for args in (
        sign_args(hangar_list, registry_http),
        sign_args(hangar_list, registry_http, key=KEY2, passphrase=KEY2_PASS),
    ):
        assert run_hangar(args, home, cwd=tmp_path).returncode == 0
    assert signers(registry_http, repo, vector.digest) == ["key1", "key2"]
    assert signers(registry_http, repo, image.digest) == ["key1", "key2"]
    list_file = write_list(tmp_path / "list", f"{name}:v1", f"{name}:v2")
    return repo, vector, image, list_file


def test_removing_one_key_keeps_the_other_byte_for_byte(
    registry_http: RegistryServer, home: Path, tmp_path: Path, two_keys
) -> None:
    repo, vector, image, list_file = two_keys
    result = run_hangar(remove_args(list_file, "-p", str(KEY1_PUB)), home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"key {fingerprint(KEY1_PUB)}" in result.stderr
    assert (
        "Summary: 2 images: 2 removed, 0 nothing to remove, 0 skipped for platform, 0 failed; "
        in (result.stderr)
    )
    assert "2 signatures removed" in result.stderr

    # The c/image attachment: its key2 layer, payload and config fields exactly as written.
    original = json.loads(vector.signature_manifest)
    manifest_bytes = http.get_manifest(registry_http, repo, vector.signature_tag)[0]
    manifest = json.loads(manifest_bytes)
    assert manifest["layers"] == [original["layers"][1]]
    config_bytes = http.get_blob(registry_http, repo, manifest["config"]["digest"])
    expected_config = json.loads((VECTOR_ATTACHMENT / "sig-config.json").read_bytes())
    expected_config["rootfs"]["diff_ids"] = [original["layers"][1]["digest"]]
    assert config_bytes == json.dumps(expected_config, separators=(",", ":")).encode()
    original["layers"] = [original["layers"][1]]
    original["config"].update(
        digest="sha256:" + hashlib.sha256(config_bytes).hexdigest(), size=len(config_bytes)
    )
    assert manifest_bytes == json.dumps(original, separators=(",", ":")).encode()
    payload = http.get_blob(registry_http, repo, original["layers"][0]["digest"])
    assert payload == (VECTOR_ATTACHMENT / "payload-2.json").read_bytes()

    # The hangar-signed image: key2's signature, field by field.
    ref = f"{registry_http.host}/{repo}:v2"
    layers = check_hangar_attachment(registry_http, repo, image.digest, ref, KEY2_PUB)
    assert [verify_with(KEY1_PUB, layer.signature, layer.payload) for layer in layers] == [False]
    assert signers(registry_http, repo, image.digest) == ["key2"]

    # Idempotent, and validate sees the rotation.
    before = tag_digests(registry_http, repo, [vector.digest, image.digest])
    again = run_hangar(remove_args(list_file, "-p", str(KEY1_PUB)), home, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("Nothing to remove [") == 2
    assert tag_digests(registry_http, repo, [vector.digest, image.digest]) == before
    validate = ["sign", "validate", "-f", str(list_file), "--tls-verify=false", "-p"]
    old = run_hangar([*validate, str(KEY1_PUB)], home, cwd=tmp_path)
    assert old.returncode == 1
    assert old.stderr.count("FAIL: [") == 2
    # (The vector's key2 identity names the repository it was made in: hangar's image only.)
    validate[3] = str(tmp_path / "hangar-list")
    new = run_hangar([*validate, str(KEY2_PUB)], home, cwd=tmp_path)
    assert new.returncode == 0, new.stderr


def test_removing_both_keys_deletes_the_tags(
    registry_http: RegistryServer, home: Path, tmp_path: Path, two_keys
) -> None:
    repo, vector, image, list_file = two_keys
    args = remove_args(list_file, "-p", str(KEY1_PUB), "-p", str(KEY2_PUB))
    result = run_hangar(args, home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("nothing remained, the tag is deleted") == 2
    assert signed_tags(registry_http, repo) == set()
    # The images themselves are untouched.
    assert http.head_manifest(registry_http, repo, "v1") == vector.digest
    assert http.head_manifest(registry_http, repo, "v2") == image.digest


def test_dry_run_lists_with_fingerprints_and_writes_nothing(
    registry_http: RegistryServer, home: Path, tmp_path: Path, two_keys
) -> None:
    repo, vector, image, list_file = two_keys
    before = tag_digests(registry_http, repo, [vector.digest, image.digest])
    args = remove_args(list_file, "-p", str(KEY1_PUB), "--dry-run")
    result = run_hangar(args, home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for digest in (vector.digest, image.digest):
        line = next(line for line in result.stderr.splitlines() if f"@{digest}]" in line)
        assert "Would remove" in line and f"key {fingerprint(KEY1_PUB)}" in line
    assert tag_digests(registry_http, repo, [vector.digest, image.digest]) == before
    assert signers(registry_http, repo, vector.digest) == ["key1", "key2"]


def test_a_registry_without_deletes_says_what_to_enable(
    make_registry, home: Path, tmp_path: Path
) -> None:
    server = make_registry("http", deletes=False)
    repo = repo_name("nodelete")
    image = push_image(server, repo, "v1", kind="oci-manifest")
    line = f"{server.host}/{repo}:v1"
    list_file = write_list(tmp_path / "list", line)
    assert run_hangar(sign_args(list_file, server), home, cwd=tmp_path).returncode == 0
    before = tag_digests(server, repo, [image.digest])
    result = run_hangar(remove_args(list_file, "-p", str(KEY1_PUB)), home, cwd=tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("[ERRO]")]
    refused = next(error for error in errors if "storage.delete.enabled" in error)
    assert line in refused
    documented("remove-deletes-refused", 1, refused, {server.host: "REGISTRY", repo: "REPO"})
    assert "Traceback" not in result.stderr
    assert failed_lines(tmp_path / "sign-failed.txt") == [line]
    assert tag_digests(server, repo, [image.digest]) == before


def test_a_concurrent_signer_with_a_third_key_keeps_its_signatures(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("busy")
    images = [push_image(registry_http, repo, f"v{i}", kind="oci-manifest") for i in range(16)]
    lines = [f"{registry_http.host}/{repo}:v{i}" for i in range(len(images))]
    list_file = write_list(tmp_path / "list", *lines)
    for args in (
        sign_args(list_file, registry_http, "-j", "4"),
        sign_args(list_file, registry_http, "-j", "4", key=KEY2, passphrase=KEY2_PASS),
    ):
        assert run_hangar(args, home, cwd=tmp_path).returncode == 0
    third = sign_args(
        list_file,
        registry_http,
        "-j",
        "2",
        "-o",
        "third-failed.txt",
        key=KEY3,
        passphrase=KEY3_PASS,
    )
    processes = [
        subprocess.Popen(
            [HANGAR, *args], cwd=tmp_path, env=hangar_env(home), text=True, stderr=subprocess.PIPE
        )
        for args in (third, remove_args(list_file, "-p", str(KEY1_PUB), "-j", "2"))
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
    for image in images:
        assert sorted(signers(registry_http, repo, image.digest)) == ["key2", "key3"]


def test_ctrl_c_stops_new_images_and_lists_the_rest(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    repo = repo_name("interrupt")
    images = [push_image(registry_http, repo, f"v{i}", kind="oci-manifest") for i in range(3)]
    name = f"{registry_http.host}/{repo}"
    short_list = write_list(tmp_path / "short", *(f"{name}:v{i}" for i in range(3)))
    assert run_hangar(sign_args(short_list, registry_http), home, cwd=tmp_path).returncode == 0
    lines = [f"{name}:v{i % 3}" for i in range(3000)]
    list_file = write_list(tmp_path / "list", *lines)
    process = subprocess.Popen(
        [HANGAR, *remove_args(list_file, "-p", str(KEY1_PUB))],
        cwd=tmp_path,
        env=hangar_env(home),
        text=True,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and all(
        http.head_manifest(registry_http, repo, sig_tag(i.digest)) for i in images
    ):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    failed = failed_lines(tmp_path / "sign-failed.txt")
    done = stderr.count("Removed ") + stderr.count("Nothing to remove [")
    assert 0 < len(failed) < len(lines)
    assert len(failed) + done == len(lines)
    assert set(failed) <= set(lines)
    assert "Traceback" not in stderr


def test_flag_errors_are_one_line(home: Path, tmp_path: Path) -> None:
    list_file = write_list(tmp_path / "list", "127.0.0.1:1/a/b:v1")
    listed = ["sign", "remove", "-f", str(list_file)]
    cases = [
        ("usage-remove-nothing-chosen", listed, "say what to remove"),
        ("usage-remove-all-with-keys", [*listed, "--all", "-p", str(KEY1_PUB)], "--all"),
        ("usage-remove-unverified-alone", [*listed, "--unverified"], "--keep-pubkey"),
        ("usage-remove-keep-alone", [*listed, "--keep-pubkey", str(KEY1_PUB)], "--unverified"),
        ("usage-remove-no-list", ["sign", "remove", "-p", str(KEY1_PUB)], "-f/--file"),
    ]
    for case, args, message in cases:
        result = run_hangar(args, home)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        documented(case, 2, result.stderr.strip(), {})


def test_token_registry_grants_the_delete_and_the_report_lists_each_digest(
    registry_token: RegistryServer, home: Path, tmp_path: Path
) -> None:
    """distribution asks a token for "delete" on a manifest DELETE; removing the only
    signature of each digest deletes its tag."""
    repo = repo_name("token")
    image = push_image(registry_token, repo, "v1", kind="oci-index", platforms=["linux/amd64"])
    assert registry_token.username and registry_token.password
    write_auth_json(
        home / ".config/containers/auth.json",
        registry_token.host,
        registry_token.username,
        registry_token.password,
    )
    list_file = write_list(tmp_path / "list", f"{registry_token.host}/{repo}:v1")
    assert run_hangar(sign_args(list_file, registry_token), home, cwd=tmp_path).returncode == 0
    assert len(signed_tags(registry_token, repo)) == 2  # the platform and the index
    report = tmp_path / "report.json"
    args = remove_args(list_file, "--all", "--report", str(report))
    result = run_hangar(args, home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert signed_tags(registry_token, repo) == set()
    (record,) = json.loads(report.read_text())["results"]
    assert record["status"] == "removed"
    assert {d["digest"]: d["action"] for d in record["digests"]} == {
        image.platforms["linux/amd64"]: "removed-tag",
        image.digest: "removed-tag",
    }
