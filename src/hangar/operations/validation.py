"""Validate one image line: would podman/CRI-O (and, when asked, cosign) accept it?

For every platform manifest passing --os/--arch (and the index with
--require-index-signature), the `.sig` attachment is fetched and each layer judged by the pure
rules of hangar.sigstore.verify, the same code the c/image fixtures are tested against.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

from hangar import output
from hangar.attachments.blobs import LayerBlob, fetch_layer_blobs, unreadable_reason
from hangar.attachments.bundles import ReferrersApi
from hangar.errors import HangarError
from hangar.imagelist import ListEntry
from hangar.operations.bundle_validation import (
    BundleCheck,
    ValidateFormat,
    check_bundles,
    consumer_notes,
)
from hangar.operations.targets import (
    Selection,
    Target,
    all_instances,
    select_targets,
    skipped_for_platform,
)
from hangar.reference import Reference
from hangar.registry.client import Manifest, RegistryClient
from hangar.registry.errors import NotFoundError
from hangar.results import DigestRecord, ImageResult, Status, ValidateRecord
from hangar.sigstore.attachment import parse_attachment, signature_tag
from hangar.sigstore.identity import (
    IdentityRule,
    exact_repository,
    match_exact,
    match_repo_digest_or_exact,
    match_repository,
)
from hangar.sigstore.keys import PublicKey
from hangar.sigstore.verify import LayerVerdict, verify_layers

PullBy = Literal["tag", "digest"]


@dataclass(frozen=True)
class ValidateOptions:
    oses: list[str]
    arches: list[str]
    exact_repository: str | None = None
    accept_repository_identity: bool = False
    require_tag_identity: bool = False
    require_index_signature: bool = False
    all_instances: bool = False  # every instance of an index, as `copy --all` checks them
    # Which pull of a line given by tag a PASS promises: "tag" (podman pull IMAGE:TAG, what
    # users do) or "digest" (only a pull by digest; a tag pull it would reject is a warning).
    pull_by: PullBy = "tag"
    # legacy: the .sig (podman's view); bundle: cosign v3's bundles; both; any.
    signature_format: ValidateFormat = "legacy"

    def rule(self) -> IdentityRule:
        if self.exact_repository:
            return exact_repository(self.exact_repository)
        if self.accept_repository_identity:
            return match_repository
        return match_repo_digest_or_exact


class AttachmentUnreadable(Exception):
    """The `.sig` tag holds something that is not a signature attachment."""


@dataclass
class DigestCheck:
    target: Target
    passed: bool
    reason: str
    verdicts: list[LayerVerdict]
    tag_pull: bool | None = None  # would a pull by the line's tag be accepted (None: n/a)
    # Set once both formats are judged (see Validator._check):
    legacy: tuple[bool, str] | None = None  # the .sig verdict
    bundle: BundleCheck | None = None
    notes: list[str] = field(default_factory=list)  # what one format means for the other side


class Validator:
    def __init__(
        self, client: RegistryClient, keys: list[PublicKey], options: ValidateOptions
    ) -> None:
        self.client = client
        self.keys = keys
        self.options = options
        self.rule = options.rule()
        self.referrers_api = ReferrersApi()

    async def validate_entry(self, entry: ListEntry, number: int) -> ImageResult:
        ref = entry.reference
        assert ref is not None
        manifest = await self.client.get_manifest(ref)
        selection = await self._all_instances(ref, manifest) or await select_targets(
            self.client,
            ref,
            manifest,
            self.options.oses,
            self.options.arches,
            include_index=self.options.require_index_signature,
        )
        if not selection.targets:
            return skipped_for_platform(ref, selection, number)
        targets = selection.targets
        checks = await asyncio.gather(*(self._check(ref, target) for target in targets))
        details: list[DigestRecord] = [self._record(check) for check in checks]
        failures = [check for check in checks if not check.passed]
        for check in checks:
            self._log_formats(ref, check, number)
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
            return ImageResult(Status.FAILED, message, len(checks) - len(failures), details)
        output.info(f"PASS: [{ref}]", image=number)
        return ImageResult(Status.PASSED, "", len(checks), details)

    async def _all_instances(self, ref: Reference, manifest: Manifest) -> Selection | None:
        """With --all-instances: every instance, whatever --os/--arch (None: not asked)."""
        if not self.options.all_instances:
            return None
        every = all_instances(manifest)
        if every is None:  # a single manifest: the image itself, whatever its platform
            return await select_targets(self.client, ref, manifest, [], [], include_index=False)
        platforms = tuple(target.label for target in every)
        if self.options.require_index_signature:
            every.append(Target(manifest.digest, "index"))
        return Selection(every, platforms)

    async def _check(self, ref: Reference, target: Target) -> DigestCheck:
        """Both formats of one digest (the bundles are read whatever the format asked, to name
        what they mean for cosign v3 and podman), judged as --signature-format says."""
        legacy, bundle = await asyncio.gather(
            self._check_legacy(ref, target),
            check_bundles(self.client, ref, target.digest, self.keys, self.referrers_api),
        )
        check = legacy
        check.legacy = (legacy.passed, legacy.reason)
        check.bundle = bundle
        check.notes = consumer_notes(ref, target.digest, legacy.passed, bundle)
        fmt = self.options.signature_format
        if fmt == "legacy":
            return check
        verdicts = {
            "legacy": (legacy.passed, legacy.reason),
            "bundle": (bundle.passed, bundle.reason),
        }
        wanted = ["bundle"] if fmt == "bundle" else ["legacy", "bundle"]
        passing = [name for name in wanted if verdicts[name][0]]
        check.passed = len(passing) == len(wanted) if fmt != "any" else bool(passing)
        if check.passed:
            check.reason = "accepted (" + ", ".join(passing) + ")"
        else:
            failing = [name for name in wanted if not verdicts[name][0]]
            check.reason = "; ".join(f"{name}: {verdicts[name][1]}" for name in failing)
        return check

    def _log_formats(self, ref: Reference, check: DigestCheck, number: int) -> None:
        """Per format what passed and why not (beyond the .sig verdict), and the notes."""
        where = f"[{ref}] {check.target.label} {check.target.digest}"
        if self.options.signature_format != "legacy" and check.legacy and check.bundle:
            for name, (passed, reason) in (
                ("legacy", check.legacy),
                ("bundle", (check.bundle.passed, check.bundle.reason)),
            ):
                verdict = "PASS" if passed else "FAIL"
                output.info(f"{name}: {verdict}: {where}: {reason}", image=number)
        for note in check.notes:
            output.warn(f"{where}: {note}", image=number)

    async def _check_legacy(self, ref: Reference, target: Target) -> DigestCheck:
        try:
            blobs = await self._layers(ref, target.digest)
        except AttachmentUnreadable as exc:  # a verdict on this digest, not a run error
            return DigestCheck(target, False, str(exc), [])
        if blobs is None:
            return DigestCheck(target, False, "no signature", [])
        layers = [(blob.layer, blob.data) for blob in blobs]
        image_reference = f"{ref.name}@{target.digest}"
        verdicts = verify_layers(
            target.digest, layers, self.keys, self.rule, image_reference=image_reference
        )
        for verdict, blob in zip(verdicts, blobs, strict=True):
            if blob.problem is not None and not verdict.accepted:
                verdict.reason = f"cannot be read: {blob.problem}"  # more precise than "missing"
        broken = unreadable_reason(blobs)
        if broken is not None:  # consumers stop at the first layer they cannot read
            return DigestCheck(target, False, broken, verdicts)
        if not any(verdict.accepted for verdict in verdicts):
            return DigestCheck(target, False, _summarize(verdicts), verdicts)
        by_tag = self._tag_pull(ref, target, layers)
        check = DigestCheck(target, True, "accepted", verdicts)
        if by_tag is not None:
            check.tag_pull = any(verdict.accepted for verdict in by_tag)
            if not check.tag_pull:
                check = self._digest_only(ref, target, by_tag, verdicts)
                if not check.passed:
                    return check
        if self.options.require_tag_identity and not target.is_index:
            return self._check_tag_identity(ref, target, layers, verdicts)
        if check.tag_pull is False:  # a PASS with --pull-by digest: say what it does not cover
            output.warn(f"[{ref}] {target.label} {target.digest}: {check.reason}")
        return check

    def _tag_pull(self, ref: Reference, target: Target, layers: list) -> list[LayerVerdict] | None:
        """The verdicts of a pull by the line's tag under the same rule (c/image checks the
        platform manifest it picks against the tag it was asked for); None for a line given
        by digest, and for the index (a pull by tag never consults its signatures)."""
        if not ref.tag or ref.digest or target.is_index:
            return None
        tagged = f"{ref.name}:{ref.tag}"
        return verify_layers(target.digest, layers, self.keys, self.rule, image_reference=tagged)

    def _digest_only(
        self,
        ref: Reference,
        target: Target,
        by_tag: list[LayerVerdict],
        verdicts: list[LayerVerdict],
    ) -> DigestCheck:
        """Accepted when pulled by digest, rejected when pulled by its tag: a FAIL unless
        --pull-by digest, then a PASS with a warning; either way the log and report say so."""
        why = f"a pull by tag ({ref.name}:{ref.tag}) is rejected: {_summarize(by_tag)}"
        if self.options.pull_by == "tag":
            reason = f"{why}; only a pull by digest is accepted (--pull-by digest)"
            return DigestCheck(target, False, reason, verdicts, tag_pull=False)
        return DigestCheck(target, True, f"accepted by digest only ({why})", verdicts, False)

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
            return DigestCheck(target, True, "accepted", verdicts, tag_pull=True)
        identities = sorted({v.identity for v in verdicts if v.accepted and v.identity})
        return DigestCheck(
            target,
            False,
            f"no signature with the tag identity {tagged} (--require-tag-identity); "
            f"signed as {', '.join(identities)}: podman/CRI-O reject a pull by tag",
            verdicts,
        )

    async def _layers(self, ref: Reference, digest: str) -> list[LayerBlob] | None:
        """The attachment's layers with their blobs; None when there is no `.sig` tag."""
        sig_ref = ref.with_tag(signature_tag(digest))
        try:
            manifest = await self.client.get_manifest(sig_ref)
        except NotFoundError:
            return None
        try:
            attachment = parse_attachment(manifest.data)
        except HangarError as exc:
            raise AttachmentUnreadable(f"unreadable signature attachment: {exc.message}") from None
        return await fetch_layer_blobs(self.client, ref, attachment)

    def _record(self, check: DigestCheck) -> ValidateRecord:
        record = self._legacy_record(check)
        if check.tag_pull is not None:
            record["tag_pull_accepted"] = check.tag_pull
        if check.legacy is not None and check.bundle is not None:
            bundle = check.bundle
            record["formats"] = {
                "legacy": {"passed": check.legacy[0], "reason": check.legacy[1]},
                "bundle": {
                    "passed": bundle.passed,
                    "reason": bundle.reason,
                    "source": bundle.source,
                    "bundles": bundle.bundles,
                },
            }
        record["notes"] = check.notes
        return record

    def _legacy_record(self, check: DigestCheck) -> ValidateRecord:
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
