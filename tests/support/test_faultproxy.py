"""Self-tests of the fault proxy, against real registries, seen from the client's side."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlencode, urlsplit

import aiohttp
import pytest

from tests.support import http as reg
from tests.support.faultproxy import (
    PLAIN_NOT_FOUND_BODY,
    UNKNOWN_NOT_FOUND_BODY,
    FaultProxy,
    LoggedRequest,
    Rule,
    harbor_not_found_body,
)
from tests.support.images import OCI_MANIFEST, push_image
from tests.support.registry import RegistryServer

MakeRegistry = Callable[..., RegistryServer]
SIG_TAG = "sha256-" + "ab" * 32 + ".sig"


@pytest.fixture
def proxy(registry_http: RegistryServer) -> Iterator[FaultProxy]:
    with FaultProxy.in_front_of(registry_http) as started:
        yield started


def _via(proxy: FaultProxy, upstream: RegistryServer) -> RegistryServer:
    return proxy.proxied(upstream)


def _send(
    proxy: FaultProxy,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> reg.Response:
    """One request through the proxy on a fresh connection (http.client, no retries)."""
    connection = http.client.HTTPConnection(proxy.host, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return reg.Response(response.status, response.headers, response.read())
    finally:
        connection.close()


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _small_manifest(upstream: RegistryServer, repo: str) -> tuple[bytes, str]:
    """An OCI manifest whose blobs are already upstream: (bytes, digest)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex()})
    config_digest = reg.push_blob(upstream, repo, config.encode())
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()
    return manifest, reg.sha256_digest(manifest)


def _challenge(header: str) -> tuple[str, dict[str, str], set[str]]:
    """A challenge with its scope's actions as a set: distribution lists them in any order."""
    scheme, params = reg.parse_challenge(header)
    resource, _, actions = params.pop("scope", "").rpartition(":")
    params["scope"] = resource
    return scheme, params, set(actions.split(","))


def _socket_inodes() -> set[str]:
    inodes = set()
    for name in os.listdir("/proc/self/fd"):
        with_target = os.path.join("/proc/self/fd", name)
        try:
            target = os.readlink(with_target)
        except OSError:
            continue
        if target.startswith("socket:"):
            inodes.add(target)
    return inodes


# -- pass-through ------------------------------------------------------------------------


