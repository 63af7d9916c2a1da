"""An asyncio client for the OCI distribution API. It knows nothing of signatures.

One RegistryClient (one aiohttp session, one keep-alive connection pool) serves a whole run of
thousands of images: per registry it remembers the scheme that works and the auth challenge
(learned once from `GET /v2/`), and per (registry, repository, actions) a bearer token, so that
the steady state is one HTTP exchange per API call. Client CPU matters on a small box shared
with the registry: bodies are read once, URLs are built as already-encoded strings, SSL contexts
and Authorization headers are made once and reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from urllib.parse import quote, urljoin

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from hangar import __version__, output
from hangar.manifest import (
    ACCEPT,
    IMAGE_TYPES,
    INDEX_TYPES,
    SCHEMA1_TYPES,
    UnsupportedManifestError,
    detect_media_type,
    sha256_digest,
)
from hangar.reference import Reference, api_host
from hangar.registry import credentials as credentials_module
from hangar.registry import proxy as proxy_module
from hangar.registry import tags as tag_pages
from hangar.registry import tls
from hangar.registry.auth import (
    PULL,
    PULL_PUSH,
    PULL_PUSH_DELETE,
    BearerToken,
    Challenge,
    TokenCache,
    TokenResponseError,
    basic_authorization,
    parse_token_response,
    parse_www_authenticate,
    pick_challenge,
    repository_scope,
    token_request,
)
from hangar.registry.errors import (
    CERTS_HINT,
    LOGIN_HINT,
    PLAIN_HTTP_HINT,
    AuthenticationError,
    AuthorizationError,
    DeletesRefusedError,
    DigestMismatchError,
    Failure,
    RegistryError,
    RegistryTimeoutError,
    ServerError,
    StaleRequestError,
    TLSError,
    TooLargeError,
    UnreachableError,
    status_error,
)
from hangar.registry.retry import (
    RetryPolicy,
    base_delay_from_env,
    parse_retry_after,
    retryable_status,
)

__all__ = ["Manifest", "RegistryClient"]

DEFAULT_MAX_MANIFEST_SIZE = 4 * 1024 * 1024
ERROR_BODY_LIMIT = 64 * 1024
TOKEN_BODY_LIMIT = 1024 * 1024  # containers/image: iolimits.MaxAuthTokenBodySize
MAX_REDIRECTS = 5
REQUEST_COUNTS_ENV = "HANGAR_REQUEST_COUNTS"
# A failed first contact with a registry is remembered this long, so that a thousand jobs
# waiting on it fail at once instead of each trying again.
PING_FAILURE_TTL = 30.0
_KNOWN_MANIFEST_TYPES = frozenset(INDEX_TYPES + IMAGE_TYPES + SCHEMA1_TYPES)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# OpenSSL's words for "the other side does not speak TLS".
_PLAIN_HTTP_SIGNS = (
    "WRONG_VERSION_NUMBER",
    "wrong version number",
    "record layer failure",
    "packet length too long",
    "http request",
    "unknown protocol",
)


@dataclass(frozen=True)
class Manifest:
    data: bytes  # exactly as received: its sha256 is the digest
    media_type: str
    digest: str


@dataclass
class _Endpoint:
    """What the client learned about one registry host."""

    registry: str  # as in references: "docker.io", "127.0.0.1:5000"
    host: str  # where the API is served: "registry-1.docker.io"
    base: str  # "https://host[:port]"
    origin: tuple[str, str, int | None]  # Authorization goes to this origin only
    ssl: ssl.SSLContext | bool
    challenge: Challenge | None  # None: anonymous access worked so far


@dataclass(frozen=True)
class _Creds:
    username: str
    password: str
    identity_token: str | None
    basic: str  # the Basic header, built once


@dataclass(frozen=True)
class _Call:
    """One registry API call, as the retry and auth logic need it."""

    registry: str
    repository: str | None
    actions: str  # PULL or PULL_PUSH: the token scope this call needs
    method: str
    path: str  # "/v2/..." on the registry, or an absolute URL (upload Location)
    what: str  # for messages: "image 127.0.0.1:5000/ns/app:v1", "blob sha256:... in ..."
    headers: Mapping[str, str] | None = None
    data: bytes | None = None
    limit: int | None = None  # read at most this much of a 2xx body (None: all of it)
    follow_redirects: bool = False
    retries: int | None = None  # None: the client's policy
    # time.monotonic() after which the request must not be sent (nor resent): its caller's
    # precondition (a tag checked a moment ago) is too old by then.
    deadline: float | None = None


@dataclass(slots=True)
class _Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    url: URL
    authorization: str | None = None  # what was sent, to drop a refused token
    attempts: int = 1


class _BodyTooLarge(Exception):
    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


class RegistryClient:
    """Async context manager; one per run, shared by all jobs."""

    def __init__(
        self,
        *,
        tls_verify: bool = True,
        authfile: str | None = None,
        max_connections: int = 32,
        request_timeout: float = 60.0,
        retries: int = 5,
        retry_base_delay: float | None = None,
    ) -> None:
        self.tls_verify = tls_verify
        self.authfile = authfile
        self.max_connections = max(1, max_connections)
        self.request_timeout = request_timeout
        if retry_base_delay is None:  # $HANGAR_RETRY_BASE_DELAY, else 0.5 s
            retry_base_delay = base_delay_from_env()
        self._policy = RetryPolicy(retries=max(0, retries), base_delay=retry_base_delay)
        self._session: aiohttp.ClientSession | None = None
        self._endpoints: dict[str, _Endpoint] = {}
        self._ping_locks: dict[str, asyncio.Lock] = {}
        self._ping_failures: dict[str, tuple[RegistryError, float]] = {}
        self._ssl_contexts: dict[tuple[str, bool], ssl.SSLContext] = {}
        self._credentials_cache: dict[tuple[str, str | None], _Creds | None] = {}
        self._logins: dict[str, _Creds] = {}
        self._tokens = TokenCache()
        # HTTPS_PROXY/HTTP_PROXY/NO_PROXY as podman reads them (see registry/proxy.py).
        self._proxies = proxy_module.ProxySettings.from_environ()
        # HTTP exchanges sent, per "METHOD kind" (kind: manifest, blob, upload, ping, token):
        # retries and redirect hops each count, as they cost a round trip.
        self.request_counts: Counter[str] = Counter()
        self.first_request: float | None = None  # time.monotonic() (start-up, in the benchmark)

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> RegistryClient:
        self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        self._tokens.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def report_requests(self) -> None:
        """The requests this client sent, per kind: a debug line, and a JSON file at
        $HANGAR_REQUEST_COUNTS when set (the benchmark reads it)."""
        counts = dict(sorted(self.request_counts.items()))
        output.debug("requests sent: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        path = os.environ.get(REQUEST_COUNTS_ENV)
        if path:
            with open(path, "w", encoding="utf-8") as sink:
                json.dump({"counts": counts, "first_request": self.first_request}, sink)

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=self.max_connections,
                ttl_dns_cache=300,
                keepalive_timeout=30,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=self.request_timeout, sock_connect=min(self.request_timeout, 30.0)
                ),
                headers={"User-Agent": f"hangar/{__version__}"},
                # Proxies and ~/.netrc are not read: netrc credentials must not leak to
                # hosts a registry redirects to.
                trust_env=False,
            )
        return self._session

    # -- manifests ---------------------------------------------------------------------

    async def get_manifest(
        self, ref: Reference, *, max_size: int = DEFAULT_MAX_MANIFEST_SIZE
    ) -> Manifest:
        call = _Call(
            ref.registry,
            ref.repository,
            PULL,
            "GET",
            f"/v2/{ref.repository}/manifests/{ref.api_reference}",
            f"image {ref}",
            headers={"Accept": ACCEPT},
            limit=max_size,
            follow_redirects=True,
        )
        response = await self._request_limited(call, max_size, f"the manifest of {ref}")
        if response.status != 200:
            raise self._error(response, call)
        data = response.body
        digest = self._check_manifest_digest(ref, data, response)
        media_type = _media_type(data, response.headers.get("Content-Type"))
        if media_type in SCHEMA1_TYPES:
            raise UnsupportedManifestError(
                f"{ref} is a Docker schema1 manifest ({media_type}), which is not supported; "
                "re-push the image with a current client",
                hint="for example: skopeo copy --format v2s2 docker://IMAGE docker://IMAGE",
            )
        return Manifest(data, media_type, digest)

    async def head_manifest(self, ref: Reference) -> tuple[str, str] | None:
        """(digest, media type), or None when the registry does not know the reference."""
        call = _Call(
            ref.registry,
            ref.repository,
            PULL,
            "HEAD",
            f"/v2/{ref.repository}/manifests/{ref.api_reference}",
            f"image {ref}",
            headers={"Accept": ACCEPT},
            follow_redirects=True,
        )
        response = await self._request(call)
        if response.status == 404:
            return None
        if response.status != 200:
            raise self._error(response, call)
        digest = response.headers.get("Docker-Content-Digest")
        content_type = _base_type(response.headers.get("Content-Type"))
        if digest and content_type in _KNOWN_MANIFEST_TYPES:
            return digest, content_type
        # A registry that leaves the headers out of HEAD: the bytes tell.
        manifest = await self.get_manifest(ref)
        return manifest.digest, manifest.media_type

    async def put_manifest(
        self, ref: Reference, data: bytes, media_type: str, *, deadline: float | None = None
    ) -> str:
        """PUT under the reference's tag (or digest); returns the digest of `data`.

        `deadline` (time.monotonic()): no attempt is sent after it. Past it before the first
        attempt: StaleRequestError; a retry that would start past it is not made, and the
        failure of the last attempt is raised. A read-modify-write uses it so that its write
        never leaves long after its check.
        """
        digest = sha256_digest(data)
        if ref.digest and ref.digest != digest:
            raise DigestMismatchError(
                f"cannot put a manifest under {ref}: its bytes hash to {digest}",
                registry=ref.registry,
            )
        call = _Call(
            ref.registry,
            ref.repository,
            PULL_PUSH,
            "PUT",
            f"/v2/{ref.repository}/manifests/{ref.api_reference}",
            f"image {ref}",
            headers={"Content-Type": media_type},
            data=data,
            deadline=deadline,
        )
        # Safe to retry: a PUT of the same bytes under the same name is idempotent.
        response = await self._request(call)
        if response.status not in (200, 201, 202):
            raise self._error(response, call)
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != digest:
            output.debug(f"registry {ref.registry} answered digest {answered} for {digest}")
        return digest

    async def delete_manifest(
        self, ref: Reference, digest: str, *, deadline: float | None = None
    ) -> None:
        """DELETE the manifest `digest` of `ref`'s repository (and with it every tag naming it;
        a tag that moved on to another manifest stays). `deadline` as for put_manifest.
        NotFoundError when it is gone already; DeletesRefusedError where deletes are off."""
        call = _Call(
            ref.registry,
            ref.repository,
            PULL_PUSH_DELETE,
            "DELETE",
            f"/v2/{ref.repository}/manifests/{digest}",
            f"image {ref}",
            deadline=deadline,
        )
        response = await self._request(call)
        if response.status in (200, 202, 204):
            return
        error = self._error(response, call)
        if response.status == 405 or error.code == "UNSUPPORTED":
            raise DeletesRefusedError(
                f"registry {ref.registry} refuses to delete manifests (HTTP "
                f"{response.status} {error.code or ''}".rstrip()
                + "): the signature tag keeps the signatures to remove",
                hint="enable deletes on the registry, for distribution storage.delete.enabled: "
                "true in its config, then run the same command again",
                registry=ref.registry,
                status=response.status,
                code=error.code,
            )
        raise error

    # -- blobs -------------------------------------------------------------------------

    async def blob_exists(self, registry: str, repository: str, digest: str) -> bool:
        call = _blob_call(registry, repository, digest, "HEAD")
        response = await self._request(call)
        if response.status == 200:
            return True
        if response.status == 404:
            return False
        raise self._error(response, call)

    async def get_blob(
        self, registry: str, repository: str, digest: str, *, max_size: int
    ) -> bytes:
        call = _blob_call(registry, repository, digest, "GET", limit=max_size)
        response = await self._request_limited(call, max_size, call.what)
        if response.status != 200:
            raise self._error(response, call)
        actual = _digest_like(digest, response.body)
        if actual != digest:
            raise DigestMismatchError(
                f"{call.what} is corrupt: the registry sent bytes that hash to {actual}",
                registry=registry,
                hint="retry; if it persists, the registry's storage is damaged",
            )
        return response.body

    async def push_blob(
        self, registry: str, repository: str, data: bytes, *, check_exists: bool = True
    ) -> str:
        """Upload unless the registry has it already; returns the blob's digest.

        `check_exists=False` skips the HEAD for content that is new by construction (a fresh
        signature payload): on a two-core box every saved round trip is throughput.
        """
        digest = sha256_digest(data)
        if check_exists and await self.blob_exists(registry, repository, digest):
            return digest
        attempt = 0
        while True:
            try:
                await self._upload(registry, repository, digest, data)
                return digest
            except (UnreachableError, RegistryTimeoutError, ServerError, _UploadLost) as exc:
                # The upload session may be gone with the failed request: start a new one.
                attempt += 1
                if attempt > self._policy.retries:
                    if isinstance(exc, _UploadLost):
                        raise exc.error from None
                    raise
                output.debug(f"blob upload to {registry}/{repository} restarts: {exc}")
                await asyncio.sleep(self._policy.delay(attempt))

    async def _upload(self, registry: str, repository: str, digest: str, data: bytes) -> None:
        what = f"blob {digest} in {registry}/{repository}"
        start = _Call(
            registry, repository, PULL_PUSH, "POST", f"/v2/{repository}/blobs/uploads/", what,
        )  # fmt: skip
        opened = await self._request(start)
        location = opened.headers.get("Location")
        if opened.status != 202 or not location:
            raise self._error(opened, start, push=True)
        endpoint = await self._endpoint(registry)
        finish = _Call(
            registry,
            repository,
            PULL_PUSH,
            "PUT",
            _upload_url(endpoint.base, location, digest),
            what,
            headers={"Content-Type": "application/octet-stream"},
            data=data,
            retries=0,
        )
        done = await self._request(finish)
        if done.status == 404:  # the session expired or was lost: a new one will do
            raise _UploadLost(self._error(done, finish, push=True))
        if done.status not in (201, 204):
            raise self._error(done, finish, push=True)

    # -- tags --------------------------------------------------------------------------

    async def list_tags(
        self, registry: str, repository: str, *, page_size: int | None = None
    ) -> list[str]:
        """Every tag of the repository, following distribution's `Link: <...>; rel="next"`
        pages. A next page on another origin is refused: Authorization stays with the
        registry."""
        endpoint = await self._endpoint(registry)
        query = f"?n={page_size}" if page_size else ""
        url: URL | None = URL(f"{endpoint.base}/v2/{repository}/tags/list{query}", encoded=True)
        what = f"the tag list of {registry}/{repository}"
        tags: list[str] = []
        seen: set[str] = set()
        while url is not None:
            if str(url) in seen or len(seen) >= tag_pages.MAX_PAGES:
                raise RegistryError(
                    f"registry {registry} pages {what} in a loop", registry=registry
                )
            seen.add(str(url))
            call = _Call(
                registry, repository, PULL, "GET", str(url), f"repository {registry}/{repository}",
                follow_redirects=True,
            )  # fmt: skip
            response = await self._request_limited(call, tag_pages.MAX_PAGE_BYTES, what)
            if response.status != 200:
                raise self._error(response, call)
            page = tag_pages.parse_tags(response.body)
            if page is None:
                raise RegistryError(
                    f"registry {registry} sent {what} in a form that is not a tag list",
                    registry=registry,
                )
            tags.extend(page)
            url = tag_pages.next_page(response.headers.getall("Link", []), url)
            if url is not None and _origin(url) != endpoint.origin:
                raise RegistryError(
                    f"registry {registry} links the next page of {what} to another host "
                    f"({_host_port(url)}); hangar does not follow it",
                    registry=registry,
                )
        return tags

    # -- credentials -------------------------------------------------------------------

    async def check_credentials(self, registry: str, username: str, password: str) -> None:
        """Log in: prove the credentials against `GET /v2/` (Basic, or the token flow).

        Raises AuthenticationError when the registry refuses them. On success this client uses
        them for `registry` from then on. A registry that asks for no credentials at all
        accepts any, as with podman.
        """
        endpoint = await self._endpoint(registry)
        creds = _make_creds(username, password, None)
        challenge = endpoint.challenge
        what = f"login to registry {registry}"
        if challenge is not None and challenge.scheme in ("basic", "bearer"):
            if challenge.scheme == "bearer":
                token = await self._fetch_token(endpoint, challenge, None, PULL, creds, login=True)
                authorization = token.authorization
            else:
                authorization = creds.basic
            call = _Call(registry, None, PULL, "GET", "/v2/", what)
            response = await self._with_retries(
                lambda: self._send(endpoint, call, authorization), endpoint.host, call
            )
            if response.status == 401:
                raise _login_refused(registry, username, 401)
            if response.status != 200:
                raise self._error(response, call)
        self._logins[registry] = creds
        self._credentials_cache = {
            key: value for key, value in self._credentials_cache.items() if key[0] != registry
        }
        # Tokens issued before (anonymously, or to other credentials) must not be used again.
        self._tokens.drop_where(lambda key: isinstance(key, tuple) and key[0] == registry)

    async def requires_credentials(self, registry: str, repository: str) -> bool:
        """True when a push to `repository` would be refused without credentials and none are
        stored. Probes by opening an upload session (and cancelling it) anonymously."""
        if await self._credentials(registry, repository) is not None:
            return False
        call = _Call(
            registry, repository, PULL_PUSH, "POST", f"/v2/{repository}/blobs/uploads/",
            f"repository {registry}/{repository}",
        )  # fmt: skip
        try:
            response = await self._request(call)
        except (AuthenticationError, AuthorizationError):
            return True
        if response.status in (401, 403):
            return True
        location = response.headers.get("Location")
        if response.status == 202 and location:
            await self._cancel_upload(call, location)
        return False

    requires_auth = requires_credentials  # the name docs/architecture.md uses

    async def _cancel_upload(self, call: _Call, location: str) -> None:
        endpoint = await self._endpoint(call.registry)
        cancel = _Call(
            call.registry, call.repository, PULL_PUSH, "DELETE",
            _upload_url(endpoint.base, location, None), call.what, retries=0,
        )  # fmt: skip
        try:
            await self._request(cancel)
        except RegistryError as exc:  # an orphaned session is harmless: the registry purges it
            output.debug(f"cancelling a probe upload on {call.registry} failed: {exc}")

    # -- the request pipeline ----------------------------------------------------------

    async def _request_limited(self, call: _Call, max_size: int, what: str) -> _Response:
        try:
            return await self._request(call)
        except _BodyTooLarge as exc:
            size = f"{exc.size} bytes" if exc.size is not None else f"more than {max_size} bytes"
            raise TooLargeError(
                f"{what} is too large ({size}); hangar reads at most {max_size} bytes",
                registry=call.registry,
            ) from None

    async def _request(self, call: _Call) -> _Response:
        """Send with auth and retries. Statuses are left to the caller, except 401 loops."""
        endpoint = await self._endpoint(call.registry)

        async def once() -> _Response:
            authorization = await self._authorization(endpoint, call)
            return await self._send(endpoint, call, authorization)

        response = await self._with_retries(once, endpoint.host, call)
        if response.status == 401 and await self._renew_auth(endpoint, call, response):
            response = await self._with_retries(once, endpoint.host, call)
        return response

    async def _with_retries(
        self,
        send: Callable[[], Awaitable[_Response]],
        host: str,
        call: _Call,
        *,
        first_contact: bool = False,
    ) -> _Response:
        retries = self._policy.retries if call.retries is None else call.retries
        attempt = 0
        while True:
            try:
                response = await send()
            except (aiohttp.ClientError, TimeoutError) as exc:
                delay = self._policy.delay(attempt + 1)
                if (
                    attempt >= retries
                    or not _transient(exc, first_contact)
                    or _after_deadline(call, delay)
                ):
                    raise self._connection_error(exc, host, call) from exc
                attempt += 1
                output.debug(f"{call.method} {host}: {_describe(exc)}; retry in {delay:.2f}s")
                await asyncio.sleep(delay)
                continue
            if attempt < retries and retryable_status(response.status):
                wait = parse_retry_after(response.headers.get("Retry-After"))
                delay = self._policy.delay(attempt + 1, wait)
                if not _after_deadline(call, delay):
                    attempt += 1
                    output.debug(f"{call.method} {host}: {response.status}; retry in {delay:.2f}s")
                    await asyncio.sleep(delay)
                    continue
            response.attempts = attempt + 1
            return response

    async def _send(self, endpoint: _Endpoint, call: _Call, authorization: str | None) -> _Response:
        """One exchange, following redirects by hand so Authorization never leaves the
        registry's origin (distribution redirects blob reads to storage such as S3)."""
        session = self._session or self._open()
        if call.deadline is not None and time.monotonic() > call.deadline:
            # Checked here, after auth and backoff and just before the bytes leave.
            raise StaleRequestError(
                f"{call.method} {call.what} was not sent: its precondition is too old",
                registry=call.registry,
            )
        if call.path.startswith("/"):
            url = URL(endpoint.base + call.path, encoded=True)
        else:
            url = URL(call.path, encoded=True)
        method = call.method
        for _hop in range(MAX_REDIRECTS + 1):
            headers = dict(call.headers) if call.headers else {}
            same_origin = _origin(url) == endpoint.origin
            if authorization and same_origin:
                headers["Authorization"] = authorization
            started = time.perf_counter()
            proxy = self._proxies.for_url(url)
            self.request_counts[f"{method} {_kind(url.path)}"] += 1
            if self.first_request is None:
                self.first_request = time.monotonic()
            async with session.request(
                method,
                url,
                headers=headers,
                data=call.data if method == call.method else None,
                ssl=endpoint.ssl if same_origin else self._ssl_for_url(url, endpoint),
                allow_redirects=False,
                proxy=proxy.url if proxy else None,
                proxy_headers=proxy.headers if proxy else None,
            ) as response:
                location = response.headers.get("Location")
                if call.follow_redirects and response.status in _REDIRECTS and location:
                    await _drain(response)
                    _log(method, url, response.status, started)
                    url = url.join(URL(location, encoded=True))
                    if response.status == 303:
                        method = "GET"
                    continue
                body = await _read_body(response, method, call.limit)
                _log(method, url, response.status, started)
                return _Response(response.status, response.headers, body, url, authorization)
        raise RegistryError(
            f"registry {call.registry} redirected {call.what} more than {MAX_REDIRECTS} times",
            registry=call.registry,
        )

    # -- endpoints: scheme and challenge per registry ----------------------------------

    async def _endpoint(self, registry: str) -> _Endpoint:
        endpoint = self._endpoints.get(registry)
        if endpoint is not None:
            return endpoint
        lock = self._ping_locks.setdefault(registry, asyncio.Lock())
        async with lock:
            endpoint = self._endpoints.get(registry)
            if endpoint is not None:
                return endpoint
            failure = self._ping_failures.get(registry)
            if failure is not None and time.monotonic() - failure[1] < PING_FAILURE_TTL:
                raise failure[0]
            try:
                endpoint = await self._ping(registry)
            except RegistryError as exc:
                self._ping_failures[registry] = (exc, time.monotonic())
                raise
            self._ping_failures.pop(registry, None)
            self._endpoints[registry] = endpoint
            return endpoint

    async def _ping(self, registry: str) -> _Endpoint:
        """`GET /v2/` once per registry: which scheme works, and which challenge it sends.

        With verification on, HTTPS only. With it off, HTTPS without verification and then
        plain HTTP when HTTPS fails, as containers/image does for insecure registries.
        """
        host = api_host(registry)
        call = _Call(registry, None, PULL, "GET", "/v2/", f"registry {registry}")
        schemes = ("https",) if self.tls_verify else ("https", "http")
        for scheme in schemes:
            endpoint = self._make_endpoint(registry, host, scheme)
            fallback = scheme == "https" and not self.tls_verify
            attempt = replace(call, retries=0) if fallback else call
            try:
                response = await self._with_retries(
                    functools.partial(self._send, endpoint, attempt, None),
                    host,
                    attempt,
                    first_contact=True,
                )
            except (UnreachableError, TLSError, RegistryTimeoutError) as exc:
                if fallback:
                    output.debug(f"registry {registry}: HTTPS failed ({exc}); trying HTTP")
                    continue
                raise
            if response.status >= 500:
                raise self._error(response, call)
            if response.status == 401:
                endpoint.challenge = pick_challenge(
                    parse_www_authenticate(response.headers.getall("WWW-Authenticate", []))
                )
            return endpoint
        raise AssertionError("unreachable: the last scheme raises or returns")

    def _make_endpoint(self, registry: str, host: str, scheme: str) -> _Endpoint:
        base = f"{scheme}://{host}"
        url = URL(base)
        context: ssl.SSLContext | bool = True
        if scheme == "https":
            # certs.d is looked up by the name users write (docker.io), as c/image does.
            context = self._ssl_context(registry)
        return _Endpoint(registry, host, base, _origin(url), context, None)

    def _ssl_context(self, host: str) -> ssl.SSLContext:
        key = (host, self.tls_verify)
        context = self._ssl_contexts.get(key)
        if context is None:
            context = tls.ssl_context(host, self.tls_verify)
            self._ssl_contexts[key] = context
        return context

    def _ssl_for_url(self, url: URL, endpoint: _Endpoint) -> ssl.SSLContext | bool:
        if url.scheme != "https":
            return True  # ignored by aiohttp for plain HTTP
        if _origin(url) == endpoint.origin:
            return endpoint.ssl
        return self._ssl_context(_host_port(url))

    # -- authentication ----------------------------------------------------------------

    async def _credentials(self, registry: str, repository: str | None) -> _Creds | None:
        login = self._logins.get(registry)
        if login is not None:
            return login
        key = (registry, repository)
        if key in self._credentials_cache:
            return self._credentials_cache[key]
        # A credential helper may run a program: keep the event loop free meanwhile.
        found = await asyncio.to_thread(
            credentials_module.lookup_credentials,
            registry,
            repository or "",
            authfile=self.authfile,
        )
        creds = None
        if found is not None:
            creds = _make_creds(
                getattr(found, "username", "") or "",
                getattr(found, "password", "") or "",
                getattr(found, "identity_token", None),
            )
        self._credentials_cache[key] = creds
        return creds

    async def _authorization(self, endpoint: _Endpoint, call: _Call) -> str | None:
        challenge = endpoint.challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = await self._credentials(call.registry, call.repository)
            return creds.basic if creds is not None and creds.password else None
        if challenge.scheme != "bearer":
            return None  # a scheme hangar does not speak: try anonymously
        repository = call.repository
        if call.actions == PULL:  # a push token for the repository serves reads too
            pushing = self._tokens.peek((call.registry, repository, PULL_PUSH))
            if pushing is not None:
                return pushing.authorization
        key = (call.registry, repository, call.actions)
        token = await self._tokens.get(
            key, lambda: self._fetch_token(endpoint, challenge, repository, call.actions)
        )
        return token.authorization

    async def _renew_auth(self, endpoint: _Endpoint, call: _Call, response: _Response) -> bool:
        """After a 401: learn or update the challenge, drop a refused token. True when a
        second attempt can send something different."""
        offered = pick_challenge(
            parse_www_authenticate(response.headers.getall("WWW-Authenticate", []))
        )
        known = endpoint.challenge
        changed = known is None or (
            offered is not None and _challenge_key(offered) != _challenge_key(known)
        )
        if offered is not None and changed:
            endpoint.challenge = Challenge(offered.scheme, dict(offered.params))
            self._drop_tokens(call.registry, call.repository, None)
            return True
        if known is None:
            return False
        if known.scheme == "bearer":
            if response.authorization is None:
                return True
            self._drop_tokens(call.registry, call.repository, response.authorization)
            return True
        if known.scheme == "basic" and response.authorization is None:
            return await self._credentials(call.registry, call.repository) is not None
        return False

    def _drop_tokens(
        self, registry: str, repository: str | None, authorization: str | None
    ) -> None:
        for actions in (PULL, PULL_PUSH, PULL_PUSH_DELETE):
            key = (registry, repository, actions)
            if authorization is None:
                token = self._tokens.peek(key)
                if token is not None:
                    self._tokens.invalidate(key, token.authorization)
            else:
                self._tokens.invalidate(key, authorization)

    async def _fetch_token(
        self,
        endpoint: _Endpoint,
        challenge: Challenge,
        repository: str | None,
        actions: str,
        creds: _Creds | None = None,
        *,
        login: bool = False,
    ) -> BearerToken:
        """Ask the challenge's realm for a token. Only this registry's own credentials go
        there (the realm is where they belong); never a token of another scope."""
        registry = endpoint.registry
        if creds is None:
            creds = await self._credentials(registry, repository)
        scopes = [repository_scope(repository, actions)] if repository else []
        try:
            spec = token_request(
                challenge,
                scopes,
                username=creds.username if creds else None,
                password=creds.password if creds else None,
                identity_token=creds.identity_token if creds else None,
            )
        except ValueError:
            raise RegistryError(
                f"registry {registry} asks for a bearer token but names no token endpoint",
                registry=registry,
            ) from None
        url = URL(spec.url, encoded=True)
        if url.scheme not in ("http", "https") or not url.host:
            raise RegistryError(
                f"registry {registry} names an invalid token endpoint", registry=registry
            )
        realm = _Endpoint(
            registry, _host_port(url), "", _origin(url), self._ssl_for_url(url, endpoint), None
        )
        # The Basic header goes through _send's origin check like any Authorization.
        basic = spec.headers.get("Authorization")
        headers = {k: v for k, v in spec.headers.items() if k != "Authorization"}
        call = _Call(
            registry,
            repository,
            actions,
            spec.method,
            spec.url,
            f"a token for {registry}/{repository}" if repository else f"a token for {registry}",
            headers=headers or None,
            data=spec.data.encode() if spec.data else None,
            limit=TOKEN_BODY_LIMIT,
        )
        try:
            response = await self._with_retries(
                lambda: self._send(realm, call, basic), realm.host, call
            )
        except _BodyTooLarge:
            raise RegistryError(
                f"the token endpoint of {registry} sent an oversized answer", registry=registry
            ) from None
        if response.status in (401, 403):
            raise self._token_refused(registry, repository, creds, response, login=login)
        if response.status != 200:
            raise self._error(response, call)
        try:
            return parse_token_response(response.body)
        except TokenResponseError as exc:
            raise RegistryError(
                f"registry {registry}: {exc}", registry=registry, status=response.status
            ) from None

    def _token_refused(
        self,
        registry: str,
        repository: str | None,
        creds: _Creds | None,
        response: _Response,
        *,
        login: bool,
    ) -> AuthenticationError:
        target = f"{registry}/{repository}" if repository else f"registry {registry}"
        if login and creds is not None:
            return _login_refused(registry, creds.username, response.status)
        if creds is None:
            return AuthenticationError(
                f"{target} requires authentication and no credentials are stored for {registry}",
                registry=registry,
                status=response.status,
                hint=LOGIN_HINT.format(registry=registry),
            )
        return AuthenticationError(
            f"registry {registry} refused the credentials stored for it "
            f"(user {creds.username or '(identity token)'})",
            registry=registry,
            status=response.status,
            hint=f"log in again with: hangar login {registry}",
        )

    # -- errors --------------------------------------------------------------------------

    def _check_manifest_digest(self, ref: Reference, data: bytes, response: _Response) -> str:
        """The digest of the bytes received; by-digest reads must match what was asked."""
        header = response.headers.get("Docker-Content-Digest")
        if ref.digest:
            actual = _digest_like(ref.digest, data)
            if actual != ref.digest:
                raise DigestMismatchError(
                    f"the manifest of {ref} hashes to {actual}: the registry sent other bytes",
                    registry=ref.registry,
                    hint="retry; if it persists, the registry or a proxy alters manifests",
                )
            same_algorithm = header and header.split(":", 1)[0] == ref.digest.split(":", 1)[0]
            if same_algorithm and header != ref.digest:
                raise DigestMismatchError(
                    f"registry {ref.registry} reports digest {header} for {ref}",
                    registry=ref.registry,
                )
            return ref.digest if ref.digest.startswith("sha256:") else sha256_digest(data)
        digest = sha256_digest(data)
        if header and header.startswith("sha256:") and header != digest:
            output.debug(f"{ref}: Docker-Content-Digest {header} differs from the bytes' {digest}")
        return digest

    def _error(self, response: _Response, call: _Call, *, push: bool = False) -> RegistryError:
        """The error for a status the caller did not expect."""
        failure = Failure(
            registry=call.registry,
            repository=call.repository,
            what=call.what,
            method=call.method,
            pushing=push or call.actions == PULL_PUSH,
        )
        insufficient_scope = False
        if response.status == 401:
            offered = pick_challenge(
                parse_www_authenticate(response.headers.getall("WWW-Authenticate", []))
            )
            insufficient_scope = offered is not None and (
                offered.params.get("error") == "insufficient_scope"
            )
        known = self._logins.get(call.registry) or self._credentials_cache.get(
            (call.registry, call.repository)
        )
        return status_error(
            failure,
            response.status,
            response.body,
            attempts=response.attempts,
            has_credentials=known is not None,
            insufficient_scope=insufficient_scope,
        )

    def _connection_error(self, exc: BaseException, host: str, call: _Call) -> RegistryError:
        registry = call.registry
        # certs.d is named after the registry as users write it, for the registry itself.
        certs_name = registry if host == api_host(registry) else host
        if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
            return _proxy_error(exc, host, registry)
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            reason = getattr(exc.certificate_error, "verify_message", None) or str(
                exc.certificate_error
            )
            return TLSError(
                f"TLS certificate of {host} is not trusted: {reason}",
                registry=registry,
                hint=CERTS_HINT.format(registry=certs_name),
            )
        if isinstance(exc, aiohttp.ClientSSLError):
            text = str(exc)
            if any(sign in text for sign in _PLAIN_HTTP_SIGNS):
                return TLSError(
                    f"registry {host} does not speak HTTPS",
                    registry=registry,
                    hint=PLAIN_HTTP_HINT,
                )
            return TLSError(
                f"TLS handshake with {host} failed: {_describe(exc)}",
                registry=registry,
                hint=CERTS_HINT.format(registry=certs_name),
            )
        if isinstance(exc, TimeoutError):
            return RegistryTimeoutError(
                f"registry {host} did not answer {call.method} {call.what} within "
                f"{self.request_timeout:g}s",
                registry=registry,
                hint="the registry or the network is slow; try again later",
            )
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return UnreachableError(
                f"cannot reach registry {host}: the name does not resolve ({_describe(exc)})",
                registry=registry,
                hint="check the registry name and your DNS settings",
            )
        if isinstance(exc, aiohttp.ClientConnectorError):
            return UnreachableError(
                f"cannot reach registry {host}: {_describe(exc)}",
                registry=registry,
                hint="check the address and port, and that the registry is running",
            )
        if isinstance(exc, aiohttp.InvalidURL):
            return RegistryError(
                f"registry {registry} sent an invalid URL during {call.what}", registry=registry
            )
        return UnreachableError(
            f"cannot reach registry {host}: the connection failed during {call.method} "
            f"{call.what} ({_describe(exc)})",
            registry=registry,
            hint="check the network and that the registry is running",
        )


