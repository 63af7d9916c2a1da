"""Where each registry's API is, learned once per run by `GET /v2/`: the scheme that works
(HTTPS, or plain HTTP as a fallback when verification is off), its TLS context, and the auth
challenge it sends. Also the upload URLs a registry's Location headers lead to.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import quote, urljoin

from yarl import URL

from hangar import output
from hangar.reference import api_host
from hangar.registry import tls
from hangar.registry._transport import Call, Endpoint, Transport, origin
from hangar.registry.auth import PULL, parse_www_authenticate, pick_challenge
from hangar.registry.errors import (
    RegistryError,
    RegistryTimeoutError,
    TLSError,
    UnreachableError,
    response_error,
)
from hangar.registry.retry import RetryBudget

# A failed first contact with a registry is remembered this long, so that a thousand jobs
# waiting on it fail at once instead of each trying again.
PING_FAILURE_TTL = 30.0


class Endpoints:
    """The endpoint of every registry contacted so far; one ping per registry, however many
    jobs ask at once."""

    def __init__(
        self,
        transport: Transport,
        budget: Callable[[], RetryBudget],
        *,
        tls_verify: bool,
        insecure: Callable[[str], bool] = lambda registry: False,
    ) -> None:
        self._transport = transport
        self._budget = budget
        self.tls_verify = tls_verify
        self._insecure = insecure  # registries.conf `insecure = true` for this registry
        self._known: dict[str, Endpoint] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._failures: dict[str, tuple[RegistryError, float]] = {}

    async def get(self, registry: str) -> Endpoint:
        endpoint = self._known.get(registry)
        if endpoint is not None:
            return endpoint
        lock = self._locks.setdefault(registry, asyncio.Lock())
        async with lock:
            endpoint = self._known.get(registry)
            if endpoint is not None:
                return endpoint
            failure = self._failures.get(registry)
            if failure is not None and time.monotonic() - failure[1] < PING_FAILURE_TTL:
                raise failure[0]
            try:
                endpoint = await self._ping(registry)
            except RegistryError as exc:
                self._failures[registry] = (exc, time.monotonic())
                raise
            self._failures.pop(registry, None)
            self._known[registry] = endpoint
            return endpoint

    async def _ping(self, registry: str) -> Endpoint:
        """`GET /v2/` once per registry: which scheme works, and which challenge it sends.

        With verification on, HTTPS only. With it off, HTTPS without verification and then
        plain HTTP when HTTPS fails, as containers/image does for insecure registries.
        """
        host = api_host(registry)
        call = Call(registry, None, PULL, "GET", "/v2/", f"registry {registry}")
        verify = self.tls_verify
        if verify and self._insecure(registry):
            output.debug(f"registry {registry} is insecure in registries.conf: HTTP allowed")
            verify = False
        schemes = ("https",) if verify else ("https", "http")
        for scheme in schemes:
            endpoint = self._make(registry, host, scheme, verify)
            fallback = scheme == "https" and not verify
            attempt = replace(call, retry=False) if fallback else call
            try:
                response = await self._transport.with_retries(
                    functools.partial(self._transport.send, endpoint, attempt, None),
                    host,
                    attempt,
                    self._budget(),
                    first_contact=True,
                )
            except (UnreachableError, TLSError, RegistryTimeoutError) as exc:
                if fallback:
                    output.debug(f"registry {registry}: HTTPS failed ({exc}); trying HTTP")
                    continue
                raise
            if response.status >= 500:
                raise response_error(
                    call.failure(),
                    response.status,
                    response.body,
                    response.headers.getall("WWW-Authenticate", []),
                    attempts=response.attempts,
                )
            if response.status == 401:
                endpoint.challenge = pick_challenge(
                    parse_www_authenticate(response.headers.getall("WWW-Authenticate", []))
                )
            return endpoint
        raise AssertionError("unreachable: the last scheme raises or returns")

    def _make(self, registry: str, host: str, scheme: str, verify: bool) -> Endpoint:
        base = f"{scheme}://{host}"
        context: ssl.SSLContext | bool = True
        if scheme == "https":
            # certs.d is looked up by the name users write (docker.io), as c/image does.
            context = tls.ssl_context(registry, verify)
        return Endpoint(registry, host, base, origin(URL(base)), context, None)


def upload_url(base: str, location: str, digest: str | None) -> str:
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
