"""RegistryClient: the OCI distribution API as hangar uses it. It knows nothing of signatures.

One RegistryClient (one aiohttp session, one keep-alive connection pool) serves a whole run of
thousands of images: per registry it remembers the scheme that works and the auth challenge
(learned once from `GET /v2/`), and per (registry, repository, actions) a bearer token, so that
the steady state is one HTTP exchange per API call. Client CPU matters on a small box shared
with the registry: bodies are read once, URLs are built as already-encoded strings, SSL contexts
and Authorization headers are made once and reused.

The parts, each in its module: `_transport` (session, bodies, redirects, the retry loop),
`_endpoints` (first contact and scheme per registry), `_auth` (credentials and tokens),
`_requests` (one call through all of them), `_uploads` (blob uploads), `_content` (digest and
media type checks), `errors` (statuses and failed connections as RegistryErrors), `retry`
(policy, and the one budget of each operation). This module is the API: One module because
it is the whole surface the rest of hangar calls, each method a few lines over those parts.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from dataclasses import dataclass
from types import TracebackType

from yarl import URL

from hangar import output
from hangar.manifest import (
    ACCEPT,
    OCI_INDEX,
    SCHEMA1_TYPES,
    UnsupportedManifestError,
    sha256_digest,
)
from hangar.reference import Reference
from hangar.registry import _uploads as uploads
from hangar.registry import tags as tag_pages
from hangar.registry._content import (
    KNOWN_MANIFEST_TYPES,
    base_type,
    check_manifest_digest,
    digest_like,
    media_type_of,
)
from hangar.registry._requests import Requester
from hangar.registry._transport import Call, host_port, origin
from hangar.registry.auth import PULL, PULL_PUSH, PULL_PUSH_DELETE
from hangar.registry.errors import (
    DeletesRefusedError,
    DigestMismatchError,
    RegistryDownError,
    RegistryError,
    RegistryTimeoutError,
)
from hangar.registry.retry import RetryPolicy, base_delay_from_env

__all__ = ["Manifest", "RegistryClient"]

DEFAULT_MAX_MANIFEST_SIZE = 4 * 1024 * 1024
# Seconds one HTTP exchange may take, its body included (--timeout bounds a whole image).
DEFAULT_REQUEST_TIMEOUT = 60.0
REQUEST_COUNTS_ENV = "HANGAR_REQUEST_COUNTS"


@dataclass(frozen=True)
class Manifest:
    data: bytes  # exactly as received: its sha256 is the digest
    media_type: str
    digest: str


class RegistryClient:
    """Async context manager; one per run, shared by all jobs."""

    def __init__(
        self,
        *,
        tls_verify: bool = True,
        authfile: str | None = None,
        max_connections: int = 32,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        retries: int = 5,
        retry_base_delay: float | None = None,
    ) -> None:
        if retry_base_delay is None:  # $HANGAR_RETRY_BASE_DELAY, else 0.5 s
            retry_base_delay = base_delay_from_env()
        self._requests = Requester(
            RetryPolicy(retries=max(0, retries), base_delay=retry_base_delay),
            tls_verify=tls_verify,
            authfile=authfile,
            max_connections=max(1, max_connections),
            request_timeout=request_timeout,
        )

    @property
    def request_counts(self) -> Counter[str]:
        """HTTP exchanges sent, per "METHOD kind" ("GET manifest", "PUT upload", ...); retries
        and redirect hops each count."""
        return self._requests.transport.request_counts

    def down(self, registry: str) -> RegistryDownError | None:
        """The error every request to `registry` now fails with, when it stopped answering
        (registry/health.py); None while it answers."""
        return self._requests.transport.health.down(registry)

    def silence(self, registry: str) -> str | None:
        """`registry X has not answered since HH:MM:SS UTC`, while requests to it get no
        answer; None when its last request got one."""
        return self._requests.transport.health.silence(registry)

    @property
    def first_request(self) -> float | None:
        """time.monotonic() of the first request (start-up, in the benchmark)."""
        return self._requests.transport.first_request

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> RegistryClient:
        self._requests.transport.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._requests.close()

    def report_requests(self) -> None:
        """The requests this client sent, per kind: a debug line, and a JSON file at
        $HANGAR_REQUEST_COUNTS when set (the benchmark reads it)."""
        counts = dict(sorted(self.request_counts.items()))
        output.debug("requests sent: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        path = os.environ.get(REQUEST_COUNTS_ENV)
        if path:
            with open(path, "w", encoding="utf-8") as sink:
                json.dump({"counts": counts, "first_request": self.first_request}, sink)

    # -- manifests ---------------------------------------------------------------------

    async def get_manifest(
        self, ref: Reference, *, max_size: int = DEFAULT_MAX_MANIFEST_SIZE
    ) -> Manifest:
        call = Call(
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
        response = await self._requests.request_limited(call, max_size, f"the manifest of {ref}")
        if response.status != 200:
            raise self._requests.error(response, call)
        data = response.body
        digest = check_manifest_digest(ref, data, response.headers.get("Docker-Content-Digest"))
        media_type = media_type_of(data, response.headers.get("Content-Type"))
        if media_type in SCHEMA1_TYPES:
            raise UnsupportedManifestError(
                f"{ref} is a Docker schema1 manifest ({media_type}), which is not supported; "
                "re-push the image with a current client",
                hint="for example: skopeo copy --format v2s2 docker://IMAGE docker://IMAGE",
            )
        return Manifest(data, media_type, digest)

    async def head_manifest(self, ref: Reference) -> tuple[str, str] | None:
        """(digest, media type), or None when the registry does not know the reference."""
        call = Call(
            ref.registry,
            ref.repository,
            PULL,
            "HEAD",
            f"/v2/{ref.repository}/manifests/{ref.api_reference}",
            f"image {ref}",
            headers={"Accept": ACCEPT},
            follow_redirects=True,
        )
        response = await self._requests.request(call)
        if response.status == 404:
            return None
        if response.status != 200:
            raise self._requests.error(response, call)
        digest = response.headers.get("Docker-Content-Digest")
        content_type = base_type(response.headers.get("Content-Type"))
        if digest and content_type in KNOWN_MANIFEST_TYPES:
            return digest, content_type
        # A registry that leaves the headers out of HEAD: the bytes tell.
        manifest = await self.get_manifest(ref)
        return manifest.digest, manifest.media_type

    async def get_referrers(
        self, ref: Reference, digest: str, *, max_size: int = DEFAULT_MAX_MANIFEST_SIZE
    ) -> Manifest | None:
        """The referrers API (distribution-spec v1.1): the index of the manifests whose
        `subject` is `digest`, in `ref`'s repository; None where the registry does not serve it.
        As ggcr decides (remote.Referrers): a 200 whose Content-Type is exactly the OCI index
        type is the list; 404, 400, 406 or another Content-Type mean no API. Only the first
        page is read, as cosign does."""
        call = Call(
            ref.registry,
            ref.repository,
            PULL,
            "GET",
            f"/v2/{ref.repository}/referrers/{digest}",
            f"the referrers of {ref.name}@{digest}",
            headers={"Accept": OCI_INDEX},
            limit=max_size,
            follow_redirects=True,
        )
        response = await self._requests.request_limited(call, max_size, call.what)
        if response.status in (400, 404, 406):
            return None
        if response.status != 200:
            raise self._requests.error(response, call)
        if base_type(response.headers.get("Content-Type")) != OCI_INDEX:
            return None
        return Manifest(response.body, OCI_INDEX, sha256_digest(response.body))

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
        call = Call(
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
        response = await self._requests.request(call)
        if response.status not in (200, 201, 202):
            raise self._requests.error(response, call)
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
        call = Call(
            ref.registry,
            ref.repository,
            PULL_PUSH_DELETE,
            "DELETE",
            f"/v2/{ref.repository}/manifests/{digest}",
            f"image {ref}",
            deadline=deadline,
        )
        response = await self._requests.request(call)
        if response.status in (200, 202, 204):
            return
        error = self._requests.error(response, call)
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
        response = await self._requests.request(call)
        if response.status == 200:
            return True
        if response.status == 404:
            return False
        raise self._requests.error(response, call)

    async def get_blob(
        self, registry: str, repository: str, digest: str, *, max_size: int
    ) -> bytes:
        call = _blob_call(registry, repository, digest, "GET", limit=max_size)
        response = await self._requests.request_limited(call, max_size, call.what)
        if response.status != 200:
            raise self._requests.error(response, call)
        actual = digest_like(digest, response.body)
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
        await uploads.upload(self._requests, registry, repository, digest, data)
        return digest

    # -- tags --------------------------------------------------------------------------

    async def list_tags(
        self, registry: str, repository: str, *, page_size: int | None = None
    ) -> list[str]:
        """Every tag of the repository, following distribution's `Link: <...>; rel="next"`
        pages. A next page on another origin is refused: Authorization stays with the
        registry."""
        endpoint = await self._requests.endpoint(registry)
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
            call = Call(
                registry, repository, PULL, "GET", str(url), f"repository {registry}/{repository}",
                follow_redirects=True,
            )  # fmt: skip
            response = await self._requests.request_limited(call, tag_pages.MAX_PAGE_BYTES, what)
            if response.status != 200:
                raise self._requests.error(response, call)
            page = tag_pages.parse_tags(response.body)
            if page is None:
                raise RegistryError(
                    f"registry {registry} sent {what} in a form that is not a tag list",
                    registry=registry,
                )
            tags.extend(page)
            url = tag_pages.next_page(response.headers.getall("Link", []), url)
            if url is not None and origin(url) != endpoint.origin:
                raise RegistryError(
                    f"registry {registry} links the next page of {what} to another host "
                    f"({host_port(url)}); hangar does not follow it",
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
        endpoint = await self._requests.endpoint(registry)
        await self._requests.auth.log_in(endpoint, username, password)

    async def requires_credentials(
        self, registry: str, repository: str, *, timeout: float | None = None
    ) -> bool:
        """True when a push to `repository` would be refused without credentials and none are
        stored. Probes by opening an upload session (and cancelling it) anonymously.
        `timeout`: seconds for the whole probe (first contact and retries included), then
        RegistryTimeoutError."""
        if await self._requests.auth.credentials(registry, repository) is not None:
            return False
        try:
            async with asyncio.timeout(timeout):
                return await uploads.push_refused_anonymously(self._requests, registry, repository)
        except TimeoutError:
            raise RegistryTimeoutError(
                f"registry {registry} did not answer the login check within {timeout:g}s "
                "(--timeout)",
                registry=registry,
                hint="check that the registry is running and answers",
            ) from None


def _blob_call(
    registry: str, repository: str, digest: str, method: str, *, limit: int | None = None
) -> Call:
    return Call(
        registry,
        repository,
        PULL,
        method,
        f"/v2/{repository}/blobs/{digest}",
        f"blob {digest} in {registry}/{repository}",
        limit=limit,
        follow_redirects=True,
    )
