"""A tiny synchronous registry client for the tests themselves.

Independent of hangar's own client on purpose (http.client, no aiohttp), so that a bug there
cannot hide in the tool that checks it. It answers the registry's challenge: Basic with the
server's test credentials, or Bearer by asking the token server named in the challenge.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urljoin, urlsplit

if TYPE_CHECKING:
    from tests.support.registry import RegistryServer

MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
)
ACCEPT_MANIFESTS = ", ".join(MANIFEST_MEDIA_TYPES)
TIMEOUT_SECONDS = 30.0

# Authorization header values that worked, per (registry url, repository, pull|push|delete):
# later calls send them at once, and fetch a new one only on a 401 (an expired token).
_auth_cache: dict[tuple[str, str, str], str] = {}
_auth_lock = threading.Lock()


class RegistryHTTPError(Exception):
    """The registry answered with a status the caller did not expect."""

    def __init__(self, method: str, url: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {url} -> {status}: {body[:500]!r}")
        self.method = method
        self.url = url
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- requests ----------------------------------------------------------------------------


def raw_request(
    server: RegistryServer,
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """One HTTP exchange, no auth handling. `url` is absolute or a path on the server."""
    parts = urlsplit(urljoin(server.url + "/", url))
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.netloc, timeout=TIMEOUT_SECONDS, context=server.ssl_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.netloc, timeout=TIMEOUT_SECONDS)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


def request(
    server: RegistryServer,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    authenticate: bool = True,
) -> Response:
    """A request that answers an auth challenge with the server's test credentials."""
    key = _cache_key(server, method, path)
    sent = dict(headers or {})
    with _auth_lock:
        cached = _auth_cache.get(key) if authenticate else None
    if cached:
        sent["Authorization"] = cached
    response = raw_request(server, method, path, body=body, headers=sent)
    if response.status != 401 or not authenticate:
        return response
    authorization = _answer_challenge(server, response.header("WWW-Authenticate") or "")
    with _auth_lock:
        _auth_cache[key] = authorization
    sent["Authorization"] = authorization
    return raw_request(server, method, path, body=body, headers=sent)


def forget_credentials() -> None:
    """Drop cached Authorization values (tokens) of every server."""
    with _auth_lock:
        _auth_cache.clear()


def _cache_key(server: RegistryServer, method: str, path: str) -> tuple[str, str, str]:
    match = re.match(r"^/v2/(.+?)/(manifests|blobs|tags)/", urlsplit(path).path)
    repository = match.group(1) if match else ""
    access = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}.get(method, "push")
    return server.url, repository, access


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """`Bearer realm="x",service="y"` -> ("bearer", {"realm": "x", "service": "y"})."""
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _answer_challenge(server: RegistryServer, header: str) -> str:
    scheme, params = parse_challenge(header)
    if server.username is None or server.password is None:
        raise RuntimeError(f"registry {server.host} asks for auth ({header}) but has no user")
    if scheme == "basic":
        return _basic(server.username, server.password)
    if scheme == "bearer":
        return "Bearer " + fetch_token(server, params.get("scope", "").split(" "))
    raise RuntimeError(f"registry {server.host}: unknown challenge {header!r}")


def fetch_token(server: RegistryServer, scopes: list[str], *, anonymous: bool = False) -> str:
    """Ask the server's token issuer for a token (with the test user unless anonymous)."""
    token_server = server.token_server
    if token_server is None:
        raise RuntimeError(f"registry {server.host} has no token server")
    query = urlencode([("service", token_server.service)] + [("scope", s) for s in scopes if s])
    headers = {}
    if not anonymous:
        assert server.username is not None and server.password is not None
        headers["Authorization"] = _basic(server.username, server.password)
    response = raw_request(server, "GET", f"{token_server.realm}?{query}", headers=headers)
    if response.status != 200:
        raise RegistryHTTPError("GET", token_server.realm, response.status, response.body)
    answer = json.loads(response.body)
    return str(answer.get("token") or answer["access_token"])