def test_blob_upload_continues_through_rewritten_location(
    proxy: FaultProxy, registry_http: RegistryServer
) -> None:
    repo = "faultproxy/upload"
    data = os.urandom(4096)
    digest = reg.sha256_digest(data)
    via = _via(proxy, registry_http)
    opened = reg.raw_request(via, "POST", f"/v2/{repo}/blobs/uploads/", body=b"")
    assert opened.status == 202
    location = opened.header("Location") or ""
    assert location.startswith(f"{proxy.url}/v2/{repo}/blobs/uploads/")
    # Two steps, both on the absolute Location the proxy gave: PATCH the bytes, PUT ?digest=.
    patched = reg.raw_request(
        via,
        "PATCH",
        location,
        body=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert patched.status == 202
    next_location = patched.header("Location") or ""
    assert urlsplit(next_location).netloc == proxy.host
    separator = "&" if "?" in next_location else "?"
    finish = f"{next_location}{separator}{urlencode({'digest': digest})}"
    done = reg.raw_request(via, "PUT", finish, body=b"")
    assert done.status == 201
    assert done.header("Docker-Content-Digest") == digest
    assert urlsplit(done.header("Location") or "").netloc == proxy.host
    assert reg.get_blob(registry_http, repo, digest) == data
    methods = [(entry.method, entry.status) for entry in proxy.requests]
    assert methods == [("POST", 202), ("PATCH", 202), ("PUT", 201)]


def test_push_and_pull_match_the_upstream(proxy: FaultProxy, registry_http: RegistryServer) -> None:
    repo = "faultproxy/image"
    via = _via(proxy, registry_http)
    image = push_image(via, repo, "v1", kind="oci-index", platforms=["linux/amd64"])
    direct = reg.get_manifest(registry_http, repo, "v1")
    through = reg.get_manifest(via, repo, "v1")
    assert through == direct
    assert through[0] == image.manifest and through[2] == image.digest
    head = reg.raw_request(
        via, "HEAD", f"/v2/{repo}/manifests/v1", headers={"Accept": reg.ACCEPT_MANIFESTS}
    )
    assert head.status == 200 and head.body == b""
    assert head.header("Docker-Content-Digest") == image.digest
    assert head.header("Content-Length") == str(len(image.manifest))
    child = image.platforms["linux/amd64"]
    assert reg.get_manifest(via, repo, child) == reg.get_manifest(registry_http, repo, child)
    assert reg.head_manifest(via, repo, "missing") is None
    assert all(entry.status is not None for entry in proxy.requests)


def test_challenge_passes_through_untouched(registry_token: RegistryServer) -> None:
    with FaultProxy.in_front_of(registry_token) as proxy:
        via = _via(proxy, registry_token)
        path = "/v2/faultproxy/auth/manifests/v1"
        direct = reg.raw_request(registry_token, "GET", path)
        through = reg.raw_request(via, "GET", path)
        assert through.status == direct.status == 401
        assert through.header("WWW-Authenticate") == direct.header("WWW-Authenticate")
        # The whole dance (token from the real issuer) works through the proxy.
        image = push_image(via, "faultproxy/auth", "v1", kind="oci-manifest")
        assert reg.get_manifest(registry_token, "faultproxy/auth", "v1")[2] == image.digest


# -- actions -----------------------------------------------------------------------------


def test_status_answers_without_contacting_upstream(
    proxy: FaultProxy, registry_http: RegistryServer
) -> None:
    repo = "faultproxy/status"
    manifest, digest = _small_manifest(registry_http, repo)
    rule = proxy.add_rule(
        Rule(
            method="PUT",
            path_regex=r"/manifests/",
            status=503,
            body=b'{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}',
            headers={"Retry-After": "1"},
            times=1,
        )
    )
    path = f"/v2/{repo}/manifests/v1"
    headers = {"Content-Type": OCI_MANIFEST}
    refused = _send(proxy, "PUT", path, body=manifest, headers=headers)
    assert refused.status == 503
    assert refused.header("Retry-After") == "1"
    assert refused.header("Content-Type") == "application/json; charset=utf-8"
    assert json.loads(refused.body)["errors"][0]["code"] == "UNAVAILABLE"
    assert reg.head_manifest(registry_http, repo, "v1") is None
    accepted = _send(proxy, "PUT", path, body=manifest, headers=headers)
    assert accepted.status == 201
    assert reg.head_manifest(registry_http, repo, "v1") == digest
    assert proxy.hits(rule) == 1


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (429, b"", None),
        (404, UNKNOWN_NOT_FOUND_BODY, "application/json; charset=utf-8"),
        (404, PLAIN_NOT_FOUND_BODY, "text/plain; charset=utf-8"),
    ],
)
def test_status_dialects(
    proxy: FaultProxy, status: int, body: bytes, content_type: str | None
) -> None:
    proxy.add_rule(Rule(method="GET", path_regex=r"\.sig$", status=status, body=body))
    answer = _send(proxy, "GET", f"/v2/faultproxy/dialect/manifests/{SIG_TAG}")
    assert (answer.status, answer.body) == (status, body)
    assert answer.header("Retry-After") is None
    if content_type is not None:
        assert answer.header("Content-Type") == content_type


def test_harbor404_names_the_artifact(proxy: FaultProxy) -> None:
    proxy.add_rule(Rule(method="GET", path_regex=r"/manifests/sha256-.*\.sig$", action="harbor404"))
    answer = _send(proxy, "GET", f"/v2/library/app/manifests/{SIG_TAG}")
    assert answer.status == 404
    assert answer.header("Content-Type") == "application/json; charset=utf-8"
    expected = {
        "errors": [{"code": "NOT_FOUND", "message": f"artifact library/app:{SIG_TAG} not found"}]
    }
    assert json.loads(answer.body) == expected
    assert answer.body == harbor_not_found_body(f"/v2/library/app/manifests/{SIG_TAG}")
    # The tag is only faked missing: other paths still reach the registry.
    assert _send(proxy, "GET", "/v2/").status == 200


