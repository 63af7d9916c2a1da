"""Registry authentication: WWW-Authenticate challenges, Basic headers, bearer tokens.

Pure parts (parsing, building the token request) are plain functions; the token cache makes
sure that concurrent requests for the same scope share one token fetch. The HTTP itself is the
client's job.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from urllib.parse import urlencode

# distribution's token spec: a token without `expires_in` lives 60 seconds.
DEFAULT_TOKEN_LIFETIME = 60.0
# Refresh this long before expiry (at most): the token must still be valid when it arrives.
REFRESH_MARGIN = 10.0
# Same client id as containers/image, for registries that log it.
CLIENT_ID = "hangar"

PULL = "pull"
PULL_PUSH = "pull,push"
PULL_PUSH_DELETE = "pull,push,delete"  # distribution asks for "delete" on a manifest DELETE


@dataclass(frozen=True)
class Challenge:
    """One WWW-Authenticate challenge: scheme in lower case, parameter names in lower case."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")


_SEPARATORS = " \t,="


def parse_www_authenticate(values: str | list[str]) -> list[Challenge]:
    """Parse WWW-Authenticate header values (RFC 7235), tolerating what registries send.

    Handles quoted values holding commas, spaces and backslash escapes, several challenges in
    one header (`Bearer realm="a", Basic realm="b"`), any case for schemes and names, and
    stray white space. A malformed tail ends the parse without losing what came before.
    """
    headers = [values] if isinstance(values, str) else list(values)
    challenges: list[Challenge] = []
    for header in headers:
        challenges.extend(_parse_header(header))
    return challenges


def _parse_header(header: str) -> list[Challenge]:
    challenges: list[Challenge] = []
    current: Challenge | None = None
    position, length = 0, len(header)
    while position < length:
        position = _skip(header, position, " \t,")
        word, position = _read_token(header, position)
        if not word:
            position += 1  # a stray separator or quote: step over it
            continue
        after = _skip(header, position, " \t")
        if current is not None and after < length and header[after] == "=":
            value, position = _read_value(header, _skip(header, after + 1, " \t"))
            current.params[word.lower()] = value
            continue
        current = Challenge(word.lower(), {})
        challenges.append(current)
    return challenges


def _skip(text: str, position: int, characters: str) -> int:
    while position < len(text) and text[position] in characters:
        position += 1
    return position


def _read_token(text: str, position: int) -> tuple[str, int]:
    start = position
    while position < len(text) and text[position] not in _SEPARATORS and text[position] != '"':
        position += 1
    return text[start:position], position


def _read_value(text: str, position: int) -> tuple[str, int]:
    if position < len(text) and text[position] == '"':
        chars: list[str] = []
        position += 1
        while position < len(text):
            char = text[position]
            if char == "\\" and position + 1 < len(text):
                chars.append(text[position + 1])
                position += 2
                continue
            if char == '"':
                return "".join(chars), position + 1
            chars.append(char)
            position += 1
        return "".join(chars), position  # unterminated: keep what there is
    start = position
    while position < len(text) and text[position] not in " \t,":
        position += 1
    return text[start:position], position


def pick_challenge(challenges: list[Challenge]) -> Challenge | None:
    """The challenge hangar answers: Bearer when offered (scoped, short-lived), else Basic."""
    for scheme in ("bearer", "basic"):
        for challenge in challenges:
            if challenge.scheme == scheme:
                return challenge
    return None


def basic_authorization(username: str, password: str) -> str:
    raw = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def repository_scope(repository: str, actions: str) -> str:
    return f"repository:{repository}:{actions}"


@dataclass(frozen=True)
class TokenRequest:
    """How to ask a token endpoint for a token. `data` is a form body for POST, else None."""

    method: str
    url: str
    headers: dict[str, str]
    data: str | None = None


