"""What a registry request carries to be let in: the credentials stored for the registry
(looked up once per registry and repository), a Basic header, or a bearer token fetched from
the challenge's realm and shared by every request of the same scope.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from yarl import URL

from hangar.registry import credentials as credentials_module
from hangar.registry._transport import (
    BodyTooLarge,
    Call,
    Endpoint,
    Response,
    Transport,
    host_port,
    origin,
)
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
    LOGIN_HINT,
    AuthenticationError,
    RegistryError,
    login_refused,
    response_error,
)
from hangar.registry.retry import RetryBudget

TOKEN_BODY_LIMIT = 1024 * 1024  # containers/image: iolimits.MaxAuthTokenBodySize


@dataclass(frozen=True)
class Creds:
    username: str
    password: str
    identity_token: str | None
    basic: str  # the Basic header, built once


def make_creds(username: str, password: str, identity_token: str | None = None) -> Creds:
    return Creds(username, password, identity_token, basic_authorization(username, password))


class Authenticator:
    """Credentials and tokens of one client, for every registry it talks to."""

    def __init__(
        self, transport: Transport, budget: Callable[[], RetryBudget], *, authfile: str | None
    ) -> None:
        self._transport = transport
        self._budget = budget
        self.authfile = authfile
        self._cache: dict[tuple[str, str | None], Creds | None] = {}
        self._logins: dict[str, Creds] = {}
        self._tokens = TokenCache()

    def close(self) -> None:
        self._tokens.close()

    def has_credentials(self, registry: str, repository: str | None) -> bool:
        """Were credentials for this call found (or given by a login)? Decides whether a 401
        means "log in" or "your login was refused"."""
        known = self._logins.get(registry) or self._cache.get((registry, repository))
        return known is not None

    def error(self, response: Response, call: Call, *, push: bool = False) -> RegistryError:
        """The error for a status the caller did not expect."""
        return response_error(
            call.failure(push=push),
            response.status,
            response.body,
            response.headers.getall("WWW-Authenticate", []),
            attempts=response.attempts,
            has_credentials=self.has_credentials(call.registry, call.repository),
        )

    async def log_in(self, endpoint: Endpoint, username: str, password: str) -> None:
        """Prove the credentials against `GET /v2/` (Basic, or the token flow), then use them
        for the registry from now on. A registry that asks for none accepts any."""
        registry = endpoint.registry
        creds = make_creds(username, password)
        challenge = endpoint.challenge
        if challenge is not None and challenge.scheme in ("basic", "bearer"):
            if challenge.scheme == "bearer":
                token = await self.fetch_token(endpoint, challenge, None, PULL, creds, login=True)
                authorization = token.authorization
            else:
                authorization = creds.basic
            call = Call(registry, None, PULL, "GET", "/v2/", f"login to registry {registry}")
            response = await self._transport.with_retries(
                lambda: self._transport.send(endpoint, call, authorization),
                endpoint.host,
                call,
                self._budget(),
            )
            if response.status == 401:
                raise login_refused(registry, username, 401)
            if response.status != 200:
                raise self.error(response, call)
        self._logins[registry] = creds
        self._cache = {key: value for key, value in self._cache.items() if key[0] != registry}
        # Tokens issued before (anonymously, or to other credentials) must not be used again.
        self._tokens.drop_where(lambda key: isinstance(key, tuple) and key[0] == registry)

    async def credentials(self, registry: str, repository: str | None) -> Creds | None:
        login = self._logins.get(registry)
        if login is not None:
            return login
        key = (registry, repository)
        if key in self._cache:
            return self._cache[key]
        # A credential helper may run a program: keep the event loop free meanwhile.
        found = await asyncio.to_thread(
            credentials_module.lookup_credentials,
            registry,
            repository or "",
            authfile=self.authfile,
        )
        creds = None
        if found is not None:
            creds = make_creds(found.username or "", found.password or "", found.identity_token)
        self._cache[key] = creds
        return creds

    async def authorization(self, endpoint: Endpoint, call: Call) -> str | None:
        challenge = endpoint.challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = await self.credentials(call.registry, call.repository)
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
            key, lambda: self.fetch_token(endpoint, challenge, repository, call.actions)
        )
        return token.authorization

    async def renew(self, endpoint: Endpoint, call: Call, response: Response) -> bool:
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
            return await self.credentials(call.registry, call.repository) is not None
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

    async def fetch_token(
        self,
        endpoint: Endpoint,
        challenge: Challenge,
        repository: str | None,
        actions: str,
        creds: Creds | None = None,
        *,
        login: bool = False,
    ) -> BearerToken:
        """Ask the challenge's realm for a token. Only this registry's own credentials go
        there (the realm is where they belong); never a token of another scope."""
        registry = endpoint.registry
        if creds is None:
            creds = await self.credentials(registry, repository)
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
        realm = Endpoint(
            registry,
            host_port(url),
            "",
            origin(url),
            self._transport.ssl_for_url(url, endpoint),
            None,
        )
        # The Basic header goes through send's origin check like any Authorization.
        basic = spec.headers.get("Authorization")
        headers = {k: v for k, v in spec.headers.items() if k != "Authorization"}
        call = Call(
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
            response = await self._transport.with_retries(
                lambda: self._transport.send(realm, call, basic), realm.host, call, self._budget()
            )
        except BodyTooLarge:
            raise RegistryError(
                f"the token endpoint of {registry} sent an oversized answer", registry=registry
            ) from None
        if response.status in (401, 403):
            raise _token_refused(registry, repository, creds, response, login=login)
        if response.status != 200:
            raise self.error(response, call)
        try:
            return parse_token_response(response.body)
        except TokenResponseError as exc:
            raise RegistryError(
                f"registry {registry}: {exc}", registry=registry, status=response.status
            ) from None


def _token_refused(
    registry: str, repository: str | None, creds: Creds | None, response: Response, *, login: bool
) -> AuthenticationError:
    target = f"{registry}/{repository}" if repository else f"registry {registry}"
    if login and creds is not None:
        return login_refused(registry, creds.username, response.status)
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


def _challenge_key(challenge: Challenge) -> tuple[str, str | None, str | None]:
    return challenge.scheme, challenge.realm, challenge.params.get("service")