def test_401_copies_the_upstream_challenge(registry_token: RegistryServer) -> None:
    repo = "faultproxy/expired"
    manifest, _digest = _small_manifest(registry_token, repo)
    path = f"/v2/{repo}/manifests/v1"
    expected = reg.raw_request(registry_token, "PUT", path, body=b"").header("WWW-Authenticate")
    assert expected is not None and "push" in expected
    with FaultProxy.in_front_of(registry_token) as proxy:
        proxy.add_rule(Rule(method="PUT", path_regex=r"/manifests/v1$", status=401, times=1))
        via = _via(proxy, registry_token)
        token = "Bearer " + reg.fetch_token(registry_token, [f"repository:{repo}:pull,push"])
        headers = {"Authorization": token, "Content-Type": OCI_MANIFEST}
        expired = reg.raw_request(via, "PUT", path, body=manifest, headers=headers)
        assert expired.status == 401
        assert _challenge(expired.header("WWW-Authenticate") or "") == _challenge(expected)
        assert reg.head_manifest(registry_token, repo, "v1") is None
        assert reg.raw_request(via, "PUT", path, body=manifest, headers=headers).status == 201


def test_401_on_a_registry_without_auth_has_no_challenge(proxy: FaultProxy) -> None:
    proxy.add_rule(Rule(path_regex=r"^/v2/$", status=401))
    answer = _send(proxy, "GET", "/v2/")
    assert answer.status == 401
    assert answer.header("WWW-Authenticate") is None


