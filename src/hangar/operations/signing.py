"""Sign one image line: resolve its manifest, pick the digests to sign, write attachments.

The `.sig` write protocol itself (merging with other writers, the end-of-run check) is
hangar.attachments.writer; this module decides what to sign and reports per line.
"""

from __future__ import annotations

import contextvars
import time
from dataclasses import dataclass, field
from typing import Literal

from hangar import __version__, output
from hangar.attachments.writer import AttachmentWriter, Outcome
from hangar.errors import HangarError
from hangar.imagelist import ListEntry
from hangar.operations.targets import (
    Selection,
    Target,
    select_targets,
    skipped_for_platform,
    with_attestations,
)
from hangar.reference import Reference
from hangar.registry.client import RegistryClient
from hangar.results import ImageResult, SignRecord, Status
from hangar.sigstore.attachment import NewSignature, signature_tag
from hangar.sigstore.keys import PrivateKey
from hangar.sigstore.payload import build_payload

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
) -> tuple[list[Target], Selection]:
    """What signing this image would sign: its manifest read, --os/--arch applied, the
    attestations and index added as asked. No targets: no platform matches (skipped).
    A registry error (not found, refused, unreachable) is raised, as a real run fails."""
    manifest = await client.get_manifest(ref)
    selection = await select_targets(
        client, ref, manifest, options.oses, options.arches, include_index=options.sign_index
    )
    targets = selection.targets
    if targets and options.sign_attestations:
        targets = with_attestations(manifest, targets)
    return targets, selection


async def plan_entry(client: RegistryClient, entry: ListEntry, options: SignOptions) -> ImageResult:
    """`sign --dry-run` for one line: resolved as a real run would (a missing image, a
    registry that refuses, no matching platform), nothing written. SIGNED here means "would
    be signed"; `details` holds the digests with their platform, `signatures` their number."""
    ref = entry.reference
    assert ref is not None
    targets, selection = await signing_targets(client, ref, options)
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
    key: PrivateKey
    options: SignOptions
    writer: AttachmentWriter = field(init=False)

    def __post_init__(self) -> None:
        self.public_key = self.key.public_key()
        self.writer = AttachmentWriter(self.client, self.public_key, force=self.options.force)

    async def sign_entry(self, entry: ListEntry, number: int) -> ImageResult:
        ref = entry.reference
        assert ref is not None
        _current_line.set(entry.text)  # each job runs in its own task, so its own context
        targets, selection = await signing_targets(self.client, ref, self.options)
        if not targets:
            return skipped_for_platform(ref, selection, number)
        return await self._sign_targets(ref, targets, number)

    async def _sign_targets(
        self, ref: Reference, targets: list[Target], number: int
    ) -> ImageResult:
        """Sign the targets one after the other (each signature's own requests overlap; the
        images of a run do too, -j at a time)."""
        line = _current_line.get()
        details: list[SignRecord] = []
        written = 0
        errors: list[str] = []
        for target in targets:
            identity = identity_for(ref, target.digest, self.options.identity_mode)
            record: SignRecord = {
                "digest": target.digest,
                "platform": target.label,
                "identity": identity,
            }
            try:
                outcome = await self._sign_target(ref, target, line)
            except HangarError as exc:
                record["action"], record["error"] = "failed", str(exc)
                errors.append(f"{target.label} {target.digest}: {exc}")
            else:
                record["action"] = outcome
                written += outcome == "signed"
                verb = "Signed" if outcome == "signed" else "Already signed"
                output.info(f"{verb} [{ref.name}@{target.digest}] ({target.label})", image=number)
            details.append(record)
        if errors:
            return ImageResult(Status.FAILED, "; ".join(errors), written, details)
        status = Status.SIGNED if written else Status.ALREADY_SIGNED
        return ImageResult(status, "", written, details)

    async def _sign_target(self, ref: Reference, target: Target, line: str) -> Outcome:
        identity = identity_for(ref, target.digest, self.options.identity_mode)
        sig_ref = ref.with_tag(signature_tag(target.digest))
        new = self._new_signature(identity, target.digest)
        return await self.writer.write(sig_ref, target.digest, identity, new, line)

    def _new_signature(self, identity: str, digest: str) -> NewSignature:
        payload = build_payload(identity, digest, creator=CREATOR, timestamp=int(time.time()))
        return NewSignature(payload=payload, signature=self.key.sign(payload))

    async def confirm(self, concurrency: int = 8) -> list[str]:
        """The end-of-run check (AttachmentWriter.confirm): lines whose signature was lost.
        Its requests are mostly HEADs, light for the registry: as wide as the client's pool."""
        return await self.writer.confirm(concurrency * CONFIRM_WIDTH)