def token_request(
    challenge: Challenge,
    scopes: list[str],
    *,
    username: str | None = None,
    password: str | None = None,
    identity_token: str | None = None,
) -> TokenRequest:
    """The request containers/image sends for a token.

    With an identity token: OAuth2 POST, `grant_type=refresh_token`, the token in the form body.
    Otherwise: GET with `service`, `scope` and `account` in the query, Basic credentials in the
    header when there are some. The realm must be an absolute http(s) URL.
    """
    realm = challenge.realm
    if not realm:
        raise ValueError("bearer challenge has no realm")
    service = challenge.params.get("service")
    params: list[tuple[str, str]] = []
    if identity_token:
        if service:
            params.append(("service", service))
        params.extend(("scope", scope) for scope in scopes)
        params += [
            ("grant_type", "refresh_token"),
            ("refresh_token", identity_token),
            ("client_id", CLIENT_ID),
        ]
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return TokenRequest("POST", realm, headers, urlencode(params))
    if username:
        params.append(("account", username))
    if service:
        params.append(("service", service))
    params.extend(("scope", scope) for scope in scopes)
    separator = "&" if "?" in realm else "?"
    url = realm + (separator + urlencode(params) if params else "")
    headers = {}
    if username and password:
        headers["Authorization"] = basic_authorization(username, password)
    return TokenRequest("GET", url, headers)


def token_clock() -> float:
    """The clock token lifetimes count on, looked up at each call: tests move it, not sleep."""
    return time.monotonic()


@dataclass(frozen=True)
class BearerToken:
    authorization: str  # the whole header value, built once: "Bearer <token>"
    expires_at: float  # token_clock()
    lifetime: float

    def fresh(self, now: float) -> bool:
        margin = min(REFRESH_MARGIN, self.lifetime / 10)
        return now < self.expires_at - margin


class TokenResponseError(ValueError):
    """A token endpoint answer without a usable token."""


def parse_token_response(body: bytes, *, now: float | None = None) -> BearerToken:
    """`token` or `access_token`, and `expires_in` (default 60 s, as distribution's spec says).

    `issued_at` is ignored on purpose: the registry's clock may differ from ours, and the
    moment the answer arrived is what the lifetime counts from.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise TokenResponseError("the token endpoint's answer is not JSON") from None
    if not isinstance(document, dict):
        raise TokenResponseError("the token endpoint's answer is not a JSON object")
    token = document.get("token") or document.get("access_token")
    if not isinstance(token, str) or not token:
        raise TokenResponseError("the token endpoint's answer holds no token")
    lifetime = document.get("expires_in")
    if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    received = token_clock() if now is None else now
    return BearerToken("Bearer " + token, received + float(lifetime), float(lifetime))


def _retrieve(future: asyncio.Future[BearerToken]) -> None:
    # Mark a failure as seen even when every waiter was cancelled, so asyncio stays quiet.
    if not future.cancelled():
        future.exception()


class TokenCache:
    """Bearer tokens by key (registry, repository, actions); one fetch per key at a time."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock
        self._tokens: dict[Hashable, BearerToken] = {}
        self._pending: dict[Hashable, asyncio.Future[BearerToken]] = {}

    def peek(self, key: Hashable) -> BearerToken | None:
        """A cached token that is still fresh, without fetching."""
        token = self._tokens.get(key)
        now = self._clock() if self._clock is not None else token_clock()
        if token is not None and token.fresh(now):
            return token
        return None

    async def get(self, key: Hashable, fetch: Callable[[], Awaitable[BearerToken]]) -> BearerToken:
        token = self.peek(key)
        if token is not None:
            return token
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(key, fetch))
            pending.add_done_callback(_retrieve)
            self._pending[key] = pending
        # shield: one waiter being cancelled (a job timeout) must not cancel the others' fetch.
        return await asyncio.shield(pending)

    async def _fetch(
        self, key: Hashable, fetch: Callable[[], Awaitable[BearerToken]]
    ) -> BearerToken:
        try:
            token = await fetch()
            self._tokens[key] = token
            return token
        finally:
            self._pending.pop(key, None)

    def invalidate(self, key: Hashable, authorization: str) -> None:
        """Drop the token that was refused, unless another request has replaced it already."""
        token = self._tokens.get(key)
        if token is not None and token.authorization == authorization:
            del self._tokens[key]

    def drop_where(self, predicate: Callable[[Hashable], bool]) -> None:
        """Forget the cached tokens whose key matches (new credentials for a registry)."""
        for key in [key for key in self._tokens if predicate(key)]:
            del self._tokens[key]

    def close(self) -> None:
        for pending in self._pending.values():
            pending.cancel()
        self._pending.clear()
        self._tokens.clear()