def test_reset_drops_the_request_before_upstream(
    proxy: FaultProxy, registry_http: RegistryServer
) -> None:
    repo = "faultproxy/reset"
    manifest, digest = _small_manifest(registry_http, repo)
    rule = proxy.add_rule(Rule(method="PUT", path_regex=r"\.sig$", action="reset", times=1))
    path = f"/v2/{repo}/manifests/{SIG_TAG}"
    with pytest.raises(ConnectionError):
        _send(proxy, "PUT", path, body=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert reg.head_manifest(registry_http, repo, SIG_TAG) is None
    assert proxy.requests[-1][:3] == ("PUT", path, None)
    assert proxy.hits(rule) == 1
    retried = _send(proxy, "PUT", path, body=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert retried.status == 201
    assert reg.head_manifest(registry_http, repo, SIG_TAG) == digest


def test_reset_is_a_connection_error_for_aiohttp(proxy: FaultProxy) -> None:
    proxy.add_rule(Rule(method="GET", path_regex=r"^/v2/$", action="reset"))

    async def fetch() -> None:
        async with aiohttp.ClientSession() as session, session.get(f"{proxy.url}/v2/") as answer:
            await answer.read()

    with pytest.raises(aiohttp.ClientConnectionError):
        asyncio.run(fetch())


def test_reset_after_upstream_applies_the_request(
    proxy: FaultProxy, registry_http: RegistryServer
) -> None:
    repo = "faultproxy/applied"
    manifest, digest = _small_manifest(registry_http, repo)
    proxy.add_rule(Rule(method="PUT", action="reset_after_upstream", times=1))
    path = f"/v2/{repo}/manifests/{SIG_TAG}"
    with pytest.raises(ConnectionError):
        _send(proxy, "PUT", path, body=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert reg.head_manifest(registry_http, repo, SIG_TAG) == digest
    assert proxy.requests[-1].status is None


def test_delay_outlasts_the_client_timeout(
    proxy: FaultProxy, registry_http: RegistryServer
) -> None:
    repo = "faultproxy/delay"
    manifest, _digest = _small_manifest(registry_http, repo)
    # A delay far beyond the client's timeout, so that a loaded machine cannot blur the two.
    proxy.add_rule(Rule(method="PUT", action="delay", delay=30.0, times=1))
    path = f"/v2/{repo}/manifests/v1"
    headers = {"Content-Type": OCI_MANIFEST}
    with pytest.raises(TimeoutError):
        _send(proxy, "PUT", path, body=manifest, headers=headers, timeout=0.2)
    # The proxy notices the client gave up, well before the delay ends, and drops the request.
    _wait_until(lambda: len(proxy.requests) == 1, "the proxy to give up on the PUT")
    assert proxy.requests[-1][:3] == ("PUT", path, None)
    assert reg.head_manifest(registry_http, repo, "v1") is None
    proxy.add_rule(Rule(method="GET", action="delay", delay=0.3, times=1))
    started = time.monotonic()
    assert _send(proxy, "GET", "/v2/").status == 200
    assert time.monotonic() - started >= 0.3


def test_hold_keeps_a_request_until_released(
    proxy: FaultProxy, registry_http: RegistryServer
) -> None:
    repo = "faultproxy/hold"
    manifest, digest = _small_manifest(registry_http, repo)
    rule = proxy.add_rule(Rule(method="PUT", action="hold", times=1))
    path = f"/v2/{repo}/manifests/v1"
    answers: list[int] = []
    sender = threading.Thread(
        target=lambda: answers.append(
            _send(
                proxy,
                "PUT",
                path,
                body=manifest,
                headers={"Content-Type": OCI_MANIFEST},
                timeout=60,
            ).status
        )
    )
    sender.start()
    _wait_until(lambda: proxy.seen(rule) == 1, "the PUT to reach the proxy")
    time.sleep(0.2)  # a hold that leaked would show the PUT upstream now
    assert reg.head_manifest(registry_http, repo, "v1") is None
    assert answers == []
    proxy.release(rule)
    sender.join(60)
    assert answers == [201]
    assert proxy.answered(rule) == 1
    assert reg.head_manifest(registry_http, repo, "v1") == digest


# -- counting ----------------------------------------------------------------------------


def test_after_and_times_count_matching_requests(proxy: FaultProxy) -> None:
    rule = proxy.add_rule(Rule(method="GET", path_regex=r"^/v2/$", status=500, after=1, times=2))
    proxy.add_rule(Rule(method="PUT", status=418))  # other method: never matches a GET
    statuses = [_send(proxy, "GET", "/v2/").status for _ in range(5)]
    assert statuses == [200, 500, 500, 200, 200]
    assert proxy.hits(rule) == 2
    assert proxy.seen(rule) == 5
    assert [entry.status for entry in proxy.requests] == statuses
    assert all(isinstance(entry, LoggedRequest) for entry in proxy.requests)


def test_times_none_is_forever_until_cleared(proxy: FaultProxy) -> None:
    rule = proxy.add_rule(Rule(path_regex=r"^/v2/$", status=502, times=None))
    assert [_send(proxy, "GET", "/v2/").status for _ in range(3)] == [502, 502, 502]
    proxy.clear_rules()
    assert _send(proxy, "GET", "/v2/").status == 200
    assert proxy.hits(rule) == 3


def test_first_active_rule_wins(proxy: FaultProxy) -> None:
    first = proxy.add_rule(Rule(path_regex=r"^/v2/$", status=503, times=1))
    second = proxy.add_rule(Rule(path_regex=r"^/v2/$", status=429, times=1))
    statuses = [_send(proxy, "GET", "/v2/").status for _ in range(3)]
    assert statuses == [503, 429, 200]
    assert (proxy.hits(first), proxy.hits(second)) == (1, 1)


def test_rule_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault action"):
        Rule(action="explode")
    with pytest.raises(ValueError, match="delay"):
        Rule(action="delay")


# -- upstream down -----------------------------------------------------------------------


def test_upstream_down_resets_every_request(proxy: FaultProxy) -> None:
    proxy.set_upstream_down(True)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            _send(proxy, "GET", "/v2/")
    proxy.set_upstream_down(False)
    assert _send(proxy, "GET", "/v2/").status == 200


def test_killed_upstream_looks_like_a_dead_registry(make_registry: MakeRegistry) -> None:
    upstream = make_registry("http")
    with FaultProxy.in_front_of(upstream) as proxy:
        assert _send(proxy, "GET", "/v2/").status == 200
        upstream.kill()
        with pytest.raises(ConnectionError):
            _send(proxy, "GET", "/v2/")
        upstream.start()
        assert _send(proxy, "GET", "/v2/").status == 200


# -- lifecycle ---------------------------------------------------------------------------


def test_stop_ends_the_thread_and_closes_every_socket(registry_http: RegistryServer) -> None:
    sockets_before = _socket_inodes()
    threads_before = set(threading.enumerate())
    proxy = FaultProxy.in_front_of(registry_http).start()
    assert proxy.running
    assert _send(proxy, "GET", "/v2/").status == 200
    # A client left hanging in a long delay must not hold stop() up.
    rule = proxy.add_rule(Rule(action="delay", delay=30.0))
    hanging = socket.create_connection(("127.0.0.1", proxy.port))
    hanging.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
    _wait_until(lambda: proxy.seen(rule) == 1, "the request to reach the delay")
    started = time.monotonic()
    proxy.stop()
    assert time.monotonic() - started < 15  # not the 30 s delay, however loaded the machine
    assert hanging.recv(1) == b""  # dropped, no response
    hanging.close()
    assert not proxy.running
    assert set(threading.enumerate()) <= threads_before
    assert _socket_inodes() <= sockets_before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()
    proxy.stop()  # idempotent