def _proxy_error(exc: aiohttp.ClientError, host: str, registry: str) -> UnreachableError:
    """The proxy (never its credentials) named, and the variables that chose it."""
    hint = "check HTTPS_PROXY/HTTP_PROXY, or list the registry in NO_PROXY"
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return UnreachableError(
            f"the proxy refused the connection to registry {host}: {exc.status} {exc.message}",
            registry=registry,
            hint="check the proxy's user and password in HTTPS_PROXY/HTTP_PROXY, and that it "
            f"allows {host}",
        )
    where = f"{exc.host}:{exc.port}" if isinstance(exc, aiohttp.ClientConnectorError) else "?"
    return UnreachableError(
        f"cannot reach proxy {where} for registry {host}: {_describe(exc)}",
        registry=registry,
        hint=hint,
    )


def _login_refused(registry: str, username: str, status: int) -> AuthenticationError:
    return AuthenticationError(
        f"registry {registry} refused the username or password of {username}",
        registry=registry,
        status=status,
        hint="check them and try again",
    )


class _UploadLost(Exception):
    """The upload session disappeared (404 on PUT): the upload starts again."""

    def __init__(self, error: RegistryError) -> None:
        super().__init__(str(error))
        self.error = error


# -- small pure helpers ----------------------------------------------------------------


