"""What one image line came to: its status and the per-digest records of the --report.

Neutral ground between the domain (signing, validation, removal) and the runner (jobs): the
domain returns an ImageResult, the runner counts it, logs it and writes it to the report.
The status values and record keys appear in the output, the report and
docs/report.schema.json: they never change within a schemaVersion.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NotRequired, TypedDict


class Status(StrEnum):
    SIGNED = "signed"
    ALREADY_SIGNED = "already-signed"
    SKIPPED = "skipped"  # no platform passes --os/--arch
    MIRROR_FORMAT = "mirror-format"  # a SOURCE DEST TAG line, skipped
    FAILED = "failed"
    NOT_STARTED = "not-started"  # the run stopped before the line started
    PASSED = "passed"
    REMOVED = "removed"
    NOTHING_TO_REMOVE = "nothing-to-remove"


FAILED_STATUSES = frozenset({Status.FAILED, Status.NOT_STARTED})
# A line the final check fails was counted as one of these (sign, sign remove).
WRITTEN_STATUSES = (Status.SIGNED, Status.REMOVED)


# -- report records, one per digest of a line (the "digests" of a result) --------------------


class BundleSignRecord(TypedDict):
    """sign --signature-format bundle|both: what happened to one digest's bundle."""

    action: str  # signed, already-signed, failed
    artifact: NotRequired[str]  # the referrer manifest written
    listed: NotRequired[str]  # referrers-api, referrers-tag
    error: NotRequired[str]


class SignRecord(TypedDict):
    """sign: what happened to one digest."""

    digest: str
    platform: str
    identity: str  # the docker-reference written ("" when no .sig signature is written)
    action: NotRequired[str]  # signed, already-signed, failed
    error: NotRequired[str]
    bundle: NotRequired[BundleSignRecord]


class SignatureRecord(TypedDict):
    """validate: the verdict on one signature layer."""

    layer: str
    key: str | None  # the fingerprint of the key that verified it
    identity: str | None
    creator: str | None
    timestamp: int | None
    accepted: bool
    reason: str


class ValidateRecord(TypedDict):
    """validate: whether one digest is accepted."""

    digest: str
    platform: str
    passed: bool
    reason: str
    signatures: list[SignatureRecord]
    # lines given by tag, platform manifests: would a pull by that tag be accepted
    tag_pull_accepted: NotRequired[bool]
    # Per format (legacy: the .sig; bundle: cosign v3's bundles, one record per referrer).
    formats: NotRequired[dict[str, dict]]
    notes: NotRequired[list[str]]  # what one format means for consumers of the other


class PolicySignatureRecord(TypedDict):
    layer: str
    identity: str | None
    accepted: bool
    reason: str


class PolicyRecord(TypedDict):
    """validate --policy: the verdict on one digest pulled one way (by tag, by digest)."""

    digest: str
    platform: str
    pulled: str
    pulled_as: str
    scope: str
    verdict: str
    passed: bool
    reason: str
    signatures: list[PolicySignatureRecord]


class RemovedLayerRecord(TypedDict):
    digest: str
    reason: str


class RemoveRecord(TypedDict):
    """sign remove: what happened to one digest's signatures."""

    digest: str
    platform: str
    action: NotRequired[str]  # removed, removed-tag, would-remove, nothing-to-remove, failed
    error: NotRequired[str]
    layers: NotRequired[list[RemovedLayerRecord]]
    bundles: NotRequired[list[RemovedLayerRecord]]  # Sigstore bundles: artifact digest, reason


DigestRecord = SignRecord | ValidateRecord | PolicyRecord | RemoveRecord


@dataclass
class ImageResult:
    status: Status
    message: str = ""
    signatures: int = 0  # signatures written (sign) or removed, or verified digests (validate)
    details: Sequence[DigestRecord] = ()
    platforms: tuple[str, ...] = ()  # for "skipped": the platforms the image does have
    said_once: bool = False  # the message was logged once for all the lines it fails


@dataclass
class LineProgress:
    """What a line has done so far that stays done (a signature the registry holds), kept as
    it happens: the runner reports it however the line ends, cut short by --timeout or a
    second Ctrl-C included, so the report and the summary never say less than what was
    written."""

    details: list[DigestRecord] = field(default_factory=list)
    signatures: int = 0


_line_progress: ContextVar[LineProgress | None] = ContextVar("hangar_line_progress", default=None)


def start_line() -> LineProgress:
    """The runner, as a line starts (each job runs in its own task, so its own context)."""
    progress = LineProgress()
    _line_progress.set(progress)
    return progress


def line_progress() -> LineProgress:
    """The current line's progress (a fresh one outside the runner)."""
    return _line_progress.get() or LineProgress()
