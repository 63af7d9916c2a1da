"""What the write protocol's unit tests share (tests/attachments/test_writer.py and
tests/attachments/test_removal.py): one `.sig` tag on the in-memory registry, two signers, a
rival writer, and short windows. A test module uses the windows by importing `short_windows`
(an autouse fixture)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from hangar import output
from hangar.attachments import confirm as attachment_confirm
from hangar.attachments import merge as attachment_merge
from hangar.attachments.writer import AttachmentWriter
from hangar.reference import Reference
from hangar.registry.retry import RetryPolicy
from hangar.sigstore.attachment import (
    NewSignature,
    append_signatures,
    parse_attachment,
    signature_tag,
)
from hangar.sigstore.keys import PrivateKey
from hangar.sigstore.payload import build_payload
from tests.support.memory_registry import MemoryRegistry

REGISTRY = "registry.test"
REPOSITORY = "ns/app"
DIGEST = "sha256:" + "ab" * 32
IDENTITY = f"{REGISTRY}/{REPOSITORY}:v1"
SIG_REF = Reference(REGISTRY, REPOSITORY, signature_tag(DIGEST), None)
NO_WAIT = RetryPolicy(retries=2, base_delay=0.0)
FRESH_MIN = 0.25  # seconds; a stall meant to make a check stale lasts longer


@pytest.fixture(autouse=True)
def short_windows(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settle windows short enough for unit tests, and debug lines captured. Freshness stays
    at FRESH_MIN: a loaded machine can stall a test for tens of milliseconds between a check
    and its write, which would make a check stale that the test expects fresh."""
    monkeypatch.setattr(attachment_merge, "CHECK_FRESH_MIN", FRESH_MIN)
    monkeypatch.setattr(attachment_confirm, "SETTLE_MIN", 0.0)
    monkeypatch.setattr(attachment_merge, "MERGE_JITTER", 0.0)
    output.set_debug(True)
    yield
    output.set_debug(False)


def make_key() -> PrivateKey:
    return PrivateKey(ec.generate_private_key(ec.SECP256R1()))


OURS, THEIRS = make_key(), make_key()


def signature(key: PrivateKey, *, identity: str = IDENTITY, timestamp: int = 1) -> NewSignature:
    payload = build_payload(identity, DIGEST, creator="test", timestamp=timestamp)
    return NewSignature(payload=payload, signature=key.sign(payload))


def writer(registry: MemoryRegistry, key: PrivateKey = OURS, **options) -> AttachmentWriter:
    options.setdefault("write_policy", NO_WAIT)
    return AttachmentWriter(registry, key.public_key(), **options)


async def write(target: AttachmentWriter, new: NewSignature, line: str = "line") -> str:
    return await target.write(SIG_REF, DIGEST, IDENTITY, new, line)


def layer_keys(registry: MemoryRegistry) -> list[str]:
    """Who signed each layer of the tag, in order ("?" for neither key)."""
    data = registry.tag(SIG_REF)
    if data is None:
        return []
    names = []
    for layer in parse_attachment(data).layers:
        payload = registry.blobs[(REPOSITORY, layer.digest)]
        assert layer.signature is not None
        if OURS.public_key().verify(layer.signature, payload):
            names.append("ours")
        elif THEIRS.public_key().verify(layer.signature, payload):
            names.append("theirs")
        else:
            names.append("?")
    return names


def rival_put(registry: MemoryRegistry, base: bytes | None, new: NewSignature) -> bytes:
    """Another writer's merge of `new` into `base` (what it read), stored at once."""
    registry.add_blob(REPOSITORY, new.payload)
    attachment = parse_attachment(base) if base else None
    config = None
    if attachment is not None:
        config = registry.blobs[(REPOSITORY, attachment.config["digest"])]
    manifest, config_bytes = append_signatures(attachment, config, [new])
    registry.add_blob(REPOSITORY, config_bytes)
    registry.store(SIG_REF, manifest)
    return manifest


def presign(registry: MemoryRegistry, key: PrivateKey, **kwargs) -> NewSignature:
    new = signature(key, **kwargs)
    rival_put(registry, registry.tag(SIG_REF), new)
    return new


def once(action):
    """A hook that acts the first time only."""
    done = []

    async def hook(_ref: Reference) -> None:
        if not done:
            done.append(True)
            await action()

    return hook
