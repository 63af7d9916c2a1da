"""`sign validate --signature-format`: the bundle side of one digest, checked as cosign v3
`verify --key KEY --insecure-ignore-tlog` checks it (discovery through the referrers API or the
fallback tag, then each bundle: DSSE signature, subject digest, predicate type named), and
what the two formats together mean for each consumer:

- cosign v3 `verify --key` reads only bundles once any parsable bundle exists, whatever the
  `.sig` holds: a digest whose `.sig` verifies with the keys given but which carries a bundle
  by another key fails there (the trap, named per digest);
- Kyverno `type: SigstoreBundle` fails a whole check on a bundle referrer it cannot read;
- podman/CRI-O (and policy-controller key authorities) read only `.sig`: a digest signed only
  by bundles looks unsigned to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from hangar import output
from hangar.attachments.bundles import Discovery, ReferrersApi, discover
from hangar.errors import HangarError
from hangar.reference import Reference
from hangar.registry.client import RegistryClient
from hangar.sigstore.bundle import BUNDLE_MEDIA_PREFIX, verify_bundle
from hangar.sigstore.keys import PublicKey
from hangar.sigstore.statement import COSIGN_SIGN_PREDICATE

ValidateFormat = Literal["legacy", "bundle", "both", "any"]


@dataclass
class BundleCheck:
    """The bundle verdict of one digest, and every referrer's."""

    passed: bool
    reason: str
    source: str = ""  # referrers-api, referrers-tag ("" when the lookup failed)
    bundles: list[dict] = field(default_factory=list)  # one record per referrer
    parsable: int = 0  # bundles cosign reads (its format switch)
    unreadable_bundles: list[str] = field(default_factory=list)  # Kyverno fails on these
    error: bool = False  # the referrers could not be read at all


async def check_bundles(
    client: RegistryClient, ref: Reference, digest: str, keys: list[PublicKey], api: ReferrersApi
) -> BundleCheck:
    """The bundles of `digest`, each verified with every key as cosign v3 does."""
    try:
        discovery = await discover(client, ref, digest, api)
    except HangarError as exc:
        return BundleCheck(False, f"cannot read the referrers: {exc}", error=True)
    return judge(discovery, digest, keys)


def judge(discovery: Discovery, digest: str, keys: list[PublicKey]) -> BundleCheck:
    records: list[dict] = []
    accepted: list[tuple[str, str]] = []  # (referrer, predicate type)
    reasons: list[str] = []
    for found in discovery.found:
        record: dict = {
            "referrer": found.referrer,
            "artifactType": found.artifact_type,
            "key": None,
            "accepted": False,
            "predicateType": None,
            "reason": found.reason,
        }
        if found.bundle is not None:
            for key in keys:
                verdict = verify_bundle(found.bundle, digest, key)
                record["predicateType"] = verdict.predicate_type or None
                if verdict.accepted:
                    record.update(key=key.fingerprint, accepted=True, reason="accepted")
                    accepted.append((found.referrer, verdict.predicate_type))
                    break
                record["reason"] = verdict.reason
            if not record["accepted"] and record["reason"] not in reasons:
                reasons.append(record["reason"])
        records.append(record)
    unreadable = [
        f.referrer
        for f in discovery.found
        if f.bundle is None and f.artifact_type.startswith(BUNDLE_MEDIA_PREFIX)
    ]
    check = BundleCheck(False, "", discovery.source, records, len(discovery.bundles), unreadable)
    if accepted:
        check.passed = True
        check.reason = "accepted"
        if all(predicate != COSIGN_SIGN_PREDICATE for _, predicate in accepted):
            check.reason = (
                f"accepted: an attestation bundle (predicate {accepted[0][1]}) verifies, which "
                "cosign verify takes as a signature; no cosign sign/v1 bundle does"
            )
    elif not discovery.bundles:
        where = "the referrers API" if discovery.source == "referrers-api" else "no referrers tag"
        check.reason = "no bundle" + (f" ({where})" if not discovery.found else "")
    else:
        check.reason = "no bundle verifies with the key(s) given: " + "; ".join(reasons)
    return check


def consumer_notes(
    ref: Reference, digest: str, legacy_passed: bool | None, bundles: BundleCheck | None
) -> list[str]:
    """What the two formats together mean for consumers that read only one of them."""
    if bundles is None or bundles.error:
        return []
    notes = []
    if legacy_passed and bundles.parsable and not bundles.passed:
        notes.append(
            "cosign v3 `verify --key` fails here although the .sig signature verifies: "
            f"{bundles.parsable} bundle(s) by other keys exist, and cosign v3 then reads only "
            "bundles (never .sig); add a bundle of this key (hangar sign --signature-format "
            "both), or verify with cosign v2"
        )
    if bundles.passed and legacy_passed is False:
        notes.append(
            "only a bundle verifies: podman, CRI-O, skopeo and policy-controller key "
            "authorities read only the .sig tag and see this digest as unsigned"
        )
    if bundles.unreadable_bundles:
        notes.append(
            f"Kyverno type SigstoreBundle fails on this digest: referrer "
            f"{bundles.unreadable_bundles[0]} is listed as a bundle but cannot be read as one"
        )
    for note in notes:
        output.debug(f"{ref.name}@{digest}: {note}")
    return notes
