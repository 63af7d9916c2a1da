"""A fault-injecting reverse proxy in front of a test registry.

`FaultProxy` listens on 127.0.0.1 (a free port) in its own thread and event loop, and forwards
every request to a real upstream registry: method, path, query, headers and body (bodies are
buffered, not streamed). `Location` headers that point at the upstream are rewritten to the
proxy, so a blob upload continues through it; `WWW-Authenticate` passes through untouched, so
a token challenge still names the real token server.

Tests script faults with `Rule`s, checked in the order they were added; the first rule that
matches a request and is within its `after`/`times` window acts on it:

    with FaultProxy.in_front_of(registry) as proxy:
        proxy.add_rule(Rule(method="PUT", path_regex=r"\\.sig$", action="reset", times=1))
        ... point the client at proxy.host ...
        assert proxy.hits(rule) == 1

Aborts are real: the client's socket gets a TCP RST (SO_LINGER 0), so it sees a connection
reset or a server disconnect, never an HTTP response.

One module, past 400 lines: the rules, the request log and the handlers share one lock and
one event loop thread, and a test reads it as one tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple

from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout, TCPConnector, web
from multidict import CIMultiDict
from yarl import URL

if TYPE_CHECKING:
    from tests.support.registry import RegistryServer

ACTIONS = ("status", "reset", "delay", "hold", "reset_after_upstream", "harbor404")

# Harbor's 404 for a missing artifact: see harbor_not_found_body() for one naming the request.
HARBOR_NOT_FOUND_CODE = "NOT_FOUND"
# Registries that answer a missing manifest with code UNKNOWN (seen from some mirrors).
UNKNOWN_NOT_FOUND_BODY = b'{"errors":[{"code":"UNKNOWN","message":"Not Found"}]}'
# Go's http.NotFound, as a bare reverse proxy or load balancer in front of a registry says it.
PLAIN_NOT_FOUND_BODY = b"404 page not found\n"

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# aiohttp sets Host and Content-Length itself from what it actually sends; the body is
# already buffered, so an Expect: 100-continue has nothing left to wait for.
_REQUEST_DROPPED = _HOP_BY_HOP | {"host", "content-length", "expect"}
_RESPONSE_DROPPED = _HOP_BY_HOP | {"content-length"}
# Headers aiohttp's client adds when absent: skipped so the upstream sees what the client sent.
_CLIENT_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")

_TAGS_LIST = re.compile(r"/v2/.+/tags/list")

STARTUP_SECONDS = 10.0
STOP_SECONDS = 10.0
# In-flight handlers (a long `delay`) get this long before stop() cancels them.
SHUTDOWN_GRACE_SECONDS = 0.2
UPSTREAM_TIMEOUT_SECONDS = 60.0
MAX_BODY_BYTES = 2**31
# How often a `delay` or `hold` checks whether its client already gave up (or is released).
DELAY_POLL_SECONDS = 0.02


class LoggedRequest(NamedTuple):
    method: str
    path: str  # without the query
    status: int | None  # what the client got; None: the connection was dropped
    ts: float  # time.monotonic() when the request arrived


@dataclass(eq=False)  # identity semantics: a rule is its own key in the hit counters
class Rule:
    """A fault for requests whose method and path match (None matches anything).

    `path_regex` is searched (re.search) in the decoded path, without the query. `after`
    lets the first N matching requests through; `times` then limits how often the rule acts
    (None: forever). `status`, `body` and `headers` shape the answer of `status`; `harbor404`
    always answers 404 with Harbor's body (unless `body` is given). `delay` is in seconds.
    `hold` keeps each request it acts on until `FaultProxy.release(rule)`, then forwards it:
    a test acts while the client waits, however slow the machine, instead of racing a delay.
    """

    method: str | None = None
    path_regex: str | None = None
    action: str = "status"
    status: int = 503
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    times: int | None = None
    after: int = 0
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}: expected one of {ACTIONS}")
        if self.times is not None and self.times < 0:
            raise ValueError(f"times must be >= 0 or None, got {self.times}")
        if self.after < 0 or self.delay < 0:
            raise ValueError(f"after and delay must be >= 0, got {self.after}, {self.delay}")
        if self.action == "delay" and self.delay == 0:
            raise ValueError("a 'delay' rule needs delay > 0 (seconds)")
        self._pattern = re.compile(self.path_regex) if self.path_regex is not None else None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self._pattern is None or self._pattern.search(path) is not None


def harbor_not_found_body(path: str) -> bytes:
    """Harbor's 404 body for the manifest at `path` (`artifact REPO:TAG not found`)."""
    match = re.match(r"^/v2/(.+)/manifests/([^/]+)$", path)
    repository, reference = match.groups() if match else ("library/app", "latest")
    # Harbor writes repo@digest for a digest reference, repo:tag for a tag.
    artifact = f"{repository}@{reference}" if ":" in reference else f"{repository}:{reference}"
    error = {"code": HARBOR_NOT_FOUND_CODE, "message": f"artifact {artifact} not found"}
    return json.dumps({"errors": [error]}, separators=(",", ":")).encode()