def _blob_call(
    registry: str, repository: str, digest: str, method: str, *, limit: int | None = None
) -> _Call:
    return _Call(
        registry,
        repository,
        PULL,
        method,
        f"/v2/{repository}/blobs/{digest}",
        f"blob {digest} in {registry}/{repository}",
        limit=limit,
        follow_redirects=True,
    )


def _make_creds(username: str, password: str, identity_token: str | None) -> _Creds:
    return _Creds(username, password, identity_token, basic_authorization(username, password))


def _upload_url(base: str, location: str, digest: str | None) -> str:
    """The upload's Location made absolute, with `digest=` appended to any existing query.

    Kept as an encoded string: re-encoding would alter the registry's opaque `_state`.
    """
    url = location if "://" in location else urljoin(base + "/", location)
    if digest is None:
        return url
    path, hash_mark, fragment = url.partition("#")
    separator = "&" if "?" in path else "?"
    url = f"{path}{separator}digest={quote(digest, safe='')}"
    return url + (hash_mark + fragment if hash_mark else "")


def _origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme, (url.host or "").lower(), url.port)


def _host_port(url: URL) -> str:
    host = url.host or ""
    if url.explicit_port is not None:
        return f"{host}:{url.explicit_port}"
    return host


def _challenge_key(challenge: Challenge) -> tuple[str, str | None, str | None]:
    return challenge.scheme, challenge.realm, challenge.params.get("service")


