"""Manifest media types, sha256 digests, and the parts of a manifest hangar reads (platforms,
config, layers). The one home of these constants: hangar.sigstore uses them too.

Pure functions over bytes: no network here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from hangar.errors import HangarError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
IMAGE_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
SCHEMA1_TYPES = (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED)

# What the client asks for; schema1 is listed so that it can be recognized and reported.
ACCEPT = ", ".join(
    (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST, DOCKER_SCHEMA1_SIGNED, DOCKER_SCHEMA1)
)


class UnsupportedManifestError(HangarError):
    """A manifest kind hangar cannot sign (schema1, unknown media types)."""


def sha256_digest(data: bytes) -> str:
    """The OCI digest ("sha256:<hex>") of a blob or manifest."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""
    os_version: str = ""

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] | None = None

    @property
    def is_attestation(self) -> bool:
        annotations = self.annotations or {}
        return annotations.get("vnd.docker.reference.type") == "attestation-manifest"


def load_json(data: bytes, what: str = "manifest") -> dict:
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise HangarError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise HangarError(f"{what} is not a JSON object")
    return document


def detect_media_type(data: bytes, header_type: str | None) -> str:
    """The manifest's media type: its own mediaType field, else the Content-Type header."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        document = {}
    declared = document.get("mediaType") if isinstance(document, dict) else None
    if isinstance(declared, str) and declared:
        return declared
    if isinstance(document, dict) and document.get("schemaVersion") == 1:
        return DOCKER_SCHEMA1_SIGNED
    if isinstance(document, dict) and "manifests" in document:
        return OCI_INDEX
    base = (header_type or "").split(";")[0].strip()
    return base or OCI_MANIFEST


def _descriptor(entry: dict) -> Descriptor:
    platform = None
    raw_platform = entry.get("platform")
    if isinstance(raw_platform, dict):
        platform = Platform(
            os=str(raw_platform.get("os", "")),
            architecture=str(raw_platform.get("architecture", "")),
            variant=str(raw_platform.get("variant", "") or ""),
            os_version=str(raw_platform.get("os.version", "") or ""),
        )
    size = entry.get("size")
    if size is None:
        size = 0  # Go leaves a null or missing int64 at zero
    elif isinstance(size, bool) or not isinstance(size, int):
        # What containers/image's json decoding refuses (a string, a float, a list).
        raise HangarError(f"a descriptor's size is not an integer: {json.dumps(size)[:40]}")
    return Descriptor(
        media_type=str(entry.get("mediaType", "")),
        digest=str(entry.get("digest", "")),
        size=size,
        platform=platform,
        annotations=entry.get("annotations")
        if isinstance(entry.get("annotations"), dict)
        else None,
    )


def index_entries(data: bytes) -> list[Descriptor]:
    """The entries of an OCI index or Docker manifest list."""
    document = load_json(data)
    manifests = document.get("manifests")
    if not isinstance(manifests, list):
        raise HangarError("index has no manifests list")
    return [_descriptor(entry) for entry in manifests if isinstance(entry, dict)]


def config_descriptor(data: bytes) -> Descriptor:
    """The config descriptor of a single OCI or schema2 manifest."""
    document = load_json(data)
    config = document.get("config")
    if not isinstance(config, dict):
        raise HangarError("manifest has no config descriptor")
    return _descriptor(config)


def config_platform(config: bytes) -> Platform:
    """The platform an image config declares."""
    document = load_json(config, "image config")
    return Platform(
        os=str(document.get("os", "")),
        architecture=str(document.get("architecture", "")),
        variant=str(document.get("variant", "") or ""),
        os_version=str(document.get("os.version", "") or ""),
    )


def platform_matches(platform: Platform | None, oses: list[str], arches: list[str]) -> bool:
    """Whether a platform passes --os/--arch. `arm/v7` in --arch also matches a variant."""
    if platform is None or platform.os == "unknown" or platform.architecture == "unknown":
        return False
    if oses and platform.os not in oses:
        return False
    if not arches:
        return True
    for arch in arches:
        name, _, variant = arch.partition("/")
        if name == platform.architecture and (not variant or variant == platform.variant):
            return True
    return False


# Spellings containers/image and Docker normalize (containerd's platforms.Normalize, and the
# names `uname -m` prints), so that `--arch x86_64` means what the user meant.
_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "i386": "386",
    "aarch64": "arm64",
    "arm64/v8": "arm64",
    "armhf": "arm/v7",
    "armv7l": "arm/v7",
    "armv7": "arm/v7",
    "arm/7": "arm/v7",
    "armel": "arm/v6",
    "armv6l": "arm/v6",
    "arm/6": "arm/v6",
    "arm/5": "arm/v5",
}
_OS_ALIASES = {"macos": "darwin"}


def normalize_arch(text: str) -> str:
    lowered = text.strip().lower()
    return _ARCH_ALIASES.get(lowered, lowered)


def normalize_os(text: str) -> str:
    lowered = text.strip().lower()
    return _OS_ALIASES.get(lowered, lowered)


# Every GOOS and GOARCH Go knows (go/build's syslist.go, Go 1.22): the values an image platform
# can have, since the tools that build images (docker, buildah, ko) take them from Go's names.
KNOWN_OSES = [
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
]
KNOWN_ARCHITECTURES = [
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "arm64",
    "arm64be",
    "armbe",
    "loong64",
    "mips",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "mipsle",
    "ppc",
    "ppc64",
    "ppc64le",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
]


def unknown_platform_value(flag: str, value: str) -> str | None:
    """Why an --os/--arch value (already normalized) can match no image, or None when it can:
    the warning names the value, the nearest known names, and the usual spellings."""
    import difflib

    if flag == "--os":
        name, known, what = value, KNOWN_OSES, "an OS"
        common = "linux, windows, darwin, freebsd"
    else:
        name, known, what = value.partition("/")[0], KNOWN_ARCHITECTURES, "an architecture"
        common = "amd64, arm64, arm/v7, arm/v6, 386, ppc64le, s390x, riscv64"
    if name in known:
        return None
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    guess = f"did you mean {near[0]}? " if near else ""
    return (
        f"{flag} {value} is not {what} an image platform can have, so it matches nothing "
        f"({guess}known spellings: {common}; Go's GOOS/GOARCH names)"
    )
