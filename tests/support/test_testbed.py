"""Self-tests of the test bed: the registries, the token issuer, the image pusher."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import http as reg
from tests.support.images import (
    IMAGE_KINDS,
    OCI_INDEX,
    SCHEMA1_SIGNED,
    VECTOR_ATTACHMENT,
    parse_platform,
    push_image,
    push_raw_manifest,
    push_schema1_image,
    push_vector_attachment,
)
from tests.support.registry import (
    KINDS,
    RegistryServer,
    RegistryStartError,
    write_auth_json,
)

MakeRegistry = Callable[..., RegistryServer]


@pytest.fixture(params=KINDS)
def any_registry(request: pytest.FixtureRequest) -> RegistryServer:
    return request.getfixturevalue(f"registry_{request.param}")


def _check_read_back(server: RegistryServer, repo: str, ref: str, digest: str) -> bytes:
    data, _content_type, header = reg.get_manifest(server, repo, ref)
    assert reg.sha256_digest(data) == header == digest
    return data


# -- startup -----------------------------------------------------------------------------


def test_v2_answers_per_kind(any_registry: RegistryServer) -> None:
    response = reg.raw_request(any_registry, "GET", "/v2/")
    challenge = response.header("WWW-Authenticate") or ""
    if any_registry.kind in ("http", "https"):
        assert response.status == 200
        assert any_registry.username is None
    elif any_registry.kind == "basic":
        assert response.status == 401
        assert challenge.startswith("Basic ")
    else:
        assert any_registry.token_server is not None
        assert response.status == 401
        scheme, params = reg.parse_challenge(challenge)
        assert scheme == "bearer"
        assert params["realm"] == any_registry.token_server.realm
        assert params["service"] == any_registry.token_server.service
    assert any_registry.url == f"{any_registry.scheme}://{any_registry.host}"
    assert any_registry.host.startswith("127.0.0.1:")
    assert (any_registry.ca_cert is not None) == (any_registry.scheme == "https")


@pytest.mark.parametrize("image_kind", IMAGE_KINDS)
def test_push_and_read_back(any_registry: RegistryServer, image_kind: str) -> None:
    repo = f"testbed/{image_kind}"
    image = push_image(any_registry, repo, "v1", kind=image_kind)
    data, content_type, header = reg.get_manifest(any_registry, repo, "v1")
    assert data == image.manifest
    assert content_type == image.media_type
    assert reg.sha256_digest(data) == header == image.digest
    assert "v1" in reg.list_tags(any_registry, repo)
    for platform, digest in image.platforms.items():
        child = _check_read_back(any_registry, repo, digest, digest)
        config_digest = json.loads(child)["config"]["digest"]
        config = json.loads(reg.get_blob(any_registry, repo, config_digest))
        assert {k: config[k] for k in parse_platform(platform)} == parse_platform(platform)
    for digest in image.attestations.values():
        _check_read_back(any_registry, repo, digest, digest)


def test_parse_platform() -> None:
    assert parse_platform("linux/arm/v7") == {"os": "linux", "architecture": "arm", "variant": "v7"}
    with pytest.raises(ValueError):
        parse_platform("linux")


def test_index_platforms_and_attestations(registry_http: RegistryServer) -> None:
    repo = "testbed/attested"
    image = push_image(registry_http, repo, "v1", kind="oci-index-attestations")
    entries = json.loads(image.manifest)["manifests"]
    assert [e["platform"]["architecture"] for e in entries] == ["amd64", "arm64"] + ["unknown"] * 2
    assert set(image.platforms) == {"linux/amd64", "linux/arm64"}
    for entry in entries[2:]:
        annotations = entry["annotations"]
        assert annotations["vnd.docker.reference.type"] == "attestation-manifest"
        subject = annotations["vnd.docker.reference.digest"]
        assert image.attestations[_platform_of(image.platforms, subject)] == entry["digest"]

    listed = push_image(registry_http, repo, "list", kind="docker-list")
    platforms = [e["platform"] for e in json.loads(listed.manifest)["manifests"]]
    assert platforms[2] == {"os": "linux", "architecture": "arm", "variant": "v7"}
    assert platforms[3]["os"] == "windows"
    single = push_image(registry_http, repo, "arm", kind="oci-manifest", platforms=["linux/arm64"])
    assert single.platforms == {"linux/arm64": single.digest}


def _platform_of(platforms: dict[str, str], digest: str) -> str:
    return next(p for p, d in platforms.items() if d == digest)


def test_push_raw_manifest_keeps_bytes(registry_http: RegistryServer) -> None:
    repo = "testbed/raw"
    child = push_image(registry_http, repo, "child", kind="oci-manifest")
    # Odd white space and key order: the registry must store the bytes untouched.
    raw = (
        b'{ "mediaType": "application/vnd.oci.image.index.v1+json", "schemaVersion": 2,\n'
        + b' "manifests": [ {"mediaType": "application/vnd.oci.image.manifest.v1+json", '
        + f'"size": {len(child.manifest)}, "digest": "{child.digest}"}} ] }}\n'.encode()
    )
    digest = push_raw_manifest(registry_http, repo, "raw", raw, OCI_INDEX)
    assert _check_read_back(registry_http, repo, "raw", digest) == raw


def test_delete_manifest(registry_http: RegistryServer) -> None:
    repo = "testbed/delete"
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    reg.delete_manifest(registry_http, repo, image.digest)
    assert reg.head_manifest(registry_http, repo, image.digest) is None
    assert reg.list_tags(registry_http, repo) == []
    assert reg.list_tags(registry_http, "testbed/never-pushed") == []


# -- TLS ---------------------------------------------------------------------------------


def test_https_needs_the_test_ca(registry_https: RegistryServer) -> None:
    assert registry_https.ca_cert is not None
    connection = http.client.HTTPSConnection(
        "127.0.0.1", registry_https.port, timeout=30, context=ssl.create_default_context()
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        connection.request("GET", "/v2/")
    connection.close()
    # The certificate names localhost as well as 127.0.0.1.
    by_name = http.client.HTTPSConnection(
        "localhost", registry_https.port, timeout=30, context=registry_https.ssl_context()
    )
    by_name.request("GET", "/v2/")
    assert by_name.getresponse().status == 200
    by_name.close()


@pytest.mark.parametrize("kind", ["basic", "token"])
def test_auth_kinds_over_tls(make_registry: MakeRegistry, kind: str) -> None:
    server = make_registry(kind, tls=True)
    assert server.scheme == "https" and server.ca_cert is not None
    if server.token_server is not None:
        assert server.token_server.realm.startswith("https://127.0.0.1:")
    image = push_image(server, "testbed/tls", "v1", kind="oci-manifest")
    _check_read_back(server, "testbed/tls", "v1", image.digest)


# -- auth --------------------------------------------------------------------------------


def _basic_header(username: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}", "Accept": reg.ACCEPT_MANIFESTS}


def _bearer_header(token: str) -> dict[str, str]:
    # distribution 2.8 answers 404 for an OCI manifest unless Accept names OCI types.
    return {"Authorization": f"Bearer {token}", "Accept": reg.ACCEPT_MANIFESTS}


def test_basic_refuses_anonymous_and_wrong_password(registry_basic: RegistryServer) -> None:
    image = push_image(registry_basic, "testbed/basic", "v1", kind="oci-manifest")
    path = f"/v2/testbed/basic/manifests/{image.digest}"
    assert reg.raw_request(registry_basic, "GET", path).status == 401
    wrong = _basic_header("hangar", "not-the-password")
    assert reg.raw_request(registry_basic, "GET", path, headers=wrong).status == 401
    assert registry_basic.username is not None and registry_basic.password is not None
    right = _basic_header(registry_basic.username, registry_basic.password)
    assert reg.raw_request(registry_basic, "GET", path, headers=right).status == 200


def test_token_flow_is_recorded(registry_token: RegistryServer) -> None:
    issuer = registry_token.token_server
    assert issuer is not None
    image = push_image(registry_token, "testbed/token", "v1", kind="oci-manifest")
    path = f"/v2/testbed/token/manifests/{image.digest}"
    response = reg.raw_request(registry_token, "GET", path)
    assert response.status == 401
    _, params = reg.parse_challenge(response.header("WWW-Authenticate") or "")
    assert params["scope"] == "repository:testbed/token:pull"

    issuer.reset()
    token = reg.fetch_token(registry_token, [params["scope"]])
    assert issuer.issued_count == 1
    (recorded,) = issuer.requests
    assert (recorded.username, recorded.password) == (
        registry_token.username,
        registry_token.password,
    )
    assert recorded.scopes == ["repository:testbed/token:pull"]
    assert issuer.issued[0].access == [
        {"type": "repository", "name": "testbed/token", "actions": ["pull"]}
    ]
    bearer = _bearer_header(token)
    assert reg.raw_request(registry_token, "GET", path, headers=bearer).status == 200
    # A pull token does not allow a push.
    post = "/v2/testbed/token/blobs/uploads/"
    assert reg.raw_request(registry_token, "POST", post, headers=bearer).status == 401


def test_token_issuer_answers(registry_token: RegistryServer) -> None:
    issuer = registry_token.token_server
    assert issuer is not None
    query = f"?service={issuer.service}&scope=repository:a/b:pull,push"
    wrong = reg.raw_request(
        registry_token, "GET", issuer.realm + query, headers=_basic_header("hangar", "nope")
    )
    assert wrong.status == 401
    anonymous = reg.raw_request(registry_token, "GET", issuer.realm + query)
    assert anonymous.status == 401
    assert registry_token.username is not None and registry_token.password is not None
    good = reg.raw_request(
        registry_token,
        "GET",
        issuer.realm + query,
        headers=_basic_header(registry_token.username, registry_token.password),
    )
    answer = json.loads(good.body)
    assert answer["token"] == answer["access_token"]
    assert answer["expires_in"] == issuer.lifetime


def test_token_anonymous_pull_only(make_registry: MakeRegistry) -> None:
    server = make_registry("token")
    issuer = server.token_server
    assert issuer is not None
    image = push_image(server, "testbed/public", "v1", kind="oci-manifest")
    issuer.allow_anonymous = True
    issuer.reset()
    scope = "repository:testbed/public:pull,push"
    token = reg.fetch_token(server, [scope], anonymous=True)
    assert all(r.password is None and r.authorization is None for r in issuer.requests)
    assert issuer.issued[0].subject == ""
    assert issuer.issued[0].access[0]["actions"] == ["pull"]
    bearer = _bearer_header(token)
    path = f"/v2/testbed/public/manifests/{image.digest}"
    assert reg.raw_request(server, "GET", path, headers=bearer).status == 200
    post = reg.raw_request(server, "POST", "/v2/testbed/public/blobs/uploads/", headers=bearer)
    assert post.status == 401
    assert 'error="insufficient_scope"' in (post.header("WWW-Authenticate") or "")


def test_token_expiry(make_registry: MakeRegistry) -> None:
    server = make_registry("token")
    issuer = server.token_server
    assert issuer is not None
    image = push_image(server, "testbed/expiry", "v1", kind="oci-manifest")
    # The registry refuses it 3-4 s after issue (exp is whole seconds, rounded up so that the
    # token lives at least the `expires_in` it was given): room for a slow machine.
    issuer.lifetime = 3
    before = time.time()
    token = reg.fetch_token(server, ["repository:testbed/expiry:pull"])
    [issued] = issuer.issued[-1:]
    assert issued.token == token
    assert before + 3 <= issued.refused_from <= time.time() + 4
    bearer = _bearer_header(token)
    path = f"/v2/testbed/expiry/manifests/{image.digest}"
    assert reg.raw_request(server, "GET", path, headers=bearer).status == 200
    time.sleep(max(0.0, issued.refused_from + 0.2 - time.time()))
    expired = reg.raw_request(server, "GET", path, headers=bearer)
    assert expired.status == 401
    assert 'error="invalid_token"' in (expired.header("WWW-Authenticate") or "")
    # The helper client notices the 401 and fetches a new token.
    _check_read_back(server, "testbed/expiry", image.digest, image.digest)


# -- lifecycle ---------------------------------------------------------------------------


def test_restart_keeps_data_and_port(make_registry: MakeRegistry) -> None:
    server = make_registry("token")
    image = push_image(server, "testbed/restart", "v1", kind="oci-index")
    host = server.host
    server.stop()
    assert not server.running
    with pytest.raises(ConnectionRefusedError):
        reg.raw_request(server, "GET", "/v2/")
    server.start()
    assert server.host == host and server.running
    _check_read_back(server, "testbed/restart", "v1", image.digest)
    server.kill()
    assert not server.running
    server.start()
    _check_read_back(server, "testbed/restart", "v1", image.digest)
    # The token server can go away and come back on its own port too.
    assert server.token_server is not None
    realm = server.token_server.realm
    server.token_server.stop()
    server.token_server.start()
    assert server.token_server.realm == realm
    reg.forget_credentials()
    _check_read_back(server, "testbed/restart", "v1", image.digest)


def test_start_failure_shows_the_log(make_registry: MakeRegistry) -> None:
    server = make_registry("http")
    server.stop()
    # Hold the port (bound, not listening): the registry cannot bind it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", server.port))
        with pytest.raises(RegistryStartError, match="address already in use"):
            server.start()
    assert not server.running
    server.start()
    assert reg.raw_request(server, "GET", "/v2/").status == 200


# -- vectors and odd manifests -----------------------------------------------------------


def test_vector_attachment_pushes(registry_token: RegistryServer) -> None:
    pushed = push_vector_attachment(registry_token, "vectors/app")
    payload = json.loads((VECTOR_ATTACHMENT / "payload-1.json").read_bytes())
    assert pushed.digest == payload["critical"]["image"]["docker-manifest-digest"]
    assert pushed.signature_tag == pushed.digest.replace(":", "-") + ".sig"
    assert reg.list_tags(registry_token, "vectors/app") == sorted(["v1", pushed.signature_tag])
    data = _check_read_back(
        registry_token, "vectors/app", pushed.signature_tag, pushed.signature_digest
    )
    assert data == (VECTOR_ATTACHMENT / "sig-manifest.json").read_bytes()
    for layer in json.loads(data)["layers"]:
        blob = reg.get_blob(registry_token, "vectors/app", layer["digest"])
        assert reg.sha256_digest(blob) == layer["digest"]


def test_schema1_is_accepted_when_signed(registry_http: RegistryServer) -> None:
    pushed = push_schema1_image(registry_http, "testbed/schema1", "old")
    data, content_type, digest = reg.get_manifest(registry_http, "testbed/schema1", "old")
    assert content_type == SCHEMA1_SIGNED
    assert digest == pushed.digest
    # distribution re-signs schema1 on every GET: the digest is of the unsigned payload.
    assert reg.sha256_digest(data) != digest
    assert json.loads(data)["schemaVersion"] == 1
    assert "signatures" in json.loads(data)


# -- home and credentials helpers --------------------------------------------------------


def test_isolated_home_and_helpers(
    isolated_home: Path, registry_https: RegistryServer, registry_basic: RegistryServer
) -> None:
    assert os.environ["HOME"] == str(isolated_home)
    for name in ("REGISTRY_AUTH_FILE", "DOCKER_CONFIG", "XDG_CONFIG_HOME"):
        assert name not in os.environ
    assert os.environ["XDG_RUNTIME_DIR"] == str(isolated_home / "run")
    installed = registry_https.install_ca(isolated_home)
    assert installed == (
        isolated_home / ".config/containers/certs.d" / registry_https.host / "ca.crt"
    )
    assert registry_https.ca_cert is not None
    assert installed.read_bytes() == registry_https.ca_cert.read_bytes()
    with pytest.raises(ValueError):
        registry_basic.install_ca(isolated_home)

    auth = isolated_home / ".config/containers/auth.json"
    write_auth_json(auth, "a.example:5000", "u", "p:w")
    write_auth_json(auth, registry_basic.host, "hangar", "secret")
    auths = json.loads(auth.read_text())["auths"]
    assert base64.b64decode(auths["a.example:5000"]["auth"]) == b"u:p:w"
    assert base64.b64decode(auths[registry_basic.host]["auth"]) == b"hangar:secret"
    assert auth.stat().st_mode & 0o777 == 0o600
