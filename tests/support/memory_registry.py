"""An in-memory registry with the operations of attachment_merge.SignatureStore, for the write
protocol's unit tests only (end-to-end tests use the real docker-registry).

Tests script its misbehaviour: hooks run another writer before or after any request, a PUT can
be dropped (answered, not applied), delayed or failed, a blob race answered, a DELETE failed or
refused, and a 404 can come in any dialect or be false.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hangar.manifest import OCI_INDEX, OCI_MANIFEST
from hangar.reference import Reference
from hangar.registry.client import Manifest
from hangar.registry.errors import (
    AuthenticationError,
    AuthorizationError,
    DeletesRefusedError,
    NotFoundError,
    RegistryError,
    ServerError,
    StaleRequestError,
)

Hook = Callable[[Reference], Awaitable[None]]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _media_type(data: bytes) -> str:
    """The document's own mediaType (an image index stored by a test), else an OCI manifest."""
    try:
        declared = json.loads(data).get("mediaType")
    except (ValueError, AttributeError):
        return OCI_MANIFEST
    return declared if isinstance(declared, str) else OCI_MANIFEST


@dataclass
class Faults:
    """What the next requests meet. Counters count down as they are used."""

    false_404: int = 0  # GET of a tag that exists answers 404
    not_found_code: str | None = "MANIFEST_UNKNOWN"  # the dialect of every 404
    drop_puts: int = 0  # manifest PUT answered, not applied
    fail_puts: int = 0  # manifest PUT answered 503 (after every retry)
    blob_race_puts: int = 0  # manifest PUT answered 400 MANIFEST_BLOB_UNKNOWN
    reject_puts: int = 0  # manifest PUT answered 400 MANIFEST_INVALID
    put_delay: float = 0.0  # seconds a manifest PUT takes
    fail_heads: int = 0  # HEAD answered 503 (after every retry)
    refuse_heads: int = 0  # HEAD answered 403
    expired_heads: int = 0  # HEAD answered 401 (a bearer token expired before its use)
    unreadable_blobs: set[str] = field(default_factory=set)  # GET blob answers 404
    refuse_deletes: bool = False  # manifest DELETE answered 405 UNSUPPORTED
    fail_deletes: int = 0  # manifest DELETE answered 503 (after every retry)


