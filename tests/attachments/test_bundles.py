"""Bundles through hangar.attachments.bundles on the in-memory registry: the referrers API path
(no registry of the test bed serves the referrers API; distribution 2.8 answers 404, so the
real-registry tests exercise the fallback tag only), and the fallback index written through
the `.sig` protocol: another writer's entry kept, ours put back by the final check."""

from __future__ import annotations

import asyncio
import json

from hangar.attachments.bundles import BundleWriter, Equivalence, ReferrersApi, discover
from hangar.errors import HangarError
from hangar.reference import Reference
from hangar.sigstore.bundle import build_bundle, verify_bundle
from hangar.sigstore.referrers import (
    Subject,
    add_referrer,
    build_artifact,
    index_entry,
    parse_index,
    referrers_tag,
)
from tests.support.memory_registry import MemoryRegistry, digest_of
from tests.support.write_protocol import (  # noqa: F401 - short_windows: autouse
    DIGEST,
    OURS,
    REGISTRY,
    REPOSITORY,
    THEIRS,
    short_windows,
    writer,
)

IMAGE = Reference(REGISTRY, REPOSITORY, "v1", None)
INDEX_REF = IMAGE.with_tag(referrers_tag(DIGEST))
SUBJECT = Subject("application/vnd.oci.image.manifest.v1+json", 123, DIGEST)


def artifact_of(key, created: str = "2026-12-03T14:33:14Z") -> tuple[bytes, bytes]:
    bundle = build_bundle(key, DIGEST)
    return bundle, build_artifact(bundle, SUBJECT, created)


def store_artifact(registry: MemoryRegistry, key) -> bytes:
    """Another writer's bundle artifact, stored by digest (not listed anywhere yet)."""
    bundle, artifact = artifact_of(key, "2026-01-01T00:00:00Z")
    registry.add_blob(REPOSITORY, bundle)
    registry.untagged[(REPOSITORY, digest_of(artifact))] = artifact
    return artifact


def listed(registry: MemoryRegistry) -> list[str]:
    data = registry.tag(INDEX_REF)
    return [r.digest for r in parse_index(data).referrers] if data else []


def test_with_the_referrers_api_the_registry_lists_the_artifact_and_no_tag_is_written() -> None:
    registry = MemoryRegistry()
    registry.referrers_api = True
    ours = writer(registry)
    bundles = BundleWriter(registry, ours, ReferrersApi())
    bundle, artifact = artifact_of(OURS)

    async def run() -> None:
        attached = await bundles.attach(IMAGE, DIGEST, bundle, artifact, "line")
        assert attached.source == "referrers-api"
        assert attached.artifact == digest_of(artifact)
        assert await ours.confirm() == []
        found = await discover(registry, IMAGE, DIGEST, ReferrersApi())
        assert found.source == "referrers-api"
        (item,) = found.bundles
        assert item.referrer == digest_of(artifact)
        assert item.bundle is not None
        assert verify_bundle(item.bundle, DIGEST, OURS.public_key()).is_signature
        assert not verify_bundle(item.bundle, DIGEST, THEIRS.public_key()).accepted

    asyncio.run(run())
    assert registry.tag(INDEX_REF) is None
    assert "PUT tag" not in registry.requests
    assert registry.untagged[(REPOSITORY, digest_of(artifact))] == artifact


def test_without_the_api_the_fallback_index_lists_it_and_the_probe_is_made_once() -> None:
    registry = MemoryRegistry()
    ours = writer(registry)
    api = ReferrersApi()
    bundles = BundleWriter(registry, ours, api)

    async def run() -> None:
        for key in (OURS, THEIRS):
            bundle, artifact = artifact_of(key)
            attached = await bundles.attach(IMAGE, DIGEST, bundle, artifact, "line")
            assert attached.source == "referrers-tag"
        assert await ours.confirm() == []

    asyncio.run(run())
    assert registry.requests.count("GET referrers") == 1
    assert api.known == {REGISTRY: False}
    assert len(listed(registry)) == 2
    assert listed(registry) == sorted(listed(registry))


def test_another_writers_entry_landing_between_our_read_and_put_is_kept() -> None:
    registry = MemoryRegistry()
    ours = writer(registry)
    bundles = BundleWriter(registry, ours, ReferrersApi())
    theirs = store_artifact(registry, THEIRS)
    bundle, artifact = artifact_of(OURS)
    done: list[bool] = []

    async def rival(_ref: Reference) -> None:
        if not done and _ref.tag == INDEX_REF.tag:
            done.append(True)  # their PUT lands after our read of the index
            registry.store(INDEX_REF, add_referrer(None, index_entry(theirs)))

    registry.on("after", "GET", rival)

    async def run() -> None:
        await bundles.attach(IMAGE, DIGEST, bundle, artifact, "line")
        assert await ours.confirm() == []

    asyncio.run(run())
    assert done
    assert set(listed(registry)) == {digest_of(theirs), digest_of(artifact)}


def test_the_final_check_puts_back_our_entry_that_another_writer_dropped() -> None:
    registry = MemoryRegistry()
    ours = writer(registry)
    bundles = BundleWriter(registry, ours, ReferrersApi())
    theirs = store_artifact(registry, THEIRS)
    bundle, artifact = artifact_of(OURS)

    async def run() -> list[str]:
        await bundles.attach(IMAGE, DIGEST, bundle, artifact, "line")
        # A writer whose read came before our PUT overwrites the index with its own entry.
        registry.store(INDEX_REF, add_referrer(None, index_entry(theirs)))
        return await ours.confirm()

    assert asyncio.run(run()) == []
    assert set(listed(registry)) == {digest_of(theirs), digest_of(artifact)}


