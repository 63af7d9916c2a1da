"""RegistryClient against real docker-registry servers (plain, TLS, Basic, token auth).

Two small local aiohttp servers appear, each for one fault that a real registry cannot be made
to show: a redirect to another host (Authorization must not follow) and a server that accepts
connections but never answers (timeouts). Everything else talks to distribution itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from aiohttp import web

from hangar import output
from hangar.manifest import OCI_MANIFEST, UnsupportedManifestError, sha256_digest
from hangar.reference import parse_reference
from hangar.registry import auth as auth_module
from hangar.registry import tls
from hangar.registry._endpoints import upload_url
from hangar.registry.client import Manifest, RegistryClient
from hangar.registry.errors import (
    AuthenticationError,
    AuthorizationError,
    DigestMismatchError,
    Failure,
    NotFoundError,
    RegistryError,
    RegistryTimeoutError,
    ServerError,
    TLSError,
    TooLargeError,
    UnreachableError,
    parse_error_body,
    status_error,
)
from hangar.registry.retry import RetryPolicy, parse_retry_after, retryable_status
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.images import IMAGE_KINDS, push_image, push_schema1_image
from tests.support.registry import RegistryServer, write_auth_json
from tests.support.tokens import IssuedToken

T = TypeVar("T")
UPLOAD_START = r"/blobs/uploads/$"
UPLOAD_FINISH = r"/blobs/uploads/[^/]+$"


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


def make_client(**options: object) -> RegistryClient:
    options.setdefault("retry_base_delay", 0.01)
    return RegistryClient(**options)  # type: ignore[arg-type]


def unique_repo(prefix: str = "ns/app") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def auth_json(home: Path) -> Path:
    return home / ".config" / "containers" / "auth.json"


def login(home: Path, server: RegistryServer) -> None:
    assert server.username and server.password
    write_auth_json(auth_json(home), server.host, server.username, server.password)


@pytest.fixture
def debug_lines() -> Iterator[list[str]]:
    """Every debug line the client writes during the test."""
    lines: list[str] = []
    output.set_debug(True)
    output.set_sink(lines.append)
    try:
        yield lines
    finally:
        output.set_sink(None)
        output.set_debug(False)


@pytest.fixture
def fresh_tls(isolated_home: Path) -> Iterator[Path]:
    """TLS contexts are cached per host by hangar.registry.tls: start and end clean."""
    tls.clear_cache()
    try:
        yield isolated_home
    finally:
        tls.clear_cache()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- manifests ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_manifest_get_head_put_every_kind(
    registry_http: RegistryServer, isolated_home: Path, kind: str
) -> None:
    repo = unique_repo()
    pushed = push_image(registry_http, repo, "v1", kind)
    ref = parse_reference(f"{registry_http.host}/{repo}:v1")

    async def main() -> tuple[Manifest, tuple[str, str] | None, str, tuple[str, str] | None]:
        async with make_client(tls_verify=False) as client:
            manifest = await client.get_manifest(ref)
            head = await client.head_manifest(ref)
            copy = ref.with_tag("copy")
            put = await client.put_manifest(copy, manifest.data, manifest.media_type)
            return manifest, head, put, await client.head_manifest(copy)

    manifest, head, put, copied = run(main())
    assert manifest.data == pushed.manifest
    assert manifest.digest == pushed.digest == sha256_digest(manifest.data)
    assert manifest.media_type == pushed.media_type
    assert head == (pushed.digest, pushed.media_type)
    assert put == pushed.digest
    assert copied == (pushed.digest, pushed.media_type)


def test_manifest_by_digest_and_children(
    registry_http: RegistryServer, isolated_home: Path
) -> None:
    repo = unique_repo()
    pushed = push_image(registry_http, repo, "v1", "docker-list")
    base = parse_reference(f"{registry_http.host}/{repo}:v1")

    async def main() -> list[Manifest]:
        async with make_client(tls_verify=False) as client:
            digests = [pushed.digest, *pushed.children]
            return await asyncio.gather(
                *(client.get_manifest(base.with_digest(d)) for d in digests)
            )

    top, *children = run(main())
    assert top.digest == pushed.digest
    for manifest in children:
        assert manifest.data == pushed.children[manifest.digest]


def test_put_manifest_refuses_bytes_that_do_not_match_the_digest(
    registry_http: RegistryServer, isolated_home: Path
) -> None:
    ref = parse_reference(f"{registry_http.host}/{unique_repo()}@sha256:{'0' * 64}")

    async def main() -> None:
        async with make_client(tls_verify=False) as client:
            await client.put_manifest(ref, b"{}", OCI_MANIFEST)

    with pytest.raises(DigestMismatchError):
        run(main())


def test_unknown_tag_and_repository_are_not_found(
    registry_http: RegistryServer, isolated_home: Path
) -> None:
    repo = unique_repo()
    push_image(registry_http, repo, "v1", "oci-manifest")
    missing_tag = parse_reference(f"{registry_http.host}/{repo}:nope")
    missing_repo = parse_reference(f"{registry_http.host}/{unique_repo('nobody')}:v1")

    async def main() -> list[object]:
        async with make_client(tls_verify=False) as client:
            heads = [
                await client.head_manifest(missing_tag),
                await client.head_manifest(missing_repo),
            ]
            errors = []
            for ref in (missing_tag, missing_repo):
                with pytest.raises(NotFoundError) as caught:
                    await client.get_manifest(ref)
                errors.append(caught.value)
            blob = await client.blob_exists(registry_http.host, repo, "sha256:" + "1" * 64)
            return [*heads, *errors, blob]

    tag_head, repo_head, tag_error, repo_error, blob = run(main())
    assert tag_head is None and repo_head is None and blob is False
    assert isinstance(tag_error, NotFoundError)
    assert tag_error.status == 404 and tag_error.code == "MANIFEST_UNKNOWN"
    assert str(missing_tag) in str(tag_error)
    assert isinstance(repo_error, NotFoundError) and repo_error.registry == registry_http.host


def test_manifest_size_cap(registry_http: RegistryServer, isolated_home: Path) -> None:
    repo = unique_repo()
    pushed = push_image(registry_http, repo, "v1", "oci-index")
    ref = parse_reference(f"{registry_http.host}/{repo}:v1")

    async def main(limit: int) -> Manifest:
        async with make_client(tls_verify=False) as client:
            return await client.get_manifest(ref, max_size=limit)

    assert run(main(len(pushed.manifest))).data == pushed.manifest
    with pytest.raises(TooLargeError, match="too large"):
        run(main(len(pushed.manifest) - 1))


def test_schema1_is_refused_with_a_way_out(
    registry_http: RegistryServer, isolated_home: Path
) -> None:
    repo = unique_repo()
    push_schema1_image(registry_http, repo, "old")
    ref = parse_reference(f"{registry_http.host}/{repo}:old")

    async def main() -> None:
        async with make_client(tls_verify=False) as client:
            await client.get_manifest(ref)

    with pytest.raises(UnsupportedManifestError) as caught:
        run(main())
    assert "schema1" in str(caught.value)
    assert "re-push the image with a current client" in str(caught.value)


def _blob_file(server: RegistryServer, digest: str) -> Path:
    hex_digest = digest.split(":", 1)[1]
    return server.storage / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"


def _change_first_digit(data: bytes) -> bytes:
    index = next(i for i, byte in enumerate(data) if chr(byte).isdigit())
    digit = b"1" if data[index : index + 1] != b"1" else b"2"
    return data[:index] + digit + data[index + 1 :]


def test_corrupt_storage_is_caught_by_digest_checks(
    make_registry: Callable[..., RegistryServer], isolated_home: Path
) -> None:
    server = make_registry("http")
    repo = unique_repo()
    pushed = push_image(server, repo, "v1", "oci-manifest")
    config_digest = json.loads(pushed.manifest)["config"]["digest"]
    # Same length, still valid JSON, other bytes: the registry serves them as they are.
    for digest in (pushed.digest, config_digest):
        path = _blob_file(server, digest)
        data = path.read_bytes()
        corrupted = _change_first_digit(data)
        assert len(corrupted) == len(data) and corrupted != data
        path.write_bytes(corrupted)
    ref = parse_reference(f"{server.host}/{repo}@{pushed.digest}")

    async def main() -> list[BaseException]:
        async with make_client(tls_verify=False) as client:
            return await asyncio.gather(
                client.get_manifest(ref),
                client.get_blob(server.host, repo, config_digest, max_size=1 << 20),
                return_exceptions=True,
            )

    manifest_error, blob_error = run(main())
    assert isinstance(manifest_error, DigestMismatchError), manifest_error
    assert isinstance(blob_error, DigestMismatchError), blob_error
    assert config_digest in str(blob_error)


# -- blobs -------------------------------------------------------------------------------


def test_blob_upload_skip_and_read(
    registry_http: RegistryServer, isolated_home: Path, debug_lines: list[str]
) -> None:
    repo = unique_repo()
    data = secrets.token_bytes(3000)
    host = registry_http.host

    async def main() -> tuple[str, str, bool, bytes]:
        async with make_client(tls_verify=False) as client:
            first = await client.push_blob(host, repo, data)
            debug_lines.clear()
            second = await client.push_blob(host, repo, data)
            exists = await client.blob_exists(host, repo, first)
            return first, second, exists, await client.get_blob(host, repo, first, max_size=3000)

    first, second, exists, read = run(main())
    assert first == second == "sha256:" + hashlib.sha256(data).hexdigest()
    assert exists and read == data
    assert not [line for line in debug_lines if "POST" in line or "PUT" in line]


# A 503 forever on the POST, on the PUT, or on the PUT after two refused POSTs: whatever
# fails, an upload is one operation with one budget of retries.
UPLOAD_FAULTS = {
    "post": [Rule(method="POST", path_regex=UPLOAD_START, status=503)],
    "put": [Rule(method="PUT", path_regex=UPLOAD_FINISH, status=503)],
    "both": [
        Rule(method="POST", path_regex=UPLOAD_START, status=503, times=2),
        Rule(method="PUT", path_regex=UPLOAD_FINISH, status=503),
    ],
}


@pytest.mark.parametrize("fault", sorted(UPLOAD_FAULTS))
def test_an_upload_spends_one_retry_budget(
    registry_http: RegistryServer, isolated_home: Path, fault: str
) -> None:
    repo = unique_repo()
    data = secrets.token_bytes(100)
    digest = sha256_digest(data)
    retries = 3

    with FaultProxy.in_front_of(registry_http) as proxy:
        for rule in UPLOAD_FAULTS[fault]:
            proxy.add_rule(rule)

        async def main() -> None:
            async with make_client(tls_verify=False, retries=retries) as client:
                await client.push_blob(proxy.host, repo, data, check_exists=False)

        with pytest.raises(ServerError) as caught:
            run(main())
        sent = [r for r in proxy.requests if "/blobs/uploads/" in r.path]

    # POST and PUT share one budget of 2 * (retries + 1) attempts: not (retries + 1) ** 2 or
    # more, as nested loops would make.
    attempts = 2 * (retries + 1)
    failed = [r for r in sent if r.status == 503]
    assert len(failed) == attempts, sent
    posts = [r for r in sent if r.method == "POST"]
    assert len(posts) <= attempts
    method = "POST" if fault == "post" else "PUT"
    assert f"registry {proxy.host} failed {method} blob {digest} in {proxy.host}/{repo}" in str(
        caught.value
    )
    assert f"with HTTP 503 after {attempts} attempts" in str(caught.value)


def test_blob_size_cap(registry_http: RegistryServer, isolated_home: Path) -> None:
    repo = unique_repo()

    async def main() -> None:
        async with make_client(tls_verify=False) as client:
            digest = await client.push_blob(registry_http.host, repo, b"x" * 100)
            await client.get_blob(registry_http.host, repo, digest, max_size=99)

    with pytest.raises(TooLargeError):
        run(main())


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (
            "/v2/ns/app/blobs/uploads/u1?_state=a%2Bb",
            "http://r:5000/v2/ns/app/blobs/uploads/u1?_state=a%2Bb&digest=sha256%3Aab",
        ),
        (
            "/v2/ns/app/blobs/uploads/u1",
            "http://r:5000/v2/ns/app/blobs/uploads/u1?digest=sha256%3Aab",
        ),
        ("https://s.example/up/u1?x=1", "https://s.example/up/u1?x=1&digest=sha256%3Aab"),
        ("u1?x=1", "http://r:5000/u1?x=1&digest=sha256%3Aab"),
    ],
)
def test_upload_url_appends_the_digest(location: str, expected: str) -> None:
    assert upload_url("http://r:5000", location, "sha256:ab") == expected


# -- credentials: Basic ------------------------------------------------------------------


def test_basic_auth_uses_auth_json(registry_basic: RegistryServer, isolated_home: Path) -> None:
    repo = unique_repo()
    pushed = push_image(registry_basic, repo, "v1", "oci-manifest")
    ref = parse_reference(f"{registry_basic.host}/{repo}:v1")
    login(isolated_home, registry_basic)

    async def main() -> tuple[Manifest, str]:
        async with make_client(tls_verify=False) as client:
            manifest = await client.get_manifest(ref)
            return manifest, await client.push_blob(registry_basic.host, repo, b"payload")

    manifest, digest = run(main())
    assert manifest.digest == pushed.digest
    assert digest == sha256_digest(b"payload")


def test_basic_auth_without_credentials_suggests_login(
    registry_basic: RegistryServer, isolated_home: Path
) -> None:
    ref = parse_reference(f"{registry_basic.host}/{unique_repo()}:v1")

    async def main() -> None:
        async with make_client(tls_verify=False) as client:
            await client.get_manifest(ref)

    with pytest.raises(AuthenticationError) as caught:
        run(main())
    assert caught.value.status == 401
    assert f"hangar login {registry_basic.host}" in str(caught.value)


def test_basic_auth_with_a_wrong_password(
    registry_basic: RegistryServer, isolated_home: Path
) -> None:
    write_auth_json(auth_json(isolated_home), registry_basic.host, "hangar", "wrong")
    ref = parse_reference(f"{registry_basic.host}/{unique_repo()}:v1")

    async def main() -> None:
        async with make_client(tls_verify=False) as client:
            await client.get_manifest(ref)

    with pytest.raises(AuthenticationError, match="refused the credentials") as caught:
        run(main())
    assert "wrong" not in str(caught.value)


def test_check_and_require_credentials_basic(
    registry_basic: RegistryServer, registry_http: RegistryServer, isolated_home: Path
) -> None:
    host = registry_basic.host
    assert registry_basic.username and registry_basic.password

    async def main() -> tuple[bool, bool, bool]:
        async with make_client(tls_verify=False) as client:
            needs_before = await client.requires_credentials(host, "ns/app")
            open_registry = await client.requires_credentials(registry_http.host, "ns/app")
            with pytest.raises(AuthenticationError):
                await client.check_credentials(host, registry_basic.username, "wrong")
            await client.check_credentials(host, registry_basic.username, registry_basic.password)
            # From now on this client uses the checked credentials.
            await client.push_blob(host, unique_repo(), b"after login")
            return needs_before, open_registry, await client.requires_credentials(host, "ns/app")

    assert run(main()) == (True, False, False)


# -- credentials: bearer tokens ----------------------------------------------------------


def test_token_auth_caches_per_scope_and_shares_one_fetch(
    registry_token: RegistryServer, isolated_home: Path
) -> None:
    token_server = registry_token.token_server
    assert token_server is not None
    repo = unique_repo()
    push_image(registry_token, repo, "v1", "oci-index")
    login(isolated_home, registry_token)
    ref = parse_reference(f"{registry_token.host}/{repo}:v1")
    before = token_server.issued_count

    async def main() -> None:
        async with make_client(tls_verify=False) as client:
            await asyncio.gather(*(client.get_manifest(ref) for _ in range(20)))
            assert token_server.issued_count - before == 1  # one pull token, shared
            await client.push_blob(registry_token.host, repo, secrets.token_bytes(16))
            assert token_server.issued_count - before == 2  # a pull,push token
            await client.get_manifest(ref)
            await client.head_manifest(ref.with_tag("other"))
            assert token_server.issued_count - before == 2  # the push token serves reads

    run(main())
    scopes = [request.scopes for request in token_server.requests[-2:]]
    assert scopes == [[f"repository:{repo}:pull"], [f"repository:{repo}:pull,push"]]


def test_token_endpoint_gets_only_basic_credentials(
    registry_token: RegistryServer, isolated_home: Path, debug_lines: list[str]
) -> None:
    token_server = registry_token.token_server
    assert token_server is not None
    repo = unique_repo()
    push_image(registry_token, repo, "v1", "oci-manifest")
    login(isolated_home, registry_token)
    start = len(token_server.requests)

    async def main() -> None:
        async with make_client(tls_verify=False) as client:
            await client.get_manifest(parse_reference(f"{registry_token.host}/{repo}:v1"))
            await client.push_blob(registry_token.host, repo, secrets.token_bytes(8))

    run(main())
    requests = token_server.requests[start:]
    assert requests and all(r.status == 200 for r in requests)
    for request in requests:
        assert request.method == "GET"
        assert request.username == registry_token.username
        assert request.account == registry_token.username
        assert request.service == token_server.service
        assert (request.authorization or "").startswith("Basic ")
    # Debug output names requests but never secrets or token-endpoint queries.
    log = "\n".join(debug_lines)
    assert "/token" in log
    assert registry_token.password not in log
    for issued in token_server.issued:
        assert issued.token not in log
    assert "Bearer " not in log and "account=" not in log


def test_token_expiry_refreshes_before_the_registry_refuses(
    make_registry: Callable[..., RegistryServer],
    isolated_home: Path,
    debug_lines: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = make_registry("token")
    token_server = server.token_server
    assert token_server is not None
    lifetime = token_server.lifetime  # minutes: no token expires for real during the test
    repo = unique_repo()
    push_image(server, repo, "v1", "oci-manifest")
    login(isolated_home, server)
    ref = parse_reference(f"{server.host}/{repo}:v1")
    token_server.reset()
    # The client's token clock is moved by hand, not slept through: the same steps on a loaded
    # machine. The registry counts the lifetime from issue, at or before the client's receipt.
    now = [1000.0]
    monkeypatch.setattr(auth_module, "token_clock", lambda: now[0])

    async def main() -> list[int]:
        issued = []
        async with make_client(tls_verify=False) as client:
            await client.get_manifest(ref)  # the token arrives at 1000
            now[0] = 1000.0 + lifetime / 2
            await client.get_manifest(ref)
            issued.append(token_server.issued_count)  # still fresh: used again
            now[0] = 1000.0 + lifetime - 1  # a second before the registry would refuse it
            await client.get_manifest(ref)
            issued.append(token_server.issued_count)
        return issued

    assert run(main()) == [1, 2]
    assert not [line for line in debug_lines if "-> 401" in line and "manifests" in line]


async def until_refused(token: IssuedToken) -> None:
    """Wait until the registry refuses `token` (its `exp` plus distribution's leeway)."""
    refused_at = token.refused_from + 0.1
    while time.time() < refused_at:
        await asyncio.sleep(refused_at - time.time())


def test_a_refused_cached_token_is_dropped_and_fetched_again(
    make_registry: Callable[..., RegistryServer],
    isolated_home: Path,
    debug_lines: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = make_registry("token")
    token_server = server.token_server
    assert token_server is not None
    # Short, yet at least 2 s for the first request to use the token on a loaded machine.
    token_server.lifetime = 3
    repo = unique_repo()
    push_image(server, repo, "v1", "oci-manifest")
    login(isolated_home, server)
    ref = parse_reference(f"{server.host}/{repo}:v1")
    token_server.reset()
    # The client's token clock stands still: it believes the token fresh long after the
    # registry stopped accepting it (a registry clock ahead of ours, revocation).
    monkeypatch.setattr(auth_module, "token_clock", lambda: 0.0)

    async def main() -> None:
        async with make_client(tls_verify=False) as client:
            await client.get_manifest(ref)
            await until_refused(token_server.issued[0])
            await client.get_manifest(ref)

    run(main())
    assert token_server.issued_count == 2
    statuses = [line.split("-> ")[1][:3] for line in debug_lines if "/manifests/" in line]
    assert statuses == ["200", "401", "200"]


def test_token_registry_without_credentials(
    make_registry: Callable[..., RegistryServer], isolated_home: Path
) -> None:
    server = make_registry("token")
    assert server.token_server is not None
    server.token_server.allow_anonymous = True  # anonymous pulls, pushes need a login
    repo = unique_repo()
    pushed = push_image(server, repo, "v1", "oci-manifest")
    ref = parse_reference(f"{server.host}/{repo}:v1")

    async def main() -> tuple[str, bool]:
        async with make_client(tls_verify=False) as client:
            manifest = await client.get_manifest(ref)
            with pytest.raises(AuthenticationError, match=f"hangar login {server.host}"):
                await client.put_manifest(ref.with_tag("v2"), manifest.data, manifest.media_type)
            return manifest.digest, await client.requires_credentials(server.host, repo)

    assert run(main()) == (pushed.digest, True)


def test_token_user_without_push_access_is_told_so(
    make_registry: Callable[..., RegistryServer], isolated_home: Path
) -> None:
    server = make_registry("token")
    assert server.token_server is not None
    repo = unique_repo()
    pushed = push_image(server, repo, "v1", "oci-manifest")
    server.token_server.push_allowed = False
    login(isolated_home, server)
    ref = parse_reference(f"{server.host}/{repo}:v2")

    async def main() -> None:
        async with make_client(tls_verify=False) as client:
            await client.put_manifest(ref, pushed.manifest, pushed.media_type)

    with pytest.raises(AuthorizationError) as caught:
        run(main())
    assert f"not allowed to push to {server.host}/{repo}" in str(caught.value)


def test_check_credentials_token(registry_token: RegistryServer, isolated_home: Path) -> None:
    host = registry_token.host
    assert registry_token.username and registry_token.password

    async def main() -> None:
        async with make_client(tls_verify=False) as client:
            assert await client.requires_credentials(host, unique_repo()) is True
            with pytest.raises(AuthenticationError, match="refused the username or password"):
                await client.check_credentials(host, registry_token.username, "wrong")
            await client.check_credentials(host, registry_token.username, registry_token.password)

    run(main())


# -- TLS and schemes ---------------------------------------------------------------------


def test_https_with_ca_in_certs_d(registry_https: RegistryServer, fresh_tls: Path) -> None:
    repo = unique_repo()
    pushed = push_image(registry_https, repo, "v1", "oci-index")
    registry_https.install_ca(fresh_tls)
    ref = parse_reference(f"{registry_https.host}/{repo}:v1")

    async def main() -> Manifest:
        async with make_client(tls_verify=True) as client:
            return await client.get_manifest(ref)

    assert run(main()).digest == pushed.digest


def test_https_without_ca_is_not_trusted(registry_https: RegistryServer, fresh_tls: Path) -> None:
    ref = parse_reference(f"{registry_https.host}/ns/app:v1")

    async def main() -> None:
        async with make_client(tls_verify=True) as client:
            await client.get_manifest(ref)

    with pytest.raises(TLSError) as caught:
        run(main())
    message = str(caught.value)
    assert f"TLS certificate of {registry_https.host} is not trusted" in message
    assert f"certs.d/{registry_https.host}/ca.crt" in message
    assert "--tls-verify=false" in message


def test_no_verification_works_on_https_and_plain_http(
    registry_https: RegistryServer, registry_http: RegistryServer, fresh_tls: Path
) -> None:
    images = []
    for server in (registry_https, registry_http):
        repo = unique_repo()
        images.append((server, repo, push_image(server, repo, "v1", "oci-manifest")))

    async def main() -> list[str]:
        async with make_client(tls_verify=False) as client:
            return [
                (await client.get_manifest(parse_reference(f"{s.host}/{r}:v1"))).digest
                for s, r, _ in images
            ]

    assert run(main()) == [pushed.digest for _, _, pushed in images]


def test_https_to_a_plain_http_registry(registry_http: RegistryServer, fresh_tls: Path) -> None:
    async def main() -> None:
        async with make_client(tls_verify=True) as client:
            await client.get_manifest(parse_reference(f"{registry_http.host}/ns/app:v1"))

    with pytest.raises(TLSError, match="does not speak HTTPS") as caught:
        run(main())
    assert "--tls-verify=false" in str(caught.value)


# -- failures of the network -------------------------------------------------------------


def test_unreachable_registry_fails_fast(isolated_home: Path, debug_lines: list[str]) -> None:
    host = f"127.0.0.1:{closed_port()}"

    async def main() -> None:
        # Default retry settings: a refused first contact is not worth waiting for.
        async with RegistryClient(tls_verify=False) as client:
            await client.get_manifest(parse_reference(f"{host}/ns/app:v1"))

    with pytest.raises(UnreachableError) as caught:
        run(main())
    # Fast: no retry (a timer would not tell a loaded machine from one backoff step).
    assert not [line for line in debug_lines if "retry in" in line], debug_lines
    assert f"cannot reach registry {host}" in str(caught.value)
    assert "connection refused" in str(caught.value)


def test_retries_ride_out_a_registry_restart(
    make_registry: Callable[..., RegistryServer], isolated_home: Path, debug_lines: list[str]
) -> None:
    server = make_registry("http")
    repo = unique_repo()
    pushed = push_image(server, repo, "v1", "oci-manifest")
    ref = parse_reference(f"{server.host}/{repo}:v1")

    async def main() -> Manifest:
        async with make_client(tls_verify=False, retries=8, retry_base_delay=0.2) as client:
            await client.head_manifest(ref)  # the registry is known to be up
            server.stop()
            restart = threading.Timer(0.5, server.start)
            restart.start()
            try:
                return await client.get_manifest(ref)
            finally:
                restart.join()

    assert run(main()).digest == pushed.digest
    assert any("retry in" in line for line in debug_lines)


def test_a_silent_server_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # connections complete in the backlog; nothing ever answers
        host = f"127.0.0.1:{listener.getsockname()[1]}"

        async def main() -> None:
            async with make_client(tls_verify=False, request_timeout=0.3, retries=1) as client:
                await client.get_manifest(parse_reference(f"{host}/ns/app:v1"))

        with pytest.raises(RegistryTimeoutError, match="did not answer"):
            run(main())


# -- redirects ---------------------------------------------------------------------------


class _RedirectingFront:
    """A Basic-auth front that redirects blob reads to storage on another host (127.0.0.2);
    reads in `ns/local` first redirect to `ns/app` on the front itself."""

    def __init__(self, blob: bytes, authorization: str) -> None:
        self.blob = blob
        self.digest = sha256_digest(blob)
        self.authorization = authorization
        self.front_requests: list[tuple[str, str | None]] = []
        self.storage_headers: list[dict[str, str]] = []
        self.storage_url = ""

    async def front(self, request: web.Request) -> web.Response:
        self.front_requests.append((request.path, request.headers.get("Authorization")))
        if request.headers.get("Authorization") != self.authorization:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="front"'})
        if request.path == "/v2/":
            return web.json_response({})
        if request.path.startswith("/v2/ns/local/"):
            raise web.HTTPTemporaryRedirect(f"/v2/ns/app/blobs/{self.digest}")
        raise web.HTTPTemporaryRedirect(f"{self.storage_url}/storage/data?X-Signature=abc")

    async def storage(self, request: web.Request) -> web.Response:
        self.storage_headers.append(dict(request.headers))
        return web.Response(body=self.blob, content_type="application/octet-stream")


def test_redirects_never_carry_authorization_to_another_host(isolated_home: Path) -> None:
    blob = secrets.token_bytes(512)
    basic = auth_module.basic_authorization("user", "secret")
    fake = _RedirectingFront(blob, basic)

    async def main() -> list[bytes]:
        front_app = web.Application()
        front_app.router.add_route("*", "/{tail:.*}", fake.front)
        storage_app = web.Application()
        storage_app.router.add_get("/storage/data", fake.storage)
        runners = [web.AppRunner(front_app), web.AppRunner(storage_app)]
        for runner in runners:
            await runner.setup()
        await web.TCPSite(runners[0], "127.0.0.1", 0).start()
        await web.TCPSite(runners[1], "127.0.0.2", 0).start()
        try:
            host = f"127.0.0.1:{runners[0].addresses[0][1]}"
            fake.storage_url = f"http://127.0.0.2:{runners[1].addresses[0][1]}"
            write_auth_json(auth_json(isolated_home), host, "user", "secret")
            async with make_client(tls_verify=False) as client:
                return [
                    await client.get_blob(host, repo, fake.digest, max_size=4096)
                    for repo in ("ns/app", "ns/local")
                ]
        finally:
            for runner in runners:
                await runner.cleanup()

    assert run(main()) == [blob, blob]
    assert len(fake.storage_headers) == 2
    assert all("Authorization" not in headers for headers in fake.storage_headers)
    # The registry itself got the credentials, also after its same-host redirect.
    blob_reads = [(path, auth) for path, auth in fake.front_requests if "/blobs/" in path]
    assert blob_reads == [
        (f"/v2/ns/app/blobs/{fake.digest}", basic),
        (f"/v2/ns/local/blobs/{fake.digest}", basic),
        (f"/v2/ns/app/blobs/{fake.digest}", basic),
    ]


# -- pure helpers ------------------------------------------------------------------------


def test_error_bodies_in_every_dialect() -> None:
    distribution = (
        b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown",'
        b'"detail":{"Tag":"x"}}]}'
    )
    # the structured detail is for programs: no raw JSON in a message
    assert parse_error_body(distribution) == (
        "MANIFEST_UNKNOWN",
        "MANIFEST_UNKNOWN: manifest unknown",
    )
    with_text = b'{"errors":[{"code":"DENIED","message":"denied","detail":"quota exceeded"}]}'
    assert parse_error_body(with_text)[1] == "DENIED: denied (quota exceeded)"
    harbor = b'{"errors":[{"code":"NOT_FOUND","message":"artifact ns/app:x not found"}]}'
    assert parse_error_body(harbor)[0] == "NOT_FOUND"
    assert (
        parse_error_body(b'{"errors":[{"code":"UNKNOWN","message":"Not Found"}]}')[0] == "UNKNOWN"
    )
    assert parse_error_body(b"<html>\n<h1>404 Not Found</h1>") == (None, "<html>")
    assert parse_error_body(b"") == (None, "")


@pytest.mark.parametrize(
    "body",
    [
        b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
        b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}',
        b'{"errors":[{"code":"NOT_FOUND","message":"artifact ns/app:sha256-x.sig not found"}]}',
        b'{"errors":[{"code":"UNKNOWN","message":"Not Found"}]}',
        b"<html><body>404 page not found</body></html>",
        b"",
    ],
)
def test_every_404_dialect_is_not_found(body: bytes) -> None:
    failure = Failure("r.example", "ns/app", "image r.example/ns/app:v1", "GET", False)
    error = status_error(failure, 404, body)
    assert isinstance(error, NotFoundError)
    assert str(error).startswith("image r.example/ns/app:v1 not found")


def test_status_errors_say_what_to_do() -> None:
    push = Failure("r.example", "ns/app", "image r.example/ns/app:v1", "PUT", True)
    anonymous = status_error(push, 401, b"")
    assert isinstance(anonymous, AuthenticationError)
    assert "hangar login r.example" in str(anonymous)
    refused = status_error(push, 401, b"", has_credentials=True)
    assert isinstance(refused, AuthenticationError) and "refused the credentials" in str(refused)
    scope = status_error(push, 401, b"", has_credentials=True, insufficient_scope=True)
    assert isinstance(scope, AuthorizationError)
    forbidden = status_error(push, 403, b'{"errors":[{"code":"DENIED","message":"no"}]}')
    assert isinstance(forbidden, AuthorizationError) and forbidden.code == "DENIED"
    assert "not allowed to push to r.example/ns/app: DENIED: no" in str(forbidden)
    overloaded = status_error(push, 503, b"busy", attempts=6)
    assert isinstance(overloaded, ServerError) and "after 6 attempts" in str(overloaded)
    other = status_error(push, 400, b'{"errors":[{"code":"MANIFEST_INVALID","message":"bad"}]}')
    assert type(other) is RegistryError and other.status == 400
    assert "MANIFEST_INVALID: bad" in str(other)


def test_retry_policy() -> None:
    assert all(retryable_status(s) for s in (500, 502, 503, 504, 429, 408))
    assert not any(retryable_status(s) for s in (400, 401, 403, 404, 409, 501, 505))
    policy = RetryPolicy(retries=5, base_delay=0.5, max_delay=4.0)
    for attempt in range(1, 8):
        ceiling = min(0.5 * 2 ** (attempt - 1), 4.0)
        assert ceiling / 2 <= policy.delay(attempt) <= ceiling
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=3600.0) == 4.0  # capped


