"""Validate one image line: would podman/CRI-O (and, when asked, cosign) accept it?

For every platform manifest passing --os/--arch (and the index with
--require-index-signature), the `.sig` attachment is fetched and each layer judged by the pure
rules of hangar.sigstore.verify, the same code the c/image fixtures are tested against.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from hangar import output
from hangar.errors import HangarError
from hangar.imagelist import ListEntry
from hangar.jobs import ImageResult
from hangar.reference import Reference
from hangar.registry.client import RegistryClient
from hangar.registry.errors import DigestMismatchError, NotFoundError, TooLargeError
from hangar.sigstore.attachment import (
    MAX_SIGNATURE_BLOB,
    SIMPLESIGNING_MEDIA_TYPE,
    SignatureLayer,
    parse_attachment,
    signature_tag,
)
from hangar.sigstore.identity import (
    IdentityRule,
    exact_repository,
    match_exact,
    match_repo_digest_or_exact,
    match_repository,
)
from hangar.sigstore.keys import PublicKey
from hangar.sigstore.verify import LayerVerdict, verify_layers
from hangar.targets import Target, select_targets

_BLOB_DIGEST = re.compile(r"sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128}")


@dataclass(frozen=True)
class ValidateOptions:
    oses: list[str]
    arches: list[str]
    exact_repository: str | None = None
    accept_repository_identity: bool = False
    require_tag_identity: bool = False
    require_index_signature: bool = False

    def rule(self) -> IdentityRule:
        if self.exact_repository:
            return exact_repository(self.exact_repository)
        if self.accept_repository_identity:
            return match_repository
        return match_repo_digest_or_exact


@dataclass(frozen=True)
class FetchedBlob:
    """A layer's payload bytes, or None with why the registry's answer could not be used."""

    data: bytes | None
    problem: str | None = None  # set when the client refused the bytes it received


class AttachmentUnreadable(Exception):
    """The `.sig` tag holds something that is not a signature attachment."""


@dataclass
class DigestCheck:
    target: Target
    passed: bool
    reason: str
    verdicts: list[LayerVerdict]


class Validator:
    def __init__(
        self, client: RegistryClient, keys: list[PublicKey], options: ValidateOptions
    ) -> None:
        self.client = client
        self.keys = keys
        self.options = options
        self.rule = options.rule()

    async def validate_entry(self, entry: ListEntry, number: int) -> ImageResult:
        ref = entry.reference
        assert ref is not None
        manifest = await self.client.get_manifest(ref)
        targets = await select_targets(
            self.client,
            ref,
            manifest,
            self.options.oses,
            self.options.arches,
            include_index=self.options.require_index_signature,
        )
        if not targets:
            output.info(f"no matching platform, skipped [{ref}]", image=number)
            return ImageResult("skipped", "no matching platform, skipped")
        checks = await asyncio.gather(*(self._check(ref, target) for target in targets))
        details = [self._record(check) for check in checks]
        failures = [check for check in checks if not check.passed]
        for check in failures:
            output.error(
                f"FAIL: [{ref}] {check.target.label} {check.target.digest}: {check.reason}",
                image=number,
            )
        if failures:
            # The reasons are on the FAIL lines (and in the report); the runner prints this
            # message once more for the image, so it only names what failed.
            labels = ", ".join(check.target.label for check in failures)
            message = f"{len(failures)} of {len(checks)} digest(s) not accepted ({labels})"
            return ImageResult("failed", message, len(checks) - len(failures), details)
        output.info(f"PASS: [{ref}]", image=number)
        return ImageResult("passed", "", len(checks), details)

    async def _check(self, ref: Reference, target: Target) -> DigestCheck:
        try:
            fetched = await self._layers(ref, target.digest)
        except AttachmentUnreadable as exc:  # a verdict on this digest, not a run error
            return DigestCheck(target, False, str(exc), [])
        if fetched is None:
            return DigestCheck(target, False, "no signature", [])
        layers = [(layer, blob.data) for layer, blob in fetched]
        image_reference = f"{ref.name}@{target.digest}"
        verdicts = verify_layers(
            target.digest, layers, self.keys, self.rule, image_reference=image_reference
        )
        for verdict, (_, blob) in zip(verdicts, fetched, strict=True):
            if blob.problem is not None and not verdict.accepted:
                verdict.reason = blob.problem  # more precise than "missing"
        if not any(verdict.accepted for verdict in verdicts):
            return DigestCheck(target, False, _summarize(verdicts), verdicts)
        if self.options.require_tag_identity and not target.is_index:
            return self._check_tag_identity(ref, target, layers, verdicts)
        return DigestCheck(target, True, "accepted", verdicts)

    def _check_tag_identity(
        self, ref: Reference, target: Target, layers: list, verdicts: list[LayerVerdict]
    ) -> DigestCheck:
        if not ref.tag or ref.digest:
            return DigestCheck(
                target, True, "accepted (listed by digest: no tag to require)", verdicts
            )
        tagged = f"{ref.name}:{ref.tag}"
        by_tag = verify_layers(
            target.digest, layers, self.keys, match_exact, image_reference=tagged
        )
        if any(verdict.accepted for verdict in by_tag):
            return DigestCheck(target, True, "accepted", verdicts)
        identities = sorted({v.identity for v in verdicts if v.accepted and v.identity})
        return DigestCheck(
            target,
            False,
            f"no signature with the tag identity {tagged} (--require-tag-identity); "
            f"signed as {', '.join(identities)}: podman/CRI-O reject a pull by tag",
            verdicts,
        )

    async def _layers(
        self, ref: Reference, digest: str
    ) -> list[tuple[SignatureLayer, FetchedBlob]] | None:
        """The attachment's layers with their payload blobs; None when there is no `.sig`."""
        sig_ref = ref.with_tag(signature_tag(digest))
        try:
            manifest = await self.client.get_manifest(sig_ref)
        except NotFoundError:
            return None
        try:
            attachment = parse_attachment(manifest.data)
        except HangarError as exc:
            raise AttachmentUnreadable(f"unreadable signature attachment: {exc.message}") from None
        # Layers that name the same blob share one fetch (1000 copies of a layer: one GET).
        fetches: dict[str, asyncio.Future[bytes]] = {}
        payloads = await asyncio.gather(
            *(self._payload(ref, layer, fetches) for layer in attachment.layers)
        )
        return list(zip(attachment.layers, payloads, strict=True))

    async def _payload(
        self, ref: Reference, layer: SignatureLayer, fetches: dict[str, asyncio.Future[bytes]]
    ) -> FetchedBlob:
        """The layer's payload blob. A missing, corrupt or oversized blob rejects this layer
        only; any other registry error (auth, network) fails the image, as in c/image."""
        if layer.media_type != SIMPLESIGNING_MEDIA_TYPE or layer.size > MAX_SIGNATURE_BLOB:
            return FetchedBlob(None)  # verify_layer says why, without a fetch
        if not _BLOB_DIGEST.fullmatch(layer.digest):  # never put such text in a URL
            return FetchedBlob(
                None, f"layer digest {layer.digest!r} is not a sha256, sha384 or sha512 digest"
            )
        try:
            fetch = fetches.get(layer.digest)
            if fetch is None:
                fetch = fetches[layer.digest] = asyncio.ensure_future(
                    self.client.get_blob(
                        ref.registry, ref.repository, layer.digest, max_size=MAX_SIGNATURE_BLOB
                    )
                )
            data = await fetch
        except NotFoundError:
            return FetchedBlob(None)  # verify_layer: "payload blob ... is missing"
        except DigestMismatchError as exc:
            output.debug(f"{ref.name}: signature blob {layer.digest}: {exc}")
            return FetchedBlob(
                None,
                f"blob does not match its digest {layer.digest} (the registry sent other bytes)",
            )
        except TooLargeError as exc:
            output.debug(f"{ref.name}: signature blob {layer.digest}: {exc}")
            return FetchedBlob(
                None,
                f"payload blob {layer.digest} is over the {MAX_SIGNATURE_BLOB} byte limit "
                f"(its descriptor says {layer.size} bytes)",
            )
        return FetchedBlob(data)

    def _record(self, check: DigestCheck) -> dict[str, Any]:
        return {
            "digest": check.target.digest,
            "platform": check.target.label,
            "passed": check.passed,
            "reason": check.reason,
            "signatures": [
                {
                    "layer": verdict.layer_digest,
                    "key": self.keys[verdict.key_index].fingerprint
                    if verdict.key_index is not None
                    else None,
                    "identity": verdict.identity,
                    "creator": verdict.creator,
                    "timestamp": verdict.timestamp,
                    "accepted": verdict.accepted,
                    "reason": verdict.reason,
                }
                for verdict in check.verdicts
            ],
        }


def _summarize(verdicts: list[LayerVerdict]) -> str:
    if not verdicts:
        return "no signature (the attachment has no layers)"
    reasons: list[str] = []
    for verdict in verdicts:
        if verdict.reason not in reasons:
            reasons.append(verdict.reason)
    return "; ".join(reasons)
