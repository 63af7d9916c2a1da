"""Proxies and credential helpers as podman uses them, end to end: the real `hangar` signs
through a CONNECT proxy on loopback to a real TLS registry (basic and token auth), reached by
a name the proxy resolves (loopback addresses are never proxied, as in Go). The proxy must
see CONNECT lines only: never an Authorization header. Credentials come from auth.json or from
a `docker-credential-*` script named by registries.conf `credential-helpers`."""

from __future__ import annotations

import os
import socket
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import run_hangar, sign_args, signed_tags
from tests.support.connectproxy import ConnectProxy
from tests.support.errors_doc import documented, log_line
from tests.support.images import push_image
from tests.support.registry import PROXIED_NAME, RegistryServer, write_auth_json

HELPER_NAME = "hangartest"


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    with ConnectProxy({PROXIED_NAME: "127.0.0.1"}) as running:
        yield running


def proxied_name(server: RegistryServer) -> str:
    return f"{PROXIED_NAME}:{server.port}"


def trust(server: RegistryServer, home: Path) -> str:
    """The CA in certs.d under the name hangar is given; returns that name."""
    name = proxied_name(server)
    directory = home / ".config" / "containers" / "certs.d" / name
    directory.mkdir(parents=True)
    assert server.ca_cert is not None
    (directory / "ca.crt").write_bytes(server.ca_cert.read_bytes())
    if server.token_server is not None:  # its realm is on loopback: reached directly
        realm = home / ".config" / "containers" / "certs.d" / server.token_server.host
        realm.mkdir(parents=True)
        (realm / "ca.crt").write_bytes(server.ca_cert.read_bytes())
    return name


def image_list(tmp_path: Path, server: RegistryServer, name: str) -> tuple[Path, str]:
    repo = f"proxy/app-{uuid.uuid4().hex[:8]}"
    push_image(server, repo, "v1", kind="oci-manifest")
    listing = tmp_path / "list"
    listing.write_text(f"{name}/{repo}:v1\n")
    return listing, repo


