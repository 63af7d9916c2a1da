"""What a person at a terminal sees: the progress bar, and the login prompt of `hangar sign`."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from tests.support.cli import HANGAR, KEY1_PUB, check_hangar_attachment, hangar_env, sign_args
from tests.support.images import push_image
from tests.support.registry import RegistryServer
from tests.support.terminal import run_in_pty

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def test_progress_bar_on_a_terminal(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo = f"tty/app-{uuid.uuid4().hex[:8]}"
    images = [push_image(registry_http, repo, f"v{i}", kind="oci-index") for i in range(12)]
    list_file = tmp_path / "list"
    list_file.write_text("".join(f"{registry_http.host}/{repo}:{i.tag}\n" for i in images))
    argv = [HANGAR, *sign_args(list_file, registry_http, "-j", "2")]
    code, output = run_in_pty(argv, [], env=hangar_env(isolated_home), cwd=tmp_path)
    text = ANSI.sub(b"", output).decode()
    assert code == 0, text
    # the bar: label, images done of total, signatures, rate, ETA
    assert re.search(r"Signing .* \d+/12 images\s+\d+ signatures\s+[\d.]+/s", text), text
    assert "ETA" in text
    # log lines still reach the terminal above the bar, and the summary follows it
    assert text.count("Signed [") == 36
    assert "Summary: 12 images: 12 signed" in text


def test_sign_prompts_for_a_login_on_a_terminal(
    registry_basic: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo = f"tty/login-{uuid.uuid4().hex[:8]}"
    image = push_image(registry_basic, repo, "v1", kind="oci-manifest")
    list_file = tmp_path / "list"
    list_file.write_text(f"{registry_basic.host}/{repo}:v1\n")
    argv = [HANGAR, *sign_args(list_file, registry_basic)]
    answers = [
        (b"Username for " + registry_basic.host.encode(), registry_basic.username.encode() + b"\n"),
        (b"Password for ", registry_basic.password.encode() + b"\n"),
    ]
    code, output = run_in_pty(argv, answers, env=hangar_env(isolated_home), cwd=tmp_path)
    text = ANSI.sub(b"", output).decode()
    assert code == 0, text
    assert registry_basic.password not in text  # typed without echo
    auth = json.loads((isolated_home / "run/containers/auth.json").read_text())
    assert registry_basic.host in auth["auths"]
    check_hangar_attachment(
        registry_basic, repo, image.digest, f"{registry_basic.host}/{repo}:v1", KEY1_PUB
    )


def test_anonymous_push_registry_is_not_prompted(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo = f"tty/anon-{uuid.uuid4().hex[:8]}"
    push_image(registry_http, repo, "v1", kind="oci-manifest")
    list_file = tmp_path / "list"
    list_file.write_text(f"{registry_http.host}/{repo}:v1\n")
    argv = [HANGAR, *sign_args(list_file, registry_http)]
    code, output = run_in_pty(argv, [], env=hangar_env(isolated_home), cwd=tmp_path, timeout=60)
    assert code == 0
    assert b"Username" not in output