def test_retry_after_seconds_and_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    now = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now=now) == 30.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now=now) == 0.0


def test_errors_are_hangar_errors_with_attributes() -> None:
    error = NotFoundError("image x not found", registry="r", status=404, code="NAME_UNKNOWN")
    assert isinstance(error, RegistryError)
    assert (error.registry, error.status, error.code) == ("r", 404, "NAME_UNKNOWN")


def test_requests_are_counted_per_kind_and_reported(
    registry_http: RegistryServer,
    isolated_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repository = unique_repo()
    report = tmp_path / "counts.json"
    monkeypatch.setenv("HANGAR_REQUEST_COUNTS", str(report))

    async def scenario() -> RegistryClient:
        async with make_client(tls_verify=False) as client:
            await client.push_blob(registry_http.host, repository, b"counted", check_exists=False)
            ref = parse_reference(f"{registry_http.host}/{repository}:missing")
            assert await client.head_manifest(ref) is None
            client.report_requests()
            return client

    client = run(scenario())
    # two pings: HTTPS first (refused by this plain-HTTP registry), then HTTP
    expected = {"GET ping": 2, "POST upload": 1, "PUT upload": 1, "HEAD manifest": 1}
    assert dict(client.request_counts) == expected
    written = json.loads(report.read_text())
    assert written["counts"] == expected
    assert written["first_request"] == client.first_request