def assert_proxy_saw_no_credentials(proxy: ConnectProxy, name: str) -> None:
    heads = proxy.seen_heads()
    assert heads, "nothing went through the proxy"
    for head in heads:
        assert head.startswith(f"CONNECT {name} "), head
        assert "authorization" not in head.lower(), head
    assert set(proxy.tunnels) == {name}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_helper(directory: Path, log: Path, server: RegistryServer) -> Path:
    """docker-credential-hangartest: logs each call, answers `get` for the test registry."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / f"docker-credential-{HELPER_NAME}"
    script.write_text(
        "#!/bin/sh\n"
        "read -r host\n"
        f'echo "$1 $host" >> "{log}"\n'
        f'if [ "$1" = get ] && [ "$host" = "{proxied_name(server)}" ]; then\n'
        f'  echo \'{{"ServerURL":"{proxied_name(server)}","Username":"{server.username}",'
        f'"Secret":"{server.password}"}}\'\n'
        "  exit 0\n"
        "fi\n"
        'echo "credentials not found in native keychain"\n'
        "exit 1\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_sign_through_a_connect_proxy_never_shows_it_credentials(
    make_registry, proxy: ConnectProxy, home: Path, tmp_path: Path, kind: str
) -> None:
    server = make_registry(kind, tls=True)
    name = trust(server, home)
    write_auth_json(home / ".config/containers/auth.json", name, server.username, server.password)
    listing, repo = image_list(tmp_path, server, name)
    result = run_hangar(
        sign_args(listing, server, "--debug"), home, cwd=tmp_path, HTTPS_PROXY=proxy.url
    )
    assert result.returncode == 0, result.stderr
    assert len(signed_tags(server, repo)) == 1
    assert_proxy_saw_no_credentials(proxy, name)
    assert server.password not in result.stderr


def test_lower_case_variable_and_no_proxy_with_ports(
    make_registry, proxy: ConnectProxy, home: Path, tmp_path: Path
) -> None:
    server = make_registry("https")
    name = trust(server, home)
    listing, _repo = image_list(tmp_path, server, name)
    # NO_PROXY for another port of the same host: still proxied.
    other_port = f"{PROXIED_NAME}:{server.port + 1}"
    result = run_hangar(
        sign_args(listing, server), home, cwd=tmp_path, https_proxy=proxy.url, no_proxy=other_port
    )
    assert result.returncode == 0, result.stderr
    assert_proxy_saw_no_credentials(proxy, name)
    # NO_PROXY for this host (a parent domain matches too): direct, and the name does not
    # resolve outside the proxy.
    proxy.heads.clear()
    result = run_hangar(
        sign_args(listing, server), home, cwd=tmp_path, HTTPS_PROXY=proxy.url,
        NO_PROXY="example.com,hangar.test",
    )  # fmt: skip
    assert result.returncode == 1
    assert proxy.seen_heads() == []
    assert "does not resolve" in result.stderr


def test_loopback_registry_is_never_proxied(
    registry_https: RegistryServer, proxy: ConnectProxy, home: Path, tmp_path: Path
) -> None:
    registry_https.install_ca(home)
    listing, _repo = image_list(tmp_path, registry_https, registry_https.host)
    result = run_hangar(
        sign_args(listing, registry_https), home, cwd=tmp_path, HTTPS_PROXY=proxy.url
    )
    assert result.returncode == 0, result.stderr
    assert proxy.seen_heads() == []


def test_unreachable_proxy_is_one_line_without_its_password(
    make_registry, home: Path, tmp_path: Path
) -> None:
    server = make_registry("https")
    name = trust(server, home)
    listing, _repo = image_list(tmp_path, server, name)
    port = free_port()
    secret = "proxy-secret-s3cr3t"
    result = run_hangar(
        sign_args(listing, server, "--debug"), home, cwd=tmp_path,
        HTTPS_PROXY=f"http://corp:{secret}@127.0.0.1:{port}",
    )  # fmt: skip
    assert result.returncode == 1
    assert secret not in result.stderr and "Traceback" not in result.stderr
    line = log_line(result.stderr, "cannot reach proxy")
    documented(
        "proxy-unreachable", 1, line,
        {f"127.0.0.1:{port}": "127.0.0.1:CLOSED", name: "PROXIED_REGISTRY",
         f"{name}/{_repo}": "PROXIED_REGISTRY/proxy/app"},
    )  # fmt: skip


def test_proxy_variable_hangar_cannot_use_is_one_line(
    registry_https: RegistryServer, home: Path, tmp_path: Path
) -> None:
    listing = tmp_path / "list"
    listing.write_text(f"{PROXIED_NAME}:5000/ns/app:v1\n")
    result = run_hangar(
        sign_args(listing, registry_https), home, cwd=tmp_path,
        HTTPS_PROXY="socks5://user:pw-s3cr3t@127.0.0.1:1080",
    )  # fmt: skip
    assert result.returncode == 1
    assert "pw-s3cr3t" not in result.stderr and "Traceback" not in result.stderr
    line = log_line(result.stderr, "HTTPS_PROXY")
    documented("proxy-variable-unusable", 1, line, {})


def test_credential_helper_from_user_registries_conf(
    make_registry, proxy: ConnectProxy, home: Path, tmp_path: Path
) -> None:
    server = make_registry("basic", tls=True)
    name = trust(server, home)
    log = tmp_path / "helper.log"
    bin_dir = write_helper(tmp_path / "bin", log, server)
    conf = home / ".config" / "containers" / "registries.conf"
    conf.write_text(f'credential-helpers = ["{HELPER_NAME}"]\n')
    listing, repo = image_list(tmp_path, server, name)
    result = run_hangar(
        sign_args(listing, server), home, cwd=tmp_path, HTTPS_PROXY=proxy.url,
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(signed_tags(server, repo)) == 1
    assert f"get {name}" in log.read_text().splitlines()
    assert_proxy_saw_no_credentials(proxy, name)


def test_missing_helper_falls_through_to_auth_files_as_c_image(
    make_registry, home: Path, tmp_path: Path
) -> None:
    server = make_registry("basic", tls=True)
    server.install_ca(home)
    write_auth_json(
        home / ".config/containers/auth.json", server.host, server.username, server.password
    )
    conf = tmp_path / "registries.conf"
    conf.write_text('credential-helpers = ["absent", "containers-auth.json"]\n')
    listing, repo = image_list(tmp_path, server, server.host)
    result = run_hangar(
        sign_args(listing, server), home, cwd=tmp_path, CONTAINERS_REGISTRIES_CONF=str(conf)
    )
    assert result.returncode == 0, result.stderr
    assert len(signed_tags(server, repo)) == 1
    # Only the helper that is not installed: the line fails, naming it and where it is set.
    conf.write_text('credential-helpers = ["absent"]\n')
    result = run_hangar(
        sign_args(listing, server, "--skip-login"), home, cwd=tmp_path,
        CONTAINERS_REGISTRIES_CONF=str(conf),
    )  # fmt: skip
    assert result.returncode == 1
    line = log_line(result.stderr, "docker-credential-absent")
    documented(
        "credential-helper-missing", 1, line,
        {str(tmp_path): "TMP", server.host: "REGISTRY", repo: "proxy/app"},
    )  # fmt: skip
