"""Registry failures a user can act on.

Every error names the registry and, where there is one, the image or repository, and carries
the HTTP status and the registry's error code so that callers can decide without parsing text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hangar.errors import HangarError
from hangar.registry.retry import retryable_status

LOGIN_HINT = "log in with: hangar login {registry}"
CERTS_HINT = (
    "add the registry's CA certificate to ~/.config/containers/certs.d/{registry}/ca.crt, "
    "or use --tls-verify=false only for registries you trust"
)
PLAIN_HTTP_HINT = "it answers plain HTTP: use --tls-verify=false, and only for registries you trust"


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
    except (ValueError, UnicodeDecodeError):
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
    if isinstance(detail, str) and detail.strip() and detail.strip() != message:
        text = f"{text} ({detail.strip()})"
    elif isinstance(detail, dict | list) and detail:
        text = f"{text} ({json.dumps(detail, separators=(',', ':'))[:200]})"
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
        return NotFoundError(f"{failure.what} not found{detail}", **fields)
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
