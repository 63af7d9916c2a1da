"""`hangar login` / `hangar logout`, run as the real command against real registries."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hangar.api.login import login_target
from hangar.registry.authfiles import default_auth_file
from tests.support.images import push_image
from tests.support.registry import RegistryServer
from tests.support.terminal import run_in_pty

HANGAR = str(Path(sys.executable).parent / "hangar")


def hangar(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run hangar with the test's HOME (isolated_home set it); stdin is a pipe, not a tty."""
    return subprocess.run(
        [HANGAR, *args],
        input=stdin if stdin is not None else "",
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


def auth_path(home: Path) -> Path:
    """Where podman (and so hangar) writes: $XDG_RUNTIME_DIR/containers/auth.json when set."""
    path = default_auth_file()
    assert path.is_relative_to(home)  # the isolated HOME, never the machine's
    return path


def encoded(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[ERRO] "), result.stderr
    return lines[0]


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_login_stores_podman_auth_json(
    kind: str, registry_basic: RegistryServer, registry_token: RegistryServer, isolated_home: Path
) -> None:
    server = registry_basic if kind == "basic" else registry_token
    assert server.username and server.password
    result = hangar(
        "login",
        "--tls-verify=false",
        "-u",
        server.username,
        "--password-stdin",
        server.host,
        stdin=server.password + "\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Login Succeeded!\n"
    stored = json.loads(auth_path(isolated_home).read_text())
    assert stored == {"auths": {server.host: {"auth": encoded(server.username, server.password)}}}
    assert server.password not in result.stderr


def test_stored_login_is_used_by_the_next_command(
    registry_basic: RegistryServer, isolated_home: Path
) -> None:
    assert registry_basic.username and registry_basic.password
    pushed = push_image(registry_basic, "ns/login-then-inspect", "v1", "oci-manifest")
    image = f"docker://{registry_basic.host}/ns/login-then-inspect:v1"
    before = hangar("inspect", "--tls-verify=false", "--raw", image)
    assert f"hangar login {registry_basic.host}" in assert_one_line_error(before)
    password_flag = f"--password={registry_basic.password}"
    result = hangar(
        "login", "--tls-verify=false", "-u", registry_basic.username, password_flag,
        registry_basic.host,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "visible to other users" in result.stderr  # -p on a command line, as podman warns
    after = hangar("inspect", "--tls-verify=false", "--raw", image)
    assert after.returncode == 0, after.stderr
    assert after.stdout.encode() == pushed.manifest


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_wrong_password_is_one_line_and_stores_nothing(
    kind: str, registry_basic: RegistryServer, registry_token: RegistryServer, isolated_home: Path
) -> None:
    server = registry_basic if kind == "basic" else registry_token
    assert server.username
    result = hangar(
        "login", "--tls-verify=false", "-u", server.username, "--password-stdin", server.host,
        stdin="wrong-password\n",
    )  # fmt: skip
    line = assert_one_line_error(result)
    assert server.host in line and "refused the username or password" in line
    assert "wrong-password" not in result.stderr
    assert not auth_path(isolated_home).exists()


def test_login_without_a_terminal_needs_the_secrets_as_flags(
    registry_basic: RegistryServer, isolated_home: Path
) -> None:
    line = assert_one_line_error(hangar("login", "--tls-verify=false", registry_basic.host))
    assert "not a terminal" in line and "--username" in line
    line = assert_one_line_error(
        hangar("login", "--tls-verify=false", "-u", "someone", registry_basic.host)
    )
    assert "--password-stdin" in line
    both = hangar(
        "login", "-u", "x", "-p", "y", "--password-stdin", registry_basic.host, stdin="y\n"
    )
    assert both.returncode == 2 and "cannot be used together" in both.stderr
    assert not auth_path(isolated_home).exists()


def test_login_prompts_on_a_terminal(registry_basic: RegistryServer, isolated_home: Path) -> None:
    assert registry_basic.username and registry_basic.password
    code, output = run_in_pty(
        [HANGAR, "login", "--tls-verify=false", registry_basic.host],
        [
            (b"Username: ", registry_basic.username.encode() + b"\n"),
            (b"Password: ", registry_basic.password.encode() + b"\n"),
        ],
        env=dict(os.environ),
        cwd=isolated_home,
    )
    assert code == 0, output
    assert b"Login Succeeded!" in output
    assert registry_basic.password.encode() not in output  # no echo
    stored = json.loads(auth_path(isolated_home).read_text())
    assert stored["auths"][registry_basic.host]["auth"] == encoded(
        registry_basic.username, registry_basic.password
    )


def test_login_over_https_with_the_ca_in_certs_d(make_registry, isolated_home: Path) -> None:
    server = make_registry("basic", tls=True)
    server.install_ca(isolated_home)
    assert server.username and server.password
    result = hangar(
        "login", "-u", server.username, "--password-stdin", server.host, stdin=server.password
    )
    assert result.returncode == 0, result.stderr
    assert server.host in json.loads(auth_path(isolated_home).read_text())["auths"]


def test_logout_and_logout_all(registry_basic: RegistryServer, isolated_home: Path) -> None:
    path = auth_path(isolated_home)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "auths": {
                    registry_basic.host: {"auth": encoded("a", "b")},
                    "other.example.com": {"auth": encoded("c", "d")},
                    "third.example.com": {"auth": encoded("e", "f")},
                }
            }
        )
    )
    result = hangar("logout", registry_basic.host)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Removed login credentials for {registry_basic.host}\n"
    assert set(json.loads(path.read_text())["auths"]) == {"other.example.com", "third.example.com"}
    again = assert_one_line_error(hangar("logout", registry_basic.host))
    assert f"not logged into {registry_basic.host}" in again
    everything = hangar("logout", "--all")
    assert everything.returncode == 0, everything.stderr
    assert json.loads(path.read_text())["auths"] == {}
    assert hangar("logout").returncode == 2
    assert hangar("logout", "--all", registry_basic.host).returncode == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("registry.example.com", ("registry.example.com", "registry.example.com")),
        (
            "https://registry.example.com/team/",
            ("registry.example.com", "registry.example.com/team"),
        ),
        ("127.0.0.1:5000", ("127.0.0.1:5000", "127.0.0.1:5000")),
        ("index.docker.io", ("docker.io", "docker.io")),
    ],
)
def test_login_target(text: str, expected: tuple[str, str]) -> None:
    assert login_target(text) == expected