def test_a_tag_that_is_no_referrers_index_is_left_alone_with_a_clear_error() -> None:
    registry = MemoryRegistry()
    ours = writer(registry)
    bundles = BundleWriter(registry, ours, ReferrersApi())
    other = json.dumps({"schemaVersion": 2, "mediaType": "application/x-other"}).encode()
    registry.store(INDEX_REF, other)
    bundle, artifact = artifact_of(OURS)

    async def run() -> str:
        try:
            await bundles.attach(IMAGE, DIGEST, bundle, artifact, "line")
        except HangarError as exc:
            return str(exc)
        return ""

    message = asyncio.run(run())
    assert "is not an OCI image index" in message
    assert "leaves it as it is" in message
    assert registry.tag(INDEX_REF) == other


def test_discovery_reads_every_referrer_and_says_why_one_is_not_a_bundle() -> None:
    registry = MemoryRegistry()
    sbom = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2,
                       "digest": "sha256:" + "00" * 32},
            "layers": [{"mediaType": "application/spdx+json", "size": 1,
                        "digest": "sha256:" + "11" * 32}],
            "subject": {"mediaType": SUBJECT.media_type, "size": 123, "digest": DIGEST},
        }
    ).encode()  # fmt: skip
    registry.untagged[(REPOSITORY, digest_of(sbom))] = sbom
    ours = store_artifact(registry, OURS)
    index = add_referrer(None, index_entry(sbom))
    index = add_referrer(parse_index(index), index_entry(ours))
    registry.store(INDEX_REF, index)

    found = asyncio.run(discover(registry, IMAGE, DIGEST, ReferrersApi()))
    assert found.source == "referrers-tag"
    assert found.index_digest == digest_of(index)
    reasons = {item.referrer: item.reason for item in found.found}
    assert "not a Sigstore bundle" in reasons[digest_of(sbom)]
    assert reasons[digest_of(ours)] == ""
    assert [item.referrer for item in found.bundles] == [digest_of(ours)]


def test_a_bundle_of_this_key_listed_meanwhile_makes_ours_unneeded() -> None:
    """Two runs with the same key on the same digest at once: both found no bundle, the other
    listed its own first. As the .sig protocol's equivalence: ours is not listed (and its
    artifact deleted again); a bundle of another key listed meanwhile changes nothing."""
    registry = MemoryRegistry()
    ours = writer(registry)
    bundles = BundleWriter(registry, ours, ReferrersApi())
    same_key = store_artifact(registry, OURS)
    other_key = store_artifact(registry, THEIRS)
    registry.store(
        INDEX_REF,
        add_referrer(
            parse_index(add_referrer(None, index_entry(other_key))), index_entry(same_key)
        ),
    )

    def is_ours(found) -> bool:
        return (
            found.bundle is not None
            and verify_bundle(found.bundle, DIGEST, OURS.public_key()).is_signature
        )

    bundle, artifact = artifact_of(OURS)
    equivalence = Equivalence(registry, IMAGE, frozenset(), is_ours)

    async def run() -> object:
        attached = await bundles.attach(IMAGE, DIGEST, bundle, artifact, "line", equivalence)
        assert await ours.confirm() == []
        return attached

    assert asyncio.run(run()) is None
    assert set(listed(registry)) == {digest_of(same_key), digest_of(other_key)}
    assert (REPOSITORY, digest_of(artifact)) not in registry.untagged
    # Without a bundle of this key among the new entries, ours is listed.
    registry.store(INDEX_REF, add_referrer(None, index_entry(other_key)))
    second, artifact2 = artifact_of(OURS, "2026-12-03T14:33:15Z")
    equivalence = Equivalence(registry, IMAGE, frozenset(), is_ours)
    attached = asyncio.run(bundles.attach(IMAGE, DIGEST, second, artifact2, "line", equivalence))
    assert attached is not None
    assert set(listed(registry)) == {digest_of(other_key), digest_of(artifact2)}


def test_an_artifact_put_refused_on_a_blob_being_relinked_is_made_again() -> None:
    """Another writer uploading `{}` again makes distribution refuse our artifact PUT for a
    moment (400 MANIFEST_BLOB_UNKNOWN): the blobs are checked and the PUT made again."""
    registry = MemoryRegistry()
    registry.faults.blob_race_puts = 2
    ours = writer(registry)
    bundles = BundleWriter(registry, ours, ReferrersApi())
    bundle, artifact = artifact_of(OURS)

    async def run() -> None:
        attached = await bundles.attach(IMAGE, DIGEST, bundle, artifact, "line")
        assert attached is not None and attached.artifact == digest_of(artifact)
        assert await ours.confirm() == []

    asyncio.run(run())
    assert registry.untagged[(REPOSITORY, digest_of(artifact))] == artifact
    assert listed(registry) == [digest_of(artifact)]
    assert registry.faults.blob_race_puts == 0


def test_the_targets_of_an_image_share_one_upload_of_the_empty_config() -> None:
    registry = MemoryRegistry()
    ours = writer(registry)
    bundles = BundleWriter(registry, ours, ReferrersApi())
    digests = [f"sha256:{n:064x}" for n in range(3)]

    async def run() -> None:
        jobs = []
        for digest in digests:
            bundle = build_bundle(OURS, digest)
            subject = Subject("application/vnd.oci.image.manifest.v1+json", 1, digest)
            artifact = build_artifact(bundle, subject, "2026-12-03T14:33:14Z")
            jobs.append(bundles.attach(IMAGE, digest, bundle, artifact, "line"))
        assert all(await asyncio.gather(*jobs))

    asyncio.run(run())
    # three bundles, and `{}` once: a second upload of the same bytes races the PUTs
    assert registry.counts()["PUSH blob"] == len(digests) + 1