class FaultProxy:
    """A reverse proxy to `upstream_url` that injects the faults its rules describe."""

    def __init__(
        self,
        upstream_url: str,
        *,
        upstream_ssl: ssl.SSLContext | None = None,
        page_tag_lists: bool = False,
    ) -> None:
        self.upstream_url = upstream_url.rstrip("/")
        # distribution 2.8 (the test bed's) ignores `n` on tags/list; distribution 3 pages it.
        # With this on, the proxy pages the real registry's full list as distribution 3 does.
        self.page_tag_lists = page_tag_lists
        self._upstream_ssl = upstream_ssl
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._seen: dict[Rule, int] = {}
        self._hits: dict[Rule, int] = {}
        self._released: set[Rule] = set()
        self._answered: dict[Rule, int] = {}
        self._log: list[LoggedRequest] = []
        self._down = False
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None
        self._startup_error: BaseException | None = None
        self.port = 0

    @classmethod
    def in_front_of(cls, server: RegistryServer, *, page_tag_lists: bool = False) -> FaultProxy:
        """A proxy to a test registry (trusting its CA when it serves TLS)."""
        context = server.ssl_context() if server.scheme == "https" else None
        return cls(server.url, upstream_ssl=context, page_tag_lists=page_tag_lists)

    # -- addresses ------------------------------------------------------------------------

    @property
    def host(self) -> str:
        """ "127.0.0.1:PORT", what a client puts in an image reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def proxied(self, server: RegistryServer) -> RegistryServer:
        """`server` addressed through this proxy, for tests.support.http and .images.

        Credentials and token server are kept (shared: never close() the copy).
        """
        return dataclasses.replace(
            server, host=self.host, scheme="http", url=self.url, ca_cert=None, _process=None
        )

    # -- rules and observations -------------------------------------------------------------

    def add_rule(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(rule)
            self._seen.setdefault(rule, 0)
            self._hits.setdefault(rule, 0)
        return rule

    def clear_rules(self) -> None:
        """Drop every rule (their hit counts stay readable)."""
        with self._lock:
            self._rules.clear()

    def release(self, rule: Rule) -> None:
        """Forward the requests a `hold` rule keeps, and any it meets from now on."""
        with self._lock:
            self._released.add(rule)

    def answered(self, rule: Rule) -> int:
        """How many requests a `hold` rule kept have their upstream answer (being sent)."""
        with self._lock:
            return self._answered.get(rule, 0)

    def hits(self, rule: Rule) -> int:
        """How many requests `rule` acted on."""
        with self._lock:
            return self._hits.get(rule, 0)

    def seen(self, rule: Rule) -> int:
        """How many requests reached `rule` and matched it (acted on, skipped or spent)."""
        with self._lock:
            return self._seen.get(rule, 0)

    @property
    def requests(self) -> list[LoggedRequest]:
        """Finished requests, in the order they finished."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def set_upstream_down(self, down: bool = True) -> None:
        """While down, every request's connection is reset at once, without a response."""
        with self._lock:
            self._down = down

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        if self._thread is not None:
            raise RuntimeError(f"fault proxy {self.host} is already running")
        # Bound here, before the thread starts, so .host is known as soon as start() returns.
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        ready = threading.Event()
        self._startup_error = None
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"faultproxy-{self.port}", daemon=True
        )
        self._thread.start()
        if not ready.wait(STARTUP_SECONDS) or self._startup_error is not None:
            self.stop()
            raise RuntimeError(f"fault proxy {self.host} did not start: {self._startup_error!r}")
        return self

    def stop(self) -> None:
        """Stop serving, close every socket and end the thread (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is not None and loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in the meantime
                loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(STOP_SECONDS)
            if thread.is_alive():
                raise RuntimeError(f"fault proxy {self.host}: its thread did not stop")
        if self._listener is not None:
            self._listener.close()
        self._thread = self._loop = self._listener = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            try:
                loop.run_until_complete(self._open())
            except BaseException as error:  # reported by start(), in the caller's thread
                self._startup_error = error
                loop.run_until_complete(self._close())
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._close())
            loop.run_until_complete(loop.shutdown_asyncgens())
            # Name lookups of a non-IP upstream run in the default executor's threads.
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()

    async def _open(self) -> None:
        assert self._listener is not None
        connector = TCPConnector(
            # A fresh connection per request: no stale keep-alive after an upstream restart.
            force_close=True,
            ssl=self._upstream_ssl if self._upstream_ssl is not None else True,
        )
        self._session = ClientSession(
            connector=connector,
            timeout=ClientTimeout(total=UPSTREAM_TIMEOUT_SECONDS),
            auto_decompress=False,  # relay the upstream's bytes as they are
        )
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS
        )
        await self._runner.setup()
        await web.SockSite(self._runner, self._listener).start()

    async def _close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self._runner = self._session = None

    # -- request handling ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()
        response: web.StreamResponse | None = None
        try:
            response = await self._respond(request)
        finally:
            status = response.status if response is not None else None
            with self._lock:
                self._log.append(LoggedRequest(request.method, request.path, status, arrived))
        if response is None:
            _abort(request)
            # Never written: the transport is closed, so aiohttp drops it silently.
            return web.Response(status=499)
        return response

    async def _respond(self, request: web.Request) -> web.StreamResponse | None:
        """The response to send, or None to drop the connection without one."""
        with self._lock:
            down = self._down
        if down:
            return None
        body = await request.read()
        rule = self._select(request.method, request.path)
        if rule is None:
            if self.page_tag_lists and _TAGS_LIST.fullmatch(request.path):
                return await self._paged_tags(request)
            return await self._forward(request, body)
        if rule.action in ("status", "harbor404"):
            return await self._fault_response(rule, request)
        if rule.action == "delay":
            return await self._delayed(rule, request, body)
        if rule.action == "hold":
            return await self._held(rule, request, body)
        if rule.action == "reset_after_upstream":
            await self._forward(request, body)
        return None  # "reset", and "reset_after_upstream" once the upstream has it

    def _select(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path):
                    continue
                self._seen[rule] += 1
                if self._seen[rule] <= rule.after:
                    continue
                if rule.times is not None and self._hits[rule] >= rule.times:
                    continue
                self._hits[rule] += 1
                return rule
        return None

    async def _delayed(
        self, rule: Rule, request: web.Request, body: bytes
    ) -> web.StreamResponse | None:
        # Short naps, so a client that gave up (its timeout) is noticed: its request is then
        # not forwarded, and cannot land on the registry after the client's retry did.
        deadline = time.monotonic() + rule.delay
        while (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, DELAY_POLL_SECONDS))
            if _client_gone(request):
                return None
        return await self._forward(request, body)

    async def _held(
        self, rule: Rule, request: web.Request, body: bytes
    ) -> web.StreamResponse | None:
        while True:
            with self._lock:
                released = rule in self._released
            if released:
                response = await self._forward(request, body)
                if response is not None:
                    with self._lock:
                        self._answered[rule] = self._answered.get(rule, 0) + 1
                return response
            if _client_gone(request):
                return None
            await asyncio.sleep(DELAY_POLL_SECONDS)

    async def _fault_response(self, rule: Rule, request: web.Request) -> web.Response:
        status = 404 if rule.action == "harbor404" else rule.status
        body = rule.body
        if body is None:
            body = harbor_not_found_body(request.path) if rule.action == "harbor404" else b""
        headers: CIMultiDict[str] = CIMultiDict(rule.headers)
        if body and "Content-Type" not in headers:
            looks_json = body.lstrip().startswith(b"{")
            headers["Content-Type"] = JSON_CONTENT_TYPE if looks_json else TEXT_CONTENT_TYPE
        if status == 401 and "WWW-Authenticate" not in headers:
            challenge = await self._upstream_challenge(request)
            if challenge is not None:
                headers["WWW-Authenticate"] = challenge
        return web.Response(status=status, body=body, headers=headers)

    async def _upstream_challenge(self, request: web.Request) -> str | None:
        """The upstream's challenge for this request when sent without credentials.

        Only a registry that asks for auth at /v2/ has one; there an anonymous request stops
        at the auth check, so probing with the real method and path has no effect (the body
        is not sent). A registry without auth has nothing to copy: None.
        """
        assert self._session is not None
        try:
            async with self._session.get(self.upstream_url + "/v2/") as base:
                if base.status != 401:
                    return None
                fallback = base.headers.get("WWW-Authenticate")
            data = None if request.method in ("GET", "HEAD") else b""
            url = URL(self.upstream_url + request.raw_path, encoded=True)
            async with self._session.request(request.method, url, data=data) as probe:
                return probe.headers.get("WWW-Authenticate") or fallback
        except (ClientError, TimeoutError, OSError):
            return None

    async def _paged_tags(self, request: web.Request) -> web.Response | None:
        """distribution 3's tags/list: sorted, after `last`, at most `n`, and a Link header
        `</v2/NAME/tags/list?last=TAG&n=N>; rel="next"` while more follow."""
        whole = await self._forward(request, b"", raw_path=request.path)
        size = request.query.get("n")
        if whole is None or whole.status != 200 or not size:
            return whole
        assert isinstance(whole.body, bytes)
        document = json.loads(whole.body)
        last = request.query.get("last", "")
        tags = [tag for tag in sorted(document.get("tags") or []) if tag > last]
        page, more = tags[: int(size)], len(tags) > int(size)
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if more:
            query = f"last={page[-1]}&n={size}"
            headers["Link"] = f'<{request.path}?{query}>; rel="next"'
        body = json.dumps({"name": document.get("name"), "tags": page}).encode()
        return web.Response(status=200, body=body, headers=headers)

    async def _forward(
        self, request: web.Request, body: bytes, *, raw_path: str | None = None
    ) -> web.Response | None:
        """The upstream's answer, or None when it cannot be reached (as a dead registry)."""
        assert self._session is not None
        headers: CIMultiDict[str] = CIMultiDict(
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in _REQUEST_DROPPED
        )
        skip = {name for name in _CLIENT_AUTO_HEADERS if name not in request.headers}
        url = URL(self.upstream_url + (raw_path or request.raw_path), encoded=True)
        try:
            async with self._session.request(
                request.method,
                url,
                headers=headers,
                data=body or None,
                skip_auto_headers=skip,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                return self._relay(request, upstream, payload)
        except (ClientError, TimeoutError, OSError):
            return None

    def _relay(
        self, request: web.Request, upstream: ClientResponse, payload: bytes
    ) -> web.Response:
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in upstream.headers.items():
            if name.lower() in _RESPONSE_DROPPED:
                continue
            if name.lower() == "location":
                value = self._rewrite_location(value)
            headers.add(name, value)
        response = web.Response(
            status=upstream.status, reason=upstream.reason, body=payload, headers=headers
        )
        length = upstream.headers.get("Content-Length")
        if request.method == "HEAD" and length is not None:
            # A HEAD answer has no body but announces the size (clients read blob sizes so).
            response.headers["Content-Length"] = length
        return response

    def _rewrite_location(self, value: str) -> str:
        if value == self.upstream_url or value.startswith(self.upstream_url + "/"):
            return self.url + value[len(self.upstream_url) :]
        return value


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _abort(request: web.Request) -> None:
    """Drop the client's connection with a TCP RST: no response, no orderly close."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger on, timeout 0: close() sends RST, as a crashed server or a dropping
        # load balancer does, instead of the FIN of a polite close.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
