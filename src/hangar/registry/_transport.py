"""HTTP exchanges with registries: the aiohttp session, bounded bodies, redirects followed by
hand, request counts, and the retry loop of one request within its operation's budget.

Authorization is attached here and only here, to the registry's own origin: a redirect to
storage (distribution sends blob reads to S3 and the like) never carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from hangar import __version__, output
from hangar.registry import proxy as proxy_module
from hangar.registry import tls
from hangar.registry._inflight import InFlightLimit
from hangar.registry.auth import PULL_PUSH, Challenge
from hangar.registry.errors import (
    Failure,
    RegistryError,
    StaleRequestError,
    connection_error,
    describe,
)
from hangar.registry.health import RegistryHealth
from hangar.registry.retry import RetryBudget, parse_retry_after, retryable_status

ERROR_BODY_LIMIT = 64 * 1024
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass
class Endpoint:
    """Where one registry's API is served, as first contact found it."""

    registry: str  # as in references: "docker.io", "127.0.0.1:5000"
    host: str  # where the API is served: "registry-1.docker.io"
    base: str  # "https://host[:port]"
    origin: tuple[str, str, int | None]  # Authorization goes to this origin only
    ssl: ssl.SSLContext | bool
    challenge: Challenge | None  # None: anonymous access worked so far


@dataclass(frozen=True)
class Call:
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
    # False: a failure is not retried in place (the caller starts over, or does not care).
    retry: bool = True
    # time.monotonic() after which the request must not be sent (nor resent): its caller's
    # precondition (a tag checked a moment ago) is too old by then.
    deadline: float | None = None

    def failure(self, *, push: bool = False) -> Failure:
        return Failure(
            registry=self.registry,
            repository=self.repository,
            what=self.what,
            method=self.method,
            pushing=push or self.actions == PULL_PUSH,
        )


@dataclass(slots=True)
class Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    url: URL
    authorization: str | None = None  # what was sent, to drop a refused token
    attempts: int = 1


class BodyTooLarge(Exception):
    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