def _kind(path: str) -> str:
    """What a request is about, from its path (for request_counts)."""
    if "/blobs/uploads/" in path:
        return "upload"
    if "/blobs/" in path:
        return "blob"
    if "/manifests/" in path:
        return "manifest"
    return "ping" if path.rstrip("/") == "/v2" else "token"


def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip()


def _media_type(data: bytes, content_type: str | None) -> str:
    """The registry's Content-Type when it names a manifest type (no parse needed); else the
    document's own mediaType / shape."""
    declared = _base_type(content_type)
    if declared in _KNOWN_MANIFEST_TYPES:
        return declared
    return detect_media_type(data, content_type)


def _digest_like(reference_digest: str, data: bytes) -> str:
    """The digest of `data` with the algorithm `reference_digest` uses."""
    algorithm = reference_digest.split(":", 1)[0]
    if algorithm == "sha256":
        return sha256_digest(data)
    try:
        return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
    except ValueError:
        return sha256_digest(data)


def _after_deadline(call: _Call, delay: float) -> bool:
    """Would a retry after `delay` seconds start past the call's deadline? (The caller then
    gets this attempt's failure, and decides anew.)"""
    return call.deadline is not None and time.monotonic() + delay > call.deadline


def _transient(exc: BaseException, first_contact: bool) -> bool:
    """Worth another try? Never for TLS trust or DNS; refused connections only once the
    registry is known to be up (a wrong port at first contact should fail fast)."""
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ClientConnectorDNSError):
        return False
    if isinstance(exc, aiohttp.InvalidURL):
        return False
    if isinstance(exc, TimeoutError):
        return True
    if isinstance(exc, aiohttp.ClientConnectorError):
        return not first_contact
    return isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError)


