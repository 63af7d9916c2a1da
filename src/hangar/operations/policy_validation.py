"""`sign validate --policy`: the verdict podman/CRI-O give when they pull each image, from the
user's own policy.json and registries.d (hangar.policy), without pulling anything.

Each image is evaluated as pulled by tag (when listed by tag) and by digest, for each platform
manifest that --os/--arch select (or every instance with --all-instances, as `copy --all`):
c/image checks the signatures of the platform manifest it picked, against the reference the
user pulled. The `.sig` attachment is read once per digest, when a sigstoreSigned requirement
will look at it or registries.d turns attachments on for the pull: a pull copies the
signatures with the image, fetching every layer whatever the policy, so a layer that cannot be
fetched fails it even under insecureAcceptAnything.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hangar import output
from hangar.attachments.blobs import unreadable_reason
from hangar.imagelist import ListEntry
from hangar.operations.targets import Target, select_targets, skipped_for_platform
from hangar.operations.validation import AttachmentUnreadable, ValidateOptions, Validator
from hangar.policy.context import PolicyContext
from hangar.policy.evaluation import (
    ACCEPTED,
    REJECTED,
    UNCHECKED,
    Signatures,
    Verdict,
    evaluate,
    needs_signatures,
)
from hangar.reference import Reference
from hangar.registry.client import RegistryClient
from hangar.results import DigestRecord, ImageResult, PolicyRecord, Status

LABELS = {ACCEPTED: "ACCEPTED", REJECTED: "REJECTED", UNCHECKED: "NOT CHECKED"}


@dataclass(frozen=True)
class Pull:
    how: str  # "by tag", "by digest"
    reference: str  # what c/image matches identities against: host/repo:tag, host/repo@digest


@dataclass
class PullVerdict:
    target: Target
    pull: Pull
    scope: str
    verdict: Verdict


def pulls_of(ref: Reference, listed_digest: str) -> list[Pull]:
    """By tag and by the digest the tag resolves to; a line listed by digest only by digest
    (c/image refuses a reference with both a tag and a digest)."""
    if ref.digest:
        return [Pull("by digest", f"{ref.name}@{ref.digest}")]
    return [
        Pull("by tag", f"{ref.name}:{ref.tag or 'latest'}"),
        Pull("by digest", f"{ref.name}@{listed_digest}"),
    ]


class PolicyValidator(Validator):
    def __init__(
        self, client: RegistryClient, context: PolicyContext, options: ValidateOptions
    ) -> None:
        super().__init__(client, [], options)
        self.context = context

    async def validate_entry(self, entry: ListEntry, number: int) -> ImageResult:
        ref = entry.reference
        assert ref is not None
        manifest = await self.client.get_manifest(ref)
        selection = await self._all_instances(ref, manifest) or await select_targets(
            self.client, ref, manifest, self.options.oses, self.options.arches, include_index=False
        )
        if not selection.targets:
            return skipped_for_platform(ref, selection, number)
        targets = selection.targets
        pulls = pulls_of(ref, manifest.digest)
        per_target = await asyncio.gather(*(self._judge(ref, t, pulls) for t in targets))
        verdicts = [verdict for group in per_target for verdict in group]
        for target, group in zip(targets, per_target, strict=True):
            _log(ref, target, group, number)
        refused = [t.label for t, group in zip(targets, per_target, strict=True) if _failed(group)]
        details: list[DigestRecord] = [_record(verdict) for verdict in verdicts]
        if refused:
            message = (
                f"{len(refused)} of {len(targets)} platform(s) not accepted ({', '.join(refused)})"
            )
            return ImageResult(Status.FAILED, message, len(targets) - len(refused), details)
        return ImageResult(Status.PASSED, "", len(targets), details)

    async def _judge(self, ref: Reference, target: Target, pulls: list[Pull]) -> list[PullVerdict]:
        scoped = [(pull, *self.context.requirements_for(pull.reference)) for pull in pulls]
        registries = self.context.registries
        copied = [registries.use_sigstore_attachments(pull.reference) for pull in pulls]
        signatures = None
        if any(copied) or any(needs_signatures(reqs) for _, _, reqs in scoped):
            signatures = await self._signatures(ref, target.digest)
        results = []
        for (pull, scope, requirements), reads in zip(scoped, copied, strict=True):
            seen = self._as_seen_by_podman(ref, pull, signatures)
            verdict = evaluate(requirements, pull.reference, target.digest, seen, self.context.keys)
            if reads and signatures is not None and signatures.unreadable is not None:
                verdict = _copy_fails(verdict, signatures.unreadable)
            results.append(PullVerdict(target, pull, scope, verdict))
        return results

    def _as_seen_by_podman(
        self, ref: Reference, pull: Pull, signatures: Signatures | None
    ) -> Signatures | None:
        """podman reads no attachment where registries.d leaves use-sigstore-attachments off."""
        if signatures is None or self.context.registries.use_sigstore_attachments(pull.reference):
            return signatures
        return Signatures(attachments_off_for=ref.registry)

    async def _signatures(self, ref: Reference, digest: str) -> Signatures:
        try:
            blobs = await self._layers(ref, digest)
        except AttachmentUnreadable as exc:
            return Signatures(unreadable=str(exc))
        if blobs is None:
            return Signatures()
        return Signatures([(b.layer, b.data) for b in blobs], unreadable=unreadable_reason(blobs))


def _copy_fails(verdict: Verdict, unreadable: str) -> Verdict:
    """The pull copies the signatures it reads: one layer that cannot be fetched fails it,
    whatever the policy said (c/image's copySignatures, after the policy check)."""
    if verdict.status == REJECTED:
        return verdict  # the policy's own reason comes first, as in c/image
    reason = f"{unreadable} (podman/CRI-O fetch every signature layer as they pull)"
    return Verdict(REJECTED, reason, verdict.layers)


def _failed(group: list[PullVerdict]) -> bool:
    return any(item.verdict.status != ACCEPTED for item in group)


def _log(ref: Reference, target: Target, group: list[PullVerdict], number: int) -> None:
    where = f"[{ref}] {target.label} {target.digest}"
    if not _failed(group):
        hows = ", ".join(item.pull.how for item in group)
        output.info(f"ACCEPTED: {where}: pulled {hows}", image=number)
        return
    for item in group:
        label = LABELS[item.verdict.status]
        line = f"{label}: {where} pulled {item.pull.how} as {item.pull.reference} ({item.scope})"
        if item.verdict.status == ACCEPTED:
            output.info(line, image=number)
        else:
            output.error(f"{line}: {item.verdict.reason}", image=number)


def _record(item: PullVerdict) -> PolicyRecord:
    return {
        "digest": item.target.digest,
        "platform": item.target.label,
        "pulled": item.pull.how,
        "pulled_as": item.pull.reference,
        "scope": item.scope,
        "verdict": LABELS[item.verdict.status],
        "passed": item.verdict.status == ACCEPTED,
        "reason": item.verdict.reason,
        "signatures": [
            {
                "layer": layer.layer_digest,
                "identity": layer.identity,
                "accepted": layer.accepted,
                "reason": layer.reason,
            }
            for layer in item.verdict.layers
        ],
    }