class MemoryRegistry:
    def __init__(self) -> None:
        self.manifests: dict[tuple[str, str], bytes] = {}  # (repository, tag) -> bytes
        self.blobs: dict[tuple[str, str], bytes] = {}  # (repository, digest) -> bytes
        self.faults = Faults()
        self.requests: list[str] = []  # "GET tag", "HEAD tag", "PUT tag", "PUSH blob"...
        self.before: dict[str, list[Hook]] = {}
        self.after: dict[str, list[Hook]] = {}
        # Manifests PUT by digest (referrer artifacts), and whether GET /referrers/ answers
        # (the referrers API of distribution-spec 1.1, which no registry of the test bed has).
        self.untagged: dict[tuple[str, str], bytes] = {}
        self.referrers_api = False

    # -- scripting -------------------------------------------------------------------------

    def on(self, when: str, step: str, hook: Hook) -> None:
        """Run `hook` before or after the next requests of `step` (GET, HEAD, PUT, PUSH,
        DELETE)."""
        (self.before if when == "before" else self.after).setdefault(step, []).append(hook)

    def counts(self) -> Counter[str]:
        return Counter(self.requests)

    def tag(self, ref: Reference) -> bytes | None:
        if ref.tag is None:  # by digest: PUT so, or any tag naming it
            assert ref.digest is not None
            found = self.untagged.get((ref.repository, ref.digest))
            if found is not None:
                return found
            for (repository, _), data in self.manifests.items():
                if repository == ref.repository and digest_of(data) == ref.digest:
                    return data
            return None
        return self.manifests.get((ref.repository, ref.tag))

    def store(self, ref: Reference, data: bytes) -> None:
        """A write that bypasses hooks and faults: another writer's PUT."""
        assert ref.tag is not None
        self.manifests[(ref.repository, ref.tag)] = data

    def add_blob(self, repository: str, data: bytes) -> str:
        digest = digest_of(data)
        self.blobs[(repository, digest)] = data
        return digest

    async def _step(self, step: str, ref: Reference, run: Callable[[], object]) -> object:
        for hook in list(self.before.get(step, [])):
            await hook(ref)
        self.requests.append(f"{step} {'tag' if ref.tag else 'blob'}")
        try:
            return run()
        finally:  # an error answer (a 404) is a step too
            for hook in list(self.after.get(step, [])):
                await hook(ref)

    # -- SignatureStore ----------------------------------------------------------------------

    async def get_manifest(self, ref: Reference) -> Manifest:
        def run() -> Manifest:
            data = self.tag(ref)
            if data is not None and self.faults.false_404 > 0:
                self.faults.false_404 -= 1
                data = None
            if data is None:
                raise self._not_found(ref)
            return Manifest(data, _media_type(data), digest_of(data))

        result = await self._step("GET", ref, run)
        assert isinstance(result, Manifest)
        return result

    async def head_manifest(self, ref: Reference) -> tuple[str, str] | None:
        def run() -> tuple[str, str] | None:
            if self.faults.fail_heads > 0:
                self.faults.fail_heads -= 1
                raise ServerError("HEAD failed with HTTP 503", registry=ref.registry, status=503)
            if self.faults.refuse_heads > 0:
                self.faults.refuse_heads -= 1
                raise AuthorizationError("HEAD refused", registry=ref.registry, status=403)
            if self.faults.expired_heads > 0:
                self.faults.expired_heads -= 1
                raise AuthenticationError("HEAD unauthorized", registry=ref.registry, status=401)
            data = self.tag(ref)
            return (digest_of(data), OCI_MANIFEST) if data is not None else None

        return await self._step("HEAD", ref, run)  # type: ignore[return-value]

    async def get_blob(
        self, registry: str, repository: str, digest: str, *, max_size: int
    ) -> bytes:
        self.requests.append("GET blob")
        data = self.blobs.get((repository, digest))
        if data is None or digest in self.faults.unreadable_blobs:
            raise NotFoundError(f"blob {digest} unknown", registry=registry, status=404)
        return data

    async def push_blob(
        self, registry: str, repository: str, data: bytes, *, check_exists: bool = True
    ) -> str:
        ref = Reference(registry, repository, None, None)

        def run() -> str:
            digest = digest_of(data)
            if check_exists and (repository, digest) in self.blobs:
                self.requests.append("HEAD blob")
                return digest
            return self.add_blob(repository, data)

        result = await self._step("PUSH", ref, run)
        assert isinstance(result, str)
        return result

    async def put_manifest(
        self, ref: Reference, data: bytes, media_type: str, *, deadline: float | None = None
    ) -> str:
        if deadline is not None and time.monotonic() > deadline:
            raise StaleRequestError(f"PUT {ref} was not sent", registry=ref.registry)
        if self.faults.put_delay:
            await asyncio.sleep(self.faults.put_delay)

        def run() -> str:
            faults = self.faults
            if faults.fail_puts > 0:
                faults.fail_puts -= 1
                raise ServerError("PUT failed with HTTP 503", registry=ref.registry, status=503)
            if faults.blob_race_puts > 0:
                faults.blob_race_puts -= 1
                raise RegistryError(
                    "blob unknown", registry=ref.registry, status=400, code="MANIFEST_BLOB_UNKNOWN"
                )
            if faults.reject_puts > 0:
                faults.reject_puts -= 1
                raise RegistryError(
                    "manifest invalid", registry=ref.registry, status=400, code="MANIFEST_INVALID"
                )
            if faults.drop_puts > 0:
                faults.drop_puts -= 1
            elif ref.tag is None:
                self.untagged[(ref.repository, digest_of(data))] = data
            else:
                self.store(ref, data)
            return digest_of(data)

        result = await self._step("PUT", ref, run)
        assert isinstance(result, str)
        return result

    async def delete_manifest(
        self, ref: Reference, digest: str, *, deadline: float | None = None
    ) -> None:
        """As distribution: the manifest goes, with every tag of the repository naming it."""
        if deadline is not None and time.monotonic() > deadline:
            raise StaleRequestError(f"DELETE {ref} was not sent", registry=ref.registry)

        def run() -> None:
            if self.faults.refuse_deletes:
                raise DeletesRefusedError(
                    "deletes refused", registry=ref.registry, status=405, code="UNSUPPORTED"
                )
            if self.faults.fail_deletes > 0:
                self.faults.fail_deletes -= 1
                raise ServerError("DELETE failed with HTTP 503", registry=ref.registry, status=503)
            named = [
                key
                for key, data in self.manifests.items()
                if key[0] == ref.repository and digest_of(data) == digest
            ]
            untagged = self.untagged.pop((ref.repository, digest), None)
            if not named and untagged is None:
                raise self._not_found(ref)
            for key in named:
                del self.manifests[key]

        await self._step("DELETE", ref, run)

    async def get_referrers(self, ref: Reference, digest: str) -> Manifest | None:
        """The referrers API: every manifest of the repository whose subject is `digest`, as
        distribution-spec's "Listing Referrers" describes the answer; None without the API."""

        def run() -> Manifest | None:
            if not self.referrers_api:
                return None
            entries = []
            stored = [d for (r, _), d in self.manifests.items() if r == ref.repository]
            stored += [d for (r, _), d in self.untagged.items() if r == ref.repository]
            for data in dict.fromkeys(stored):
                document = json.loads(data)
                if (document.get("subject") or {}).get("digest") != digest:
                    continue
                entry = {"mediaType": OCI_MANIFEST, "size": len(data), "digest": digest_of(data)}
                kind = document.get("artifactType") or document["config"]["mediaType"]
                entry["artifactType"] = kind
                if document.get("annotations"):
                    entry["annotations"] = document["annotations"]
                entries.append(entry)
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
            body = json.dumps(index).encode()
            return Manifest(body, OCI_INDEX, digest_of(body))

        self.requests.append("GET referrers")
        return run()

    def _not_found(self, ref: Reference) -> NotFoundError:
        code = self.faults.not_found_code
        return NotFoundError(
            f"{ref} not found ({code})", registry=ref.registry, status=404, code=code
        )
