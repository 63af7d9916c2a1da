"""registries.conf as podman reads it, end to end on the real registry: `insecure = true`
allows plain HTTP and unverified TLS for that registry without --tls-verify=false, `blocked =
true` refuses it, and $CONTAINERS_REGISTRIES_CONF and the drop-ins are honoured."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.support.cli import (
    KEY1,
    KEY1_PASS,
    KEY1_PUB,
    failed_lines,
    run_hangar,
    sig_tag,
    signed_tags,
    write_list,
)
from tests.support.errors_doc import documented, log_line
from tests.support.images import push_image
from tests.support.registry import RegistryServer


def image_list(server: RegistryServer, tmp_path: Path, prefix: str) -> tuple[Path, str, str]:
    repo = f"{prefix}/app-{uuid.uuid4().hex[:8]}"
    image = push_image(server, repo, "v1", kind="oci-manifest")
    return write_list(tmp_path / f"list-{prefix}", f"{server.host}/{repo}:v1"), repo, image.digest


def sign(list_file: Path, home: Path, cwd: Path, **env: str):
    args = ["sign", "-f", str(list_file), "-k", str(KEY1), "--sigstore-passphrase-file"]
    return run_hangar([*args, str(KEY1_PASS)], home, cwd=cwd, **env)  # no --tls-verify=false


def validate(list_file: Path, home: Path, cwd: Path, **env: str):
    args = ["sign", "validate", "-f", str(list_file), "-p", str(KEY1_PUB)]
    return run_hangar(args, home, cwd=cwd, **env)


def user_conf(home: Path, text: str, name: str = "registries.conf") -> Path:
    path = home / ".config" / "containers" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def entry(location: str, **flags: bool) -> str:
    lines = ["[[registry]]", f'location = "{location}"']
    lines += [f"{key} = {'true' if value else 'false'}" for key, value in flags.items()]
    return "\n".join(lines) + "\n"


def test_insecure_allows_plain_http_without_tls_verify_false(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    list_file, repo, digest = image_list(registry_http, tmp_path, "conf-http")
    refused = sign(list_file, isolated_home, tmp_path)
    assert refused.returncode == 1
    assert "does not speak HTTPS" in refused.stderr
    user_conf(isolated_home, entry(registry_http.host, insecure=True))
    result = sign(list_file, isolated_home, tmp_path)
    assert result.returncode == 0, result.stderr
    assert signed_tags(registry_http, repo) == {sig_tag(digest)}
    checked = validate(list_file, isolated_home, tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_insecure_allows_an_untrusted_certificate(
    registry_https: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    """The test CA is not installed in this home: verification fails unless the registry is
    insecure in registries.conf; another registry on the same host name stays verified."""
    list_file, repo, digest = image_list(registry_https, tmp_path, "conf-tls")
    refused = sign(list_file, isolated_home, tmp_path)
    assert refused.returncode == 1 and "is not trusted" in refused.stderr
    port = registry_https.host.rsplit(":", 1)[1]
    user_conf(isolated_home, entry(f"127.0.0.1:{int(port) + 1}", insecure=True))
    still = sign(list_file, isolated_home, tmp_path)
    assert still.returncode == 1 and "is not trusted" in still.stderr  # another port
    user_conf(isolated_home, entry(registry_https.host, insecure=True))
    result = sign(list_file, isolated_home, tmp_path)
    assert result.returncode == 0, result.stderr
    assert signed_tags(registry_https, repo) == {sig_tag(digest)}
    assert validate(list_file, isolated_home, tmp_path).returncode == 0


def test_blocked_refuses_the_registry_and_the_line_fails(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    list_file, repo, _ = image_list(registry_http, tmp_path, "conf-blocked")
    conf = user_conf(isolated_home, entry(registry_http.host, insecure=True, blocked=True))
    result = sign(list_file, isolated_home, tmp_path)
    assert result.returncode == 1
    line = log_line(result.stderr, f"registry {registry_http.host} is blocked in {conf}")
    assert "remove `blocked = true`" in line
    assert failed_lines(tmp_path / "sign-failed.txt") == list_file.read_text().splitlines()
    assert signed_tags(registry_http, repo) == set()
    subs = {str(isolated_home): "HOME", registry_http.host: "HTTP_REGISTRY", repo: "blocked/app"}
    documented("registries-conf-blocked", 1, line, subs)
    checked = validate(list_file, isolated_home, tmp_path)
    assert checked.returncode == 3  # not checked, not found unsigned
    # a repository-level prefix blocks that repository only
    namespace = repo.split("/")[0]
    user_conf(
        isolated_home,
        entry(registry_http.host, insecure=True)
        + entry(f"{registry_http.host}/{namespace}-other", blocked=True),
    )
    assert sign(list_file, isolated_home, tmp_path).returncode == 0


def test_containers_registries_conf_and_drop_ins(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    list_file, repo, digest = image_list(registry_http, tmp_path, "conf-env")
    # the user's file would block it, but $CONTAINERS_REGISTRIES_CONF replaces that file
    user_conf(isolated_home, entry(registry_http.host, blocked=True))
    main = tmp_path / "main.conf"
    main.write_text('unqualified-search-registries = ["docker.io"]\n')
    env = {"CONTAINERS_REGISTRIES_CONF": str(main)}
    assert "does not speak HTTPS" in sign(list_file, isolated_home, tmp_path, **env).stderr
    # a drop-in of the user's registries.conf.d is read after the main file
    user_conf(isolated_home, entry(registry_http.host, insecure=True), "registries.conf.d/50.conf")
    result = sign(list_file, isolated_home, tmp_path, **env)
    assert result.returncode == 0, result.stderr
    assert signed_tags(registry_http, repo) == {sig_tag(digest)}
    # a later drop-in with the same prefix replaces the entry
    user_conf(isolated_home, entry(registry_http.host, blocked=True), "registries.conf.d/60.conf")
    assert "is blocked in" in sign(list_file, isolated_home, tmp_path, **env).stderr
