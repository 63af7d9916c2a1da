"""`sign validate` exits 1 when an image is not accepted, and 3 when nothing was found not
accepted but some line could not be checked (docs/errors.md, "Exit codes"): a CI gate can
tell "these images are bad" from "try again / fix the access"."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from tests.support.cli import failed_lines, run_hangar, validate_args, write_list
from tests.support.images import push_image
from tests.support.policy_files import attachments_on, write_policy
from tests.support.registry import RegistryServer


def repo_name(prefix: str) -> str:
    return f"exit-{prefix}/app-{uuid.uuid4().hex[:8]}"


def _unreachable_ref() -> str:
    """An image on a port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"127.0.0.1:{port}/ns/app:v1"


def test_unreachable_registry_and_missing_image_could_not_be_checked(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    unreachable = _unreachable_ref()
    missing = f"{registry_http.host}/{repo_name('missing')}:v1"
    list_file = write_list(tmp_path / "list", unreachable, missing)
    result = run_hangar(validate_args(list_file, registry_http), isolated_home, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "cannot reach registry" in result.stderr
    assert failed_lines(tmp_path / "sign-failed.txt") == [unreachable, missing]


def test_a_not_signed_image_wins_over_an_unreachable_one(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    repository = repo_name("unsigned")
    push_image(registry_http, repository, "v1", kind="oci-manifest")
    unsigned = f"{registry_http.host}/{repository}:v1"
    unreachable = _unreachable_ref()
    list_file = write_list(tmp_path / "list", unreachable, unsigned)
    result = run_hangar(validate_args(list_file, registry_http), isolated_home, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert f"FAIL: [{unsigned}] linux/amd64" in result.stderr
    assert failed_lines(tmp_path / "sign-failed.txt") == [unreachable, unsigned]


def test_all_tags_that_cannot_be_listed_could_not_be_checked(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    missing = f"{registry_http.host}/{repo_name('notags')}"
    list_file = write_list(tmp_path / "list", missing)
    args = validate_args(list_file, registry_http, "--all-tags")
    result = run_hangar(args, isolated_home, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "--all-tags: cannot list the tags" in result.stderr


def test_policy_requirement_hangar_cannot_evaluate_is_not_a_rejection(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    host = registry_http.host
    image = push_image(registry_http, "gpgonly/app", "v1", kind="oci-manifest")
    ref = f"{host}/{image.repository}:v1"
    policy = write_policy(
        tmp_path / "policy.json",
        {f"{host}/gpgonly": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg"}]},
    )
    regs = attachments_on(tmp_path / "registries.d", host)
    args = [
        "sign", "validate", "-f", str(write_list(tmp_path / "list", ref)), "--tls-verify=false",
        "--policy", str(policy), "--registries-d", str(regs),
    ]  # fmt: skip
    result = run_hangar(args, isolated_home, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert f"NOT CHECKED: [{ref}]" in result.stderr
    assert failed_lines(tmp_path / "sign-failed.txt") == [ref]
