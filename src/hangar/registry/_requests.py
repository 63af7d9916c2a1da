"""One registry API call end to end: the registry's endpoint, the Authorization it needs, the
exchange with retries from its operation's budget, and one renewal after a 401."""

from __future__ import annotations

from hangar.registry._auth import Authenticator
from hangar.registry._endpoints import Endpoints
from hangar.registry._transport import BodyTooLarge, Call, Endpoint, Response, Transport
from hangar.registry.errors import RegistryError, TooLargeError
from hangar.registry.health import RegistryHealth, down_after_for
from hangar.registry.registries_conf import RegistriesConf, load_registries_conf
from hangar.registry.retry import RetryBudget, RetryPolicy


class Requester:
    """The transport, endpoints and credentials of one client, and its retry policy."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        tls_verify: bool,
        authfile: str | None,
        max_connections: int,
        request_timeout: float,
    ) -> None:
        self.policy = policy
        self.transport = Transport(
            tls_verify=tls_verify,
            max_connections=max_connections,
            request_timeout=request_timeout,
            health=RegistryHealth(down_after_for(policy)),
        )
        self._conf: RegistriesConf | None = None
        self.endpoints = Endpoints(
            self.transport,
            self.budget,
            tls_verify=tls_verify,
            insecure=lambda registry: self.registries_conf().insecure(registry),
        )
        self.auth = Authenticator(self.transport, self.budget, authfile=authfile)

    def registries_conf(self) -> RegistriesConf:
        """registries.conf and its drop-ins, read at the first request, then kept: one run,
        one configuration."""
        if self._conf is None:
            self._conf = load_registries_conf()
        return self._conf

    def budget(self, deadline: float | None = None, *, requests: int = 1) -> RetryBudget:
        """The retries of one operation of `requests` requests, shared by all of them: each
        request's share is the policy's attempts, restarts included."""
        attempts = requests * (self.policy.retries + 1)
        return RetryBudget(self.policy, retries=attempts - 1, deadline=deadline)

    async def close(self) -> None:
        self.auth.close()
        await self.transport.close()

    async def endpoint(self, registry: str) -> Endpoint:
        self.registries_conf().check_allowed(registry, None)
        return await self.endpoints.get(registry)

    def error(self, response: Response, call: Call, *, push: bool = False) -> RegistryError:
        """The error for a status the caller did not expect."""
        return self.auth.error(response, call, push=push)

    async def request(self, call: Call, budget: RetryBudget | None = None) -> Response:
        """Send with auth and retries (from `budget`, the operation's; else a budget of its
        own). Statuses are left to the caller, except 401 loops."""
        self.registries_conf().check_allowed(call.registry, call.repository)
        endpoint = await self.endpoints.get(call.registry)
        if budget is None:
            budget = self.budget(call.deadline)

        async def once() -> Response:
            authorization = await self.auth.authorization(endpoint, call)
            return await self.transport.send(endpoint, call, authorization)

        response = await self.transport.with_retries(once, endpoint.host, call, budget)
        if response.status == 401 and await self.auth.renew(endpoint, call, response):
            response = await self.transport.with_retries(once, endpoint.host, call, budget)
        return response

    async def request_limited(self, call: Call, max_size: int, what: str) -> Response:
        """request(), a 2xx body over `max_size` refused as TooLargeError naming `what`."""
        try:
            return await self.request(call)
        except BodyTooLarge as exc:
            size = f"{exc.size} bytes" if exc.size is not None else f"more than {max_size} bytes"
            raise TooLargeError(
                f"{what} is too large ({size}); hangar reads at most {max_size} bytes",
                registry=call.registry,
            ) from None
