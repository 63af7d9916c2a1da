"""What a person at a terminal sees: the progress bar, and the login prompt of `hangar sign`."""

from __future__ import annotations

import json
import re
import subprocess
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
    lines = [f"{registry_http.host}/{repo}:{i.tag}" for i in images]
    list_file.write_text("\n".join([*lines, f"{registry_http.host}/{repo}:missing"]) + "\n")
    argv = [HANGAR, *sign_args(list_file, registry_http, "-j", "2")]
    code, output = run_in_pty(argv, [], env=hangar_env(isolated_home), cwd=tmp_path)
    text = ANSI.sub(b"", output).decode()
    assert code == 1, text
    # the bar: label, images done of the known total, signatures, rate, both times labelled
    assert re.search(r"Signing .* \d+/13 images\s+\d+ signatures\s+[\d.]+/s", text), text
    assert re.search(r"elapsed \d+:\d\d:\d\d ETA (\d+:\d\d:\d\d|-:--:--)", text), text
    assert "/?" not in text
    # log lines still reach the terminal above the bar, and the summary follows it
    assert text.count("Signed [") == 36
    assert "Summary: 13 images: 12 signed" in text
    # levels are coloured: [ERRO] red, [WARN] yellow (the failed line's error here)
    assert re.search(rb"\x1b\[[0-9;]*31m\[ERRO\]", output), output[-2000:]


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


def test_a_ci_log_gets_progress_lines_and_no_colour(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo = f"tty/ci-{uuid.uuid4().hex[:8]}"
    images = [push_image(registry_http, repo, f"v{i}", kind="oci-manifest") for i in range(10)]
    list_file = tmp_path / "list"
    list_file.write_text("".join(f"{registry_http.host}/{repo}:{i.tag}\n" for i in images))
    env = hangar_env(isolated_home, HANGAR_PROGRESS_INTERVAL="0.001")
    result = subprocess.run(
        [HANGAR, *sign_args(list_file, registry_http)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if "Progress: " in line]
    assert progress, result.stderr
    pattern = (
        r"\[INFO\] Progress: (\d+)/10 images \(\d+%\), [\d.]+ images/s, "
        r"elapsed \d+s, ETA (\d+s|unknown)"
    )
    done = [int(re.fullmatch(pattern, line).group(1)) for line in progress]  # type: ignore[union-attr]
    assert done == sorted(done) and done[-1] <= 10
    assert "\x1b[" not in result.stderr


def test_quiet_prints_only_warnings_errors_and_the_summary(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo = f"tty/quiet-{uuid.uuid4().hex[:8]}"
    images = [push_image(registry_http, repo, f"v{i}", kind="oci-index") for i in range(3)]
    list_file = tmp_path / "list"
    lines = [f"{registry_http.host}/{repo}:{i.tag}" for i in images]
    list_file.write_text("\n".join([*lines, f"{registry_http.host}/{repo}:missing"]) + "\n")
    argv = [HANGAR, *sign_args(list_file, registry_http, "-q", "-j", "25")]
    code, output = run_in_pty(argv, [], env=hangar_env(isolated_home), cwd=tmp_path)
    text = ANSI.sub(b"", output).decode().replace("\r", "")
    assert code == 1, text
    shown = [line for line in text.splitlines() if line.strip()]
    infos = [line for line in shown if not line.startswith(("[WARN]", "[ERRO]"))]
    assert len(infos) == 1 and infos[0].startswith("[INFO] Summary: 4 images: 3 signed"), shown
    assert "[WARN] --jobs 25 is outside 1-20: using 20 worker(s)" in shown
    errors = [line for line in shown if line.startswith("[ERRO]")]
    assert len(errors) == 2 and f"{repo}:missing" in errors[0], shown
    assert "sign-failed.txt" in errors[1]
    assert "Signing" not in text and "Signed [" not in text  # no bar, no per-image lines
