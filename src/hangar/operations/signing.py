"""Sign one image line: resolve its manifest, pick the digests to sign, write attachments.

The `.sig` write protocol itself (merging with other writers, the end-of-run check) is
hangar.attachments.writer; this module decides what to sign and reports per line.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from hangar import __version__, output
from hangar.attachments.bundles import BundleWriter, ReferrersApi
from hangar.attachments.writer import AttachmentWriter, Outcome
from hangar.errors import HangarError
from hangar.imagelist import ListEntry
from hangar.operations.bundle_signing import BundleSigner, SignatureFormat, subjects_of
from hangar.operations.concurrency import all_of
from hangar.operations.targets import (
    Selection,
    Target,
    select_targets,
    skipped_for_platform,
    with_attestations,
)
from hangar.reference import Reference
from hangar.registry.client import Manifest, RegistryClient
from hangar.results import (
    BundleSignRecord,
    ImageResult,
    LineProgress,
    SignRecord,
    Status,
    line_progress,
)
from hangar.sigstore.attachment import NewSignature, signature_tag
from hangar.sigstore.keys import SigningKey
from hangar.sigstore.payload import build_payload
from hangar.sigstore.referrers import Subject

IdentityMode = Literal["tag", "digest", "repository"]
CREATOR = f"hangar {__version__}"
# The final check runs this many times -j checks at once (the client pools 4 x -j connections).
CONFIRM_WIDTH = 4


@dataclass(frozen=True)
class SignOptions:
    oses: list[str]
    arches: list[str]
    identity_mode: IdentityMode = "tag"
    sign_index: bool = True
    force: bool = False
    sign_attestations: bool = False
    signature_format: SignatureFormat = "legacy"  # legacy (.sig), bundle, or both

    @property
    def legacy(self) -> bool:
        return self.signature_format in ("legacy", "both")

    @property
    def bundle(self) -> bool:
        return self.signature_format in ("bundle", "both")


# The list line being signed, for the failed file, should the final check lose its signature.
_current_line: contextvars.ContextVar[str] = contextvars.ContextVar("hangar_line", default="")


def identity_for(ref: Reference, digest: str, mode: IdentityMode) -> str:
    """The docker-reference written into the payload: `repository` is the name alone (what
    cosign writes), `tag` is name:tag when the line names a tag, else name@digest; see
    docs/formats.md for which form each consumer accepts."""
    if mode == "repository":
        return ref.name
    if mode == "tag" and ref.tag and not ref.digest:
        return f"{ref.name}:{ref.tag}"
    return f"{ref.name}@{digest}"


async def signing_targets(
    client: RegistryClient, ref: Reference, options: SignOptions
) -> tuple[list[Target], Selection, Manifest]:
    """What signing this image would sign: its manifest read, --os/--arch applied, the
    attestations and index added as asked (and the manifest). No targets: no platform matches
    (skipped).
    A registry error (not found, refused, unreachable) is raised, as a real run fails."""
    manifest = await client.get_manifest(ref)
    selection = await select_targets(
        client, ref, manifest, options.oses, options.arches, include_index=options.sign_index
    )
    targets = selection.targets
    if targets and options.sign_attestations:
        targets = with_attestations(manifest, targets)
    return targets, selection, manifest


async def plan_entry(client: RegistryClient, entry: ListEntry, options: SignOptions) -> ImageResult:
    """`sign --dry-run` for one line: resolved as a real run would (a missing image, a
    registry that refuses, no matching platform), nothing written. SIGNED here means "would
    be signed"; `details` holds the digests with their platform, `signatures` their number."""
    ref = entry.reference
    assert ref is not None
    targets, selection, _ = await signing_targets(client, ref, options)
    if not targets:
        have = ", ".join(selection.platforms) or "none"
        return ImageResult(
            Status.SKIPPED, f"no matching platform (it has {have})", platforms=selection.platforms
        )
    details: list[SignRecord] = [
        {
            "digest": target.digest,
            "platform": target.label,
            "identity": identity_for(ref, target.digest, options.identity_mode),
            "action": "would-sign",
        }
        for target in targets
    ]
    return ImageResult(Status.SIGNED, "", len(targets), details)