class Transport:
    """One aiohttp session (one keep-alive pool) for every registry of a run."""

    def __init__(
        self,
        *,
        tls_verify: bool,
        max_connections: int,
        request_timeout: float,
        health: RegistryHealth | None = None,
    ) -> None:
        self.tls_verify = tls_verify
        self.health = health or RegistryHealth()
        self.max_connections = max_connections
        self.request_timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None
        # HTTPS_PROXY/HTTP_PROXY/NO_PROXY as podman reads them (see registry/proxy.py).
        self._proxies = proxy_module.ProxySettings.from_environ()
        # HTTP exchanges sent, per "METHOD kind" (kind: manifest, blob, upload, ping, token):
        # retries and redirect hops each count, as they cost a round trip.
        self.request_counts: Counter[str] = Counter()
        self.first_request: float | None = None  # time.monotonic() (start-up, in the benchmark)
        # Requests in flight: from a quarter of the pool (-j) to all of it (see _inflight).
        self.in_flight = InFlightLimit(max_connections // 4, max_connections)

    def open(self) -> aiohttp.ClientSession:
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

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def ssl_for_url(self, url: URL, endpoint: Endpoint) -> ssl.SSLContext | bool:
        if url.scheme != "https":
            return True  # ignored by aiohttp for plain HTTP
        if origin(url) == endpoint.origin:
            return endpoint.ssl
        # A registry used without verification (--tls-verify=false, or registries.conf
        # `insecure = true`) has its token realm and redirects unverified too, as the one
        # HTTP client containers/image makes for it.
        verified = isinstance(endpoint.ssl, ssl.SSLContext) and (
            endpoint.ssl.verify_mode != ssl.CERT_NONE
        )
        return tls.ssl_context(host_port(url), self.tls_verify and verified)

    async def with_retries(
        self,
        send: Callable[[], Awaitable[Response]],
        host: str,
        call: Call,
        budget: RetryBudget,
        *,
        first_contact: bool = False,
    ) -> Response:
        """`send` until it gives an answer worth keeping, spending `budget` on the retries.
        A connection failure left when the budget is spent is raised as a RegistryError; a
        retryable status is returned (with how many attempts it took) for the caller to map.
        A registry silent for too long (see registry/health.py) ends it with RegistryDownError.
        """
        health = self.health
        while True:
            if (down := health.down(call.registry)) is not None:
                raise down
            sent = time.monotonic()
            try:
                response = await send()
            except asyncio.CancelledError:
                # Cancelled while waiting (--timeout, an abandon): no answer came either.
                health.no_answer(call.registry, sent, "no answer before --timeout")
                raise
            except (aiohttp.ClientError, TimeoutError) as exc:
                if _no_answer(exc):
                    reason = describe(exc) if not isinstance(exc, TimeoutError) else "timeout"
                    if (down := health.no_answer(call.registry, sent, reason)) is not None:
                        raise down from exc
                if _cancel_pending():
                    # The image's --timeout (or an abandon) fired as aiohttp's own timeout
                    # did, and aiohttp's TimeoutError swallowed it: a retry would outlive it.
                    raise asyncio.CancelledError from exc
                delay = budget.take() if call.retry and _transient(exc, first_contact) else None
                if delay is None:
                    raise connection_error(
                        exc, host, call.failure(), timeout=self.request_timeout
                    ) from exc
                output.debug(f"{call.method} {host}: {describe(exc)}; retry in {delay:.2f}s")
                await asyncio.sleep(delay)
                continue
            health.answered(call.registry)
            if call.retry and retryable_status(response.status):
                wait = parse_retry_after(response.headers.get("Retry-After"))
                delay = budget.take(wait)
                if delay is not None:
                    output.debug(f"{call.method} {host}: {response.status}; retry in {delay:.2f}s")
                    await asyncio.sleep(delay)
                    continue
            response.attempts = budget.attempts
            return response

    async def send(self, endpoint: Endpoint, call: Call, authorization: str | None) -> Response:
        """One exchange, following redirects by hand so Authorization never leaves the
        registry's origin; sent once a place among the requests in flight is free."""
        kind = _kind(call.path)
        # Manifests (the `.sig` protocol's checks and writes, and the images' reads) are few,
        # small and timed (a check is fresh for a few round trips): they never wait behind
        # uploads.
        if kind == "manifest":
            return await self._send(endpoint, call, authorization)
        async with self.in_flight.slot(f"{call.method} {kind}"):
            return await self._send(endpoint, call, authorization)

    async def _send(self, endpoint: Endpoint, call: Call, authorization: str | None) -> Response:
        session = self._session or self.open()
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
            same_origin = origin(url) == endpoint.origin
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
                ssl=endpoint.ssl if same_origin else self.ssl_for_url(url, endpoint),
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
                return Response(response.status, response.headers, body, url, authorization)
        raise RegistryError(
            f"registry {call.registry} redirected {call.what} more than {MAX_REDIRECTS} times",
            registry=call.registry,
        )


def origin(url: URL) -> tuple[str, str, int | None]:
    return (url.scheme, (url.host or "").lower(), url.port)


def host_port(url: URL) -> str:
    host = url.host or ""
    if url.explicit_port is not None:
        return f"{host}:{url.explicit_port}"
    return host


def _kind(path: str) -> str:
    """What a request is about, from its path (for request_counts)."""
    if "/blobs/uploads/" in path:
        return "upload"
    if "/blobs/" in path:
        return "blob"
    if "/manifests/" in path:
        return "manifest"
    if "/referrers/" in path:
        return "referrers"
    return "ping" if path.rstrip("/") == "/v2" else "token"


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


def _cancel_pending() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _no_answer(exc: BaseException) -> bool:
    """No HTTP answer came at all: refused, reset, dropped, timed out (TLS and DNS failures
    are answers of a kind: something is there, or the name is wrong)."""
    if isinstance(exc, TimeoutError):
        return True
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ClientConnectorDNSError):
        return False
    if isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        return False  # the proxy's failure, not the registry's
    return isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError)


async def _read_body(response: aiohttp.ClientResponse, method: str, limit: int | None) -> bytes:
    """The body, reading at most `limit + 1` bytes of a success (streamed, never all of a
    huge one) and a bounded prefix of an error."""
    if method == "HEAD":
        return b""
    if not 200 <= response.status < 300:
        try:
            return await _read_limited(response, ERROR_BODY_LIMIT)
        except BodyTooLarge:
            return b""
    if limit is None:
        return await response.read()
    return await _read_limited(response, limit)


async def _read_limited(response: aiohttp.ClientResponse, limit: int) -> bytes:
    length = response.content_length
    if length is not None and length > limit:
        raise BodyTooLarge(length)
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = await response.content.read(limit + 1 - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise BodyTooLarge(length)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _drain(response: aiohttp.ClientResponse) -> None:
    # Reading a small redirect body lets the connection go back to the pool.
    with contextlib.suppress(BodyTooLarge, aiohttp.ClientError):
        await _read_limited(response, ERROR_BODY_LIMIT)


def _log(method: str, url: URL, status: int, started: float) -> None:
    if output.debug_enabled():
        # The path only: queries carry upload state and token-endpoint accounts.
        elapsed = (time.perf_counter() - started) * 1000
        output.debug(f"{method} {host_port(url)}{url.path} -> {status} ({elapsed:.1f} ms)")
