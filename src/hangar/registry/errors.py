"""Registry failures a user can act on, and how an HTTP status or a failed connection maps
to one.

Every error names the registry and, where there is one, the image or repository, and carries
the HTTP status and the registry's error code so that callers can decide without parsing text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from hangar.errors import HangarError
from hangar.reference import api_host
from hangar.registry.auth import parse_www_authenticate, pick_challenge
from hangar.registry.retry import retryable_status

LOGIN_HINT = "log in with: hangar login {registry}"
CERTS_HINT = (
    "add the registry's CA certificate to ~/.config/containers/certs.d/{registry}/ca.crt, "
    "or use --tls-verify=false only for registries you trust"
)
PLAIN_HTTP_HINT = "it answers plain HTTP: use --tls-verify=false, and only for registries you trust"
# OpenSSL's words for "the other side does not speak TLS".
_PLAIN_HTTP_SIGNS = (
    "WRONG_VERSION_NUMBER",
    "wrong version number",
    "record layer failure",
    "packet length too long",
    "http request",
    "unknown protocol",
)


class RegistryError(HangarError):
    """A request to a registry failed."""

    def __init__(
        self,
        message: str,
        *,
        registry: str | None = None,
        status: int | None = None,
        code: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.registry = registry
        self.status = status
        self.code = code


NOT_FOUND_HINT = (
    "check the tag or digest, the registry and repository of the line or of "
    "--registry/--project, and whether the image was pushed or mirrored to this registry"
)


class NotFoundError(RegistryError):
    """404 in any dialect: unknown repository, tag, manifest or blob."""


class AuthenticationError(RegistryError):
    """401: no credentials, or credentials the registry refused."""


class AuthorizationError(RegistryError):
    """403: the credentials are valid but do not allow the operation."""


class UnreachableError(RegistryError):
    """Connection refused, DNS failure, reset: no HTTP answer at all."""


class TLSError(RegistryError):
    """The TLS handshake failed: untrusted certificate, or HTTPS to a plain-HTTP registry."""


class RegistryTimeoutError(RegistryError):
    """The registry did not answer within the request timeout."""


class RegistryDownError(RegistryError):
    """The registry has answered no request for a while (registry/health.py): no request is
    sent to it any more in this run. Not an UnreachableError: nothing retries it."""

    said_once = True  # logged when the registry went down, not once per line


class ServerError(RegistryError):
    """5xx or 429 that persisted through every retry."""


class StaleRequestError(RegistryError):
    """A request with a deadline (put_manifest's) was not sent: the deadline had passed."""


class DeletesRefusedError(RegistryError):
    """405 (distribution: UNSUPPORTED) on a manifest DELETE: the registry does not delete."""


class TooLargeError(RegistryError):
    """A manifest or blob bigger than hangar accepts."""


class DigestMismatchError(RegistryError):
    """The bytes received do not hash to the digest that was asked for."""


def parse_error_body(body: bytes) -> tuple[str | None, str]:
    """(first error code, readable text) from a distribution error body `{"errors": [...]}`.

    Registries that answer with something else (HTML, plain text, nothing) get their text
    trimmed to one short line, so the message stays readable.
    """
    try:
        document = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        document = None
    errors = document.get("errors") if isinstance(document, dict) else None
    if isinstance(errors, list) and errors:
        parts = [_describe_error(entry) for entry in errors if isinstance(entry, dict)]
        first = errors[0] if isinstance(errors[0], dict) else {}
        code = first.get("code")
        return (str(code) if code else None), "; ".join(part for part in parts if part)
    text = body.decode("utf-8", "replace").strip().splitlines()
    line = text[0].strip() if text else ""
    return None, line[:200]


def _describe_error(entry: dict) -> str:
    code = str(entry.get("code") or "").strip()
    message = str(entry.get("message") or "").strip()
    detail = entry.get("detail")
    text = f"{code}: {message}" if code and message else code or message
    # A structured detail (distribution's {"Tag": "v1"}, the access list of a 401) is for
    # programs: the message names the image and scope already, raw JSON only confuses.
    if isinstance(detail, str) and detail.strip() and detail.strip() != message:
        text = f"{text} ({detail.strip()})"
    return text


@dataclass(frozen=True)
class Failure:
    """What was being done when a registry answered with an unexpected status."""

    registry: str
    repository: str | None
    what: str  # "image 127.0.0.1:5000/ns/app:v1", "blob sha256:... in ..."
    method: str
    pushing: bool


def status_error(
    failure: Failure,
    status: int,
    body: bytes,
    *,
    attempts: int = 1,
    has_credentials: bool = False,
    insufficient_scope: bool = False,
) -> RegistryError:
    """The error for an HTTP status, with the registry's own words from its error body.

    Every 404 is NotFoundError, whatever the dialect (MANIFEST_UNKNOWN, NAME_UNKNOWN, Harbor's
    NOT_FOUND, UNKNOWN "Not Found", HTML): callers decide what "not found" means.
    """
    code, text = parse_error_body(body)
    detail = f": {text}" if text else ""
    registry = failure.registry
    fields: dict[str, Any] = {"registry": registry, "status": status, "code": code}
    if status == 401 and not (has_credentials and insufficient_scope):
        return _unauthenticated(failure, detail, has_credentials, fields)
    if status in (401, 403):
        verb = "push to" if failure.pushing else "pull from"
        target = f"{registry}/{failure.repository}" if failure.repository else registry
        return AuthorizationError(
            f"not allowed to {verb} {target}{detail}",
            hint=f"log in with an account that may {verb.split()[0]} there: "
            f"hangar login {registry}",
            **fields,
        )
    if status == 404:
        hint = NOT_FOUND_HINT if failure.what.startswith("image ") else None
        return NotFoundError(f"{failure.what} not found{detail}", hint=hint, **fields)
    if retryable_status(status):
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        return ServerError(
            f"registry {registry} failed {failure.method} {failure.what} with HTTP {status}"
            f"{tries}{detail}",
            hint="the registry is overloaded or broken; try again later",
            **fields,
        )
    return RegistryError(
        f"registry {registry} refused {failure.method} {failure.what} with HTTP {status}{detail}",
        **fields,
    )


def _unauthenticated(
    failure: Failure, detail: str, has_credentials: bool, fields: dict
) -> AuthenticationError:
    registry = failure.registry
    if not has_credentials:
        return AuthenticationError(
            f"registry {registry} requires authentication for {failure.what} and no "
            f"credentials are stored for it{detail}",
            hint=LOGIN_HINT.format(registry=registry),
            **fields,
        )
    return AuthenticationError(
        f"registry {registry} refused the credentials stored for it ({failure.what}){detail}",
        hint=f"log in again with: hangar login {registry}",
        **fields,
    )


def response_error(
    failure: Failure,
    status: int,
    body: bytes,
    www_authenticate: list[str],
    *,
    attempts: int = 1,
    has_credentials: bool = False,
) -> RegistryError:
    """status_error for a response, reading its challenge: a 401 that asks for a wider scope
    than known credentials were given is a refusal (403-like), not a missing login."""
    insufficient_scope = False
    if status == 401:
        offered = pick_challenge(parse_www_authenticate(www_authenticate))
        insufficient_scope = offered is not None and (
            offered.params.get("error") == "insufficient_scope"
        )
    return status_error(
        failure,
        status,
        body,
        attempts=attempts,
        has_credentials=has_credentials,
        insufficient_scope=insufficient_scope,
    )


def connection_error(
    exc: BaseException, host: str, failure: Failure, *, timeout: float
) -> RegistryError:
    """The error for an exchange that got no HTTP answer (`timeout`: the request timeout)."""
    registry = failure.registry
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
                f"registry {host} does not speak HTTPS", registry=registry, hint=PLAIN_HTTP_HINT
            )
        return TLSError(
            f"TLS handshake with {host} failed: {describe(exc)}",
            registry=registry,
            hint=CERTS_HINT.format(registry=certs_name),
        )
    if isinstance(exc, TimeoutError):
        return RegistryTimeoutError(
            f"registry {host} did not answer {failure.method} {failure.what} within {timeout:g}s",
            registry=registry,
            hint="the registry or the network is slow; try again later",
        )
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return UnreachableError(
            f"cannot reach registry {host}: the name does not resolve ({describe(exc)})",
            registry=registry,
            hint="check the registry name and your DNS settings",
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UnreachableError(
            f"cannot reach registry {host}: {describe(exc)}",
            registry=registry,
            hint="check the address and port, and that the registry is running",
        )
    if isinstance(exc, aiohttp.InvalidURL):
        return RegistryError(
            f"registry {registry} sent an invalid URL during {failure.what}", registry=registry
        )
    return UnreachableError(
        f"cannot reach registry {host}: the connection failed during {failure.method} "
        f"{failure.what} ({describe(exc)})",
        registry=registry,
        hint="check the network and that the registry is running",
    )


def _proxy_error(exc: aiohttp.ClientError, host: str, registry: str) -> UnreachableError:
    """The proxy (never its credentials) named, and the variables that chose it."""
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return UnreachableError(
            f"the proxy refused the connection to registry {host}: {exc.status} {exc.message}",
            registry=registry,
            hint="check the proxy's user and password in HTTPS_PROXY/HTTP_PROXY, and that it "
            f"allows {host}",
        )
    where = f"{exc.host}:{exc.port}" if isinstance(exc, aiohttp.ClientConnectorError) else "?"
    return UnreachableError(
        f"cannot reach proxy {where} for registry {host}: {describe(exc)}",
        registry=registry,
        hint="check HTTPS_PROXY/HTTP_PROXY, or list the registry in NO_PROXY",
    )


def login_refused(registry: str, username: str, status: int) -> AuthenticationError:
    return AuthenticationError(
        f"registry {registry} refused the username or password of {username}",
        registry=registry,
        status=status,
        hint="check them and try again",
    )


def describe(exc: BaseException) -> str:
    """A short reason for a failed connection: the OS's words where there are some."""
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(os_error, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(os_error, OSError) and os_error.strerror:
        return os_error.strerror
    text = str(exc)
    return text or type(exc).__name__