def _describe(exc: BaseException) -> str:
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(os_error, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror
    text = str(exc)
    return text or type(exc).__name__


async def _read_body(response: aiohttp.ClientResponse, method: str, limit: int | None) -> bytes:
    """The body, reading at most `limit + 1` bytes of a success (streamed, never all of a
    huge one) and a bounded prefix of an error."""
    if method == "HEAD":
        return b""
    if not 200 <= response.status < 300:
        limit = ERROR_BODY_LIMIT
        try:
            return await _read_limited(response, limit)
        except _BodyTooLarge:
            return b""
    if limit is None:
        return await response.read()
    return await _read_limited(response, limit)


async def _read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes:
    length = response.content_length
    if length is not None and length > limit:
        raise _BodyTooLarge(length)
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = await response.content.read(limit + 1 - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise _BodyTooLarge(length)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _drain(response: aiohttp.ClientResponse) -> None:
    # Reading a small redirect body lets the connection go back to the pool.
    with contextlib.suppress(_BodyTooLarge, aiohttp.ClientError):
        await _read_limited(response, ERROR_BODY_LIMIT)


def _log(method: str, url: URL, status: int, started: float) -> None:
    if output.debug_enabled():
        # The path only: queries carry upload state and token-endpoint accounts.
        elapsed = (time.perf_counter() - started) * 1000
        output.debug(f"{method} {_host_port(url)}{url.path} -> {status} ({elapsed:.1f} ms)")