@dataclass
class Signer:
    client: RegistryClient
    key: SigningKey  # a key file's PrivateKey or a token's key: this module needs no more
    options: SignOptions
    writer: AttachmentWriter = field(init=False)

    def __post_init__(self) -> None:
        self.public_key = self.key.public_key()
        self.writer = AttachmentWriter(self.client, self.public_key, force=self.options.force)
        bundles = BundleWriter(self.client, self.writer, ReferrersApi())
        self.bundle_signer = BundleSigner(self.client, self.key, bundles, force=self.options.force)

    async def sign_entry(self, entry: ListEntry, number: int) -> ImageResult:
        ref = entry.reference
        assert ref is not None
        _current_line.set(entry.text)  # each job runs in its own task, so its own context
        targets, selection, manifest = await signing_targets(self.client, ref, self.options)
        if not targets:
            return skipped_for_platform(ref, selection, number)
        return await self._sign_targets(ref, targets, number, subjects_of(manifest))

    async def _sign_targets(
        self, ref: Reference, targets: list[Target], number: int, subjects: dict[str, Subject]
    ) -> ImageResult:
        """Sign the targets of one line at the same time (platforms, attestations, the
        index): each has its own `.sig` tag, and the writer serializes writes to one tag (an
        index that lists a digest twice). The images of a run overlap too, -j at a time."""
        # Records go in as each digest is done (a signature the moment the registry holds
        # it): a line cut short (--timeout, a second Ctrl-C) is reported with them.
        progress = line_progress()
        records: list[SignRecord] = [
            {
                "digest": target.digest,
                "platform": target.label,
                "identity": (
                    identity_for(ref, target.digest, self.options.identity_mode)
                    if self.options.legacy
                    else ""
                ),
            }
            for target in targets
        ]
        jobs = [
            self._sign_one(ref, target, record, number, subjects.get(target.digest), progress)
            for target, record in zip(targets, records, strict=True)
        ]
        errors = [error for found in await all_of(jobs) for error in found]
        written = progress.signatures
        if errors:
            return ImageResult(Status.FAILED, "; ".join(errors), written, records)
        status = Status.SIGNED if written else Status.ALREADY_SIGNED
        return ImageResult(status, "", written, records)

    async def _sign_one(
        self,
        ref: Reference,
        target: Target,
        record: SignRecord,
        number: int,
        subject: Subject | None,
        progress: LineProgress,
    ) -> list[str]:
        """One digest: its `.sig` signature, then its bundle (the bundle's trap check needs
        the layer just written), as the format asks. Fills `record`; returns the errors."""
        line = _current_line.get()
        errors: list[str] = []

        def landed() -> None:
            record["action"] = "signed"
            progress.details.append(record)
            progress.signatures += 1

        ours: frozenset[str] = frozenset()  # our .sig layer written now (the trap check)
        if self.options.legacy:
            try:
                outcome, ours = await self._sign_target(ref, target, line, landed)
            except HangarError as exc:
                record["action"], record["error"] = "failed", str(exc)
                errors.append(f"{target.label} {target.digest}: {exc}")
            else:
                verb = "Signed" if outcome == "signed" else "Already signed"
                output.info(f"{verb} [{ref.name}@{target.digest}] ({target.label})", image=number)
        if self.options.bundle:
            bundle = await self._sign_bundle(ref, target, subject, line, number, ours)
            record["bundle"] = bundle
            if bundle["action"] == "failed":
                errors.append(f"{target.label} {target.digest}: bundle: {bundle['error']}")
            progress.signatures += bundle["action"] == "signed"
            if not self.options.legacy:
                record["action"] = bundle["action"]
                if "error" in bundle:
                    record["error"] = bundle["error"]
        if not any(done is record for done in progress.details):
            record.setdefault("action", "already-signed")
            progress.details.append(record)
        return errors

    async def _sign_target(
        self, ref: Reference, target: Target, line: str, landed: Callable[[], None]
    ) -> tuple[Outcome, frozenset[str]]:
        """The .sig signature; the outcome, and the layer written (its payload digest)."""
        identity = identity_for(ref, target.digest, self.options.identity_mode)
        sig_ref = ref.with_tag(signature_tag(target.digest))
        new = await self._new_signature(identity, target.digest)
        outcome = await self.writer.write(
            sig_ref, target.digest, identity, new, line, landed=landed
        )
        return outcome, frozenset([new.digest] if outcome == "signed" else [])

    async def _sign_bundle(
        self,
        ref: Reference,
        target: Target,
        subject: Subject | None,
        line: str,
        number: int,
        ours: frozenset[str],
    ) -> BundleSignRecord:
        """The bundle of one digest (cosign v3's format), beside or instead of the .sig.
        `ours`: .sig layers this run just wrote (not read again for the trap check)."""
        try:
            if subject is None:  # an attestation manifest an index does not describe
                subject = await self.bundle_signer.subject(ref, target.digest)
            attached = await self.bundle_signer.sign(ref, subject, line, number, ours)
        except HangarError as exc:
            return {"action": "failed", "error": str(exc)}
        where = f"{ref.name}@{target.digest}] ({target.label})"
        if attached is None:
            output.info(f"Already signed (bundle) [{where}", image=number)
            return {"action": "already-signed"}
        output.info(f"Signed (bundle) [{where}", image=number)
        return {"action": "signed", "artifact": attached.artifact, "listed": attached.source}

    async def _new_signature(self, identity: str, digest: str) -> NewSignature:
        payload = build_payload(identity, digest, creator=CREATOR, timestamp=int(time.time()))
        # In a worker thread: a token call (or an RSA-4096 key) must not stall the other jobs.
        signature = await asyncio.to_thread(self.key.sign, payload)
        return NewSignature(payload=payload, signature=signature)

    async def confirm(self, concurrency: int = 8) -> list[str]:
        """The end-of-run check (AttachmentWriter.confirm): lines whose signature was lost.
        Its requests are mostly HEADs, light for the registry: as wide as the client's pool."""
        return await self.writer.confirm(concurrency * CONFIRM_WIDTH)
