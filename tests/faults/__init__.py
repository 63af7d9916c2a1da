"""Fault and concurrency tests: the real `hangar` against a real registry that misbehaves.

Shared helpers (used by test_faults.py and test_concurrency.py): which key made each layer of a
`.sig` attachment, read with the test bed's own HTTP client and verified with `cryptography`,
independently of hangar's code.
"""

from __future__ import annotations

from pathlib import Path

from tests.support import http
from tests.support.cli import read_attachment, sig_tag, verify_with
from tests.support.images import PushedImage
from tests.support.registry import RegistryServer

# What `hangar sign` signs by default (--os linux --arch amd64,arm64, and the index).
DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64")


def sign_targets(image: PushedImage) -> list[str]:
    """The digests a default `hangar sign` run signs for a multi-arch image."""
    return [image.platforms[platform] for platform in DEFAULT_PLATFORMS] + [image.digest]


def layer_keys(
    server: RegistryServer, repository: str, digest: str, public_keys: dict[str, Path]
) -> list[str]:
    """The name of the key behind each layer of `digest`'s attachment, in layer order ("?" for
    a layer no key verifies); [] when the digest has no `.sig` tag."""
    if http.head_manifest(server, repository, sig_tag(digest)) is None:
        return []
    _, _, layers = read_attachment(server, repository, digest)
    names = []
    for layer in layers:
        matching = [
            name
            for name, public_key in public_keys.items()
            if verify_with(public_key, layer.signature, layer.payload)
        ]
        names.append(matching[0] if matching else "?")
    return names


def layer_snapshot(
    server: RegistryServer, repository: str, digest: str, public_key: Path
) -> list[tuple[dict, bytes]]:
    """(descriptor, payload bytes) of every layer `public_key` verifies: what must survive."""
    _, _, layers = read_attachment(server, repository, digest)
    return [
        (layer.descriptor, layer.payload)
        for layer in layers
        if verify_with(public_key, layer.signature, layer.payload)
    ]