def _expect(response: Response, method: str, path: str, *statuses: int) -> Response:
    if response.status not in statuses:
        raise RegistryHTTPError(method, path, response.status, response.body)
    return response


# -- registry API ------------------------------------------------------------------------


def get_manifest(server: RegistryServer, repo: str, ref: str) -> tuple[bytes, str, str]:
    """(bytes, Content-Type, Docker-Content-Digest) of a manifest, any media type accepted."""
    path = f"/v2/{repo}/manifests/{ref}"
    response = request(server, "GET", path, headers={"Accept": ACCEPT_MANIFESTS})
    _expect(response, "GET", path, 200)
    content_type = response.header("Content-Type") or ""
    return response.body, content_type, response.header("Docker-Content-Digest") or ""


def head_manifest(server: RegistryServer, repo: str, ref: str) -> str | None:
    """The manifest's Docker-Content-Digest, or None when the registry does not know it."""
    path = f"/v2/{repo}/manifests/{ref}"
    response = request(server, "HEAD", path, headers={"Accept": ACCEPT_MANIFESTS})
    if response.status == 404:
        return None
    _expect(response, "HEAD", path, 200)
    return response.header("Docker-Content-Digest")


def put_manifest(server: RegistryServer, repo: str, ref: str, data: bytes, media_type: str) -> str:
    """PUT a manifest under a tag or digest; returns the registry's Docker-Content-Digest."""
    path = f"/v2/{repo}/manifests/{ref}"
    response = request(server, "PUT", path, body=data, headers={"Content-Type": media_type})
    _expect(response, "PUT", path, 201)
    return response.header("Docker-Content-Digest") or ""


def delete_manifest(server: RegistryServer, repo: str, digest: str) -> None:
    path = f"/v2/{repo}/manifests/{digest}"
    _expect(request(server, "DELETE", path), "DELETE", path, 202)


def delete_blob(server: RegistryServer, repo: str, digest: str) -> None:
    """Unlink a blob from the repository (deletes enabled): its GET then answers 404."""
    path = f"/v2/{repo}/blobs/{digest}"
    _expect(request(server, "DELETE", path), "DELETE", path, 202)


def blob_exists(server: RegistryServer, repo: str, digest: str) -> bool:
    path = f"/v2/{repo}/blobs/{digest}"
    response = request(server, "HEAD", path)
    return _expect(response, "HEAD", path, 200, 404).status == 200


def push_blob(server: RegistryServer, repo: str, data: bytes) -> str:
    """Upload a blob the portable way: POST an upload session, then PUT it with ?digest=."""
    digest = sha256_digest(data)
    start = f"/v2/{repo}/blobs/uploads/"
    opened = _expect(request(server, "POST", start, body=b""), "POST", start, 202)
    location = opened.header("Location")
    if not location:
        raise RegistryHTTPError("POST", start, opened.status, b"no Location header")
    separator = "&" if "?" in location else "?"
    finish = f"{location}{separator}{urlencode({'digest': digest})}"
    headers = {"Content-Type": "application/octet-stream"}
    done = request(server, "PUT", _relative(server, finish), body=data, headers=headers)
    _expect(done, "PUT", finish, 201)
    return digest


def _relative(server: RegistryServer, location: str) -> str:
    # distribution answers an absolute URL built from the Host header: keep path and query,
    # so the request goes to the server (and through its auth cache) like any other.
    parts = urlsplit(urljoin(server.url + "/", location))
    return parts.path + (f"?{parts.query}" if parts.query else "")


def get_blob(server: RegistryServer, repo: str, digest: str) -> bytes:
    path = f"/v2/{repo}/blobs/{digest}"
    return _expect(request(server, "GET", path), "GET", path, 200).body


def list_tags(server: RegistryServer, repo: str) -> list[str]:
    """The repository's tags, sorted; [] for a repository the registry does not know."""
    path = f"/v2/{repo}/tags/list"
    response = request(server, "GET", path)
    if response.status == 404:
        return []
    _expect(response, "GET", path, 200)
    return sorted(json.loads(response.body).get("tags") or [])
