"""The targets of one line are signed at the same time, and a new tag's 404 is checked beside
the uploads, not after them: the waits a run on a distant registry feels. Each test holds a
request back until the overlap it expects has happened; signing one target after the other
(or the check after the uploads) would wait forever, so a timeout fails it."""

from __future__ import annotations

import asyncio
import json

import pytest

from hangar.attachments.writer import AttachmentWriter
from hangar.imagelist import ListEntry
from hangar.manifest import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST
from hangar.operations.concurrency import all_of
from hangar.operations.signing import Signer, SignOptions
from hangar.reference import Reference, parse_reference
from hangar.results import Status
from hangar.sigstore.attachment import parse_attachment, signature_tag
from tests.support.memory_registry import MemoryRegistry, digest_of
from tests.support.write_protocol import (  # noqa: F401 - short_windows: autouse
    OURS,
    layer_keys,
    short_windows,
    signature,
    write,
    writer,
)

WAIT = 10.0  # seconds: far beyond what the overlap takes, short of hanging the suite
REPOSITORY = "ns/app"
PLATFORMS = ["amd64", "arm64", "s390x"]


def _document(data: dict) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def push_index(registry: MemoryRegistry) -> tuple[Reference, list[str]]:
    """A three-platform index at ns/app:v1; returns its reference and platform digests."""
    entries, digests = [], []
    for arch in PLATFORMS:
        config = registry.add_blob(REPOSITORY, _document({"architecture": arch, "os": "linux"}))
        manifest = _document(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config, "size": 1},
                "layers": [],
            }
        )
        registry.untagged[(REPOSITORY, digest_of(manifest))] = manifest
        digests.append(digest_of(manifest))
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest_of(manifest),
                "size": len(manifest),
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    index = _document({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    ref = parse_reference("registry.test/ns/app:v1")
    registry.store(ref, index)
    return ref, [*digests, digest_of(index)]


def signer(registry: MemoryRegistry) -> Signer:
    return Signer(registry, OURS, SignOptions(oses=[], arches=[]))  # type: ignore[arg-type]


def hold_puts_until(registry: MemoryRegistry, step: str, count: int) -> list[str]:
    """Every manifest PUT waits until `count` requests of `step` (`GET` of `.sig` tags,
    `HEAD`...) were sent; returns the log of the PUTs let through."""
    seen = asyncio.Event()
    sent = 0
    let_through: list[str] = []

    async def counted(ref: Reference) -> None:
        nonlocal sent
        if ref.tag and ref.tag.endswith(".sig"):
            sent += 1
            if sent >= count:
                seen.set()

    async def held(ref: Reference) -> None:
        await asyncio.wait_for(seen.wait(), WAIT)
        let_through.append(str(ref))

    registry.on("before", step, counted)
    registry.on("before", "PUT", held)
    return let_through


def test_an_images_targets_are_signed_at_the_same_time() -> None:
    registry = MemoryRegistry()
    ref, digests = push_index(registry)
    # No PUT goes out before every target's tag was read: one after another would hang here.
    let_through = hold_puts_until(registry, "GET", len(digests))
    entry = ListEntry(1, str(ref), ref, None, None)

    async def run() -> tuple:
        sign = signer(registry)
        result = await sign.sign_entry(entry, 1)
        return result, await sign.confirm()

    result, lost = asyncio.run(run())
    assert lost == []
    assert result.status == Status.SIGNED, result.message
    assert result.signatures == len(digests) == len(let_through)
    # The report keeps the targets' order (platforms, then the index), whatever landed first.
    assert [record["digest"] for record in result.details] == digests
    assert [record["platform"] for record in result.details][-1] == "index"
    for digest in digests:
        tag = registry.tag(ref.with_tag(signature_tag(digest)))
        assert tag is not None and len(parse_attachment(tag).layers) == 1


def test_a_failed_target_fails_the_line_and_the_others_are_still_signed() -> None:
    registry = MemoryRegistry()
    ref, digests = push_index(registry)
    registry.faults.reject_puts = 1  # one PUT is refused (400 MANIFEST_INVALID), not retried
    entry = ListEntry(1, str(ref), ref, None, None)
    result = asyncio.run(signer(registry).sign_entry(entry, 1))
    assert result.status == Status.FAILED
    assert result.signatures == len(digests) - 1
    assert [record["action"] for record in result.details].count("failed") == 1
    assert result.message.count("sha256:") == 1


def test_a_new_tags_404_is_checked_beside_the_uploads() -> None:
    """The HEAD confirming the 404 goes out while the blobs upload: here the uploads cannot
    finish until it was sent."""
    registry = MemoryRegistry()
    headed = asyncio.Event()

    async def head_sent(ref: Reference) -> None:
        headed.set()

    async def upload_waits(ref: Reference) -> None:
        await asyncio.wait_for(headed.wait(), WAIT)

    registry.on("before", "HEAD", head_sent)
    registry.on("before", "PUSH", upload_waits)
    ours: AttachmentWriter = writer(registry)
    assert asyncio.run(write(ours, signature(OURS))) == "signed"
    assert layer_keys(registry) == ["ours"]
    assert registry.requests.index("HEAD tag") < registry.requests.index("PUT tag")


async def _fails_after(delay: float, message: str) -> None:
    await asyncio.sleep(delay)
    raise ValueError(message)


def test_all_of_keeps_the_order_of_its_jobs() -> None:
    async def after(delay: float, value: int) -> int:
        await asyncio.sleep(delay)
        return value

    assert asyncio.run(all_of([after(0.03, 1), after(0.0, 2), after(0.01, 3)])) == [1, 2, 3]


def test_all_of_raises_the_first_error_as_it_is_and_cancels_the_rest() -> None:
    cancelled = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def run() -> None:
        with pytest.raises(ValueError, match="boom"):
            await all_of([slow(), _fails_after(0.01, "boom")])
        assert cancelled.is_set()

    asyncio.run(run())
