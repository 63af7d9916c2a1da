"""Identity rules: whether a signature's docker-reference is accepted for an image, as
containers/image's `signature/policy_reference_match.go` decides (docs/formats.md sums up
which identity each consumer checks).

References are parsed like c/image's `reference.ParseNormalizedNamed` (c/image 5.29): `busybox`
is `docker.io/library/busybox`, a first component holding `.` or `:` or equal to `localhost` is a
registry, names must be lowercase. A signature reference with neither tag nor digest is
"name-only" (what cosign writes). The image reference is what the image was pulled as, with its
tag or digest: c/image's docker transport adds `:latest` to a bare name before these rules run
(hangar.reference does the same), so a name-only image reference is only accepted by the
repository rules, exactly as c/image's policy code treats one.

This module does its own minimal parsing on purpose: verification must not depend on the CLI's
reference handling (hangar.reference adds --registry/--project overrides and other conveniences).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from hangar.errors import InvalidReferenceError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPOSITORY_PREFIX = "library"
NAME_TOTAL_LENGTH_MAX = 255

# distribution/reference's grammar (regexp.go), ASCII only, as Go's regexp classes are.
_NAME_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*"
_REFERENCE_RE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?", re.ASCII)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}")
# go-digest's available algorithms and their hex lengths.
_DIGEST_HEX_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}


@dataclass(frozen=True)
class DockerReference:
    """A normalized docker reference: `name[:tag][@digest]`."""

    name: str  # "docker.io/library/busybox", "127.0.0.1:5000/ns/app"
    tag: str | None
    digest: str | None

    @property
    def is_name_only(self) -> bool:
        return self.tag is None and self.digest is None

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def parse_docker_reference(text: str) -> DockerReference:
    """reference.ParseNormalizedNamed; InvalidReferenceError says why it does not parse."""
    if _IDENTIFIER_RE.fullmatch(text):
        raise _invalid(text, "a 64-character hexadecimal string is not a repository name")
    domain, remainder = _split_docker_domain(text)
    remote_name = remainder.split(":", 1)[0]
    if remote_name.lower() != remote_name:
        raise _invalid(text, "the repository name must be lowercase")
    match = _REFERENCE_RE.fullmatch(f"{domain}/{remainder}")
    if match is None:
        raise _invalid(text, "it is not a valid docker reference")
    name, tag, digest = match.groups()
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise _invalid(text, f"the name is longer than {NAME_TOTAL_LENGTH_MAX} characters")
    if digest is not None:
        _check_digest(text, digest)
    return DockerReference(name, tag, digest)


def _split_docker_domain(text: str) -> tuple[str, str]:
    """splitDockerDomain of c/image 5.29: the registry part, with Docker Hub's defaults."""
    first, slash, rest = text.partition("/")
    if not slash or (not any(c in first for c in ".:") and first != "localhost"):
        domain, remainder = DEFAULT_DOMAIN, text
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = f"{OFFICIAL_REPOSITORY_PREFIX}/{remainder}"
    return domain, remainder


def _check_digest(text: str, digest: str) -> None:
    algorithm, _, encoded = digest.partition(":")
    length = _DIGEST_HEX_LENGTHS.get(algorithm)
    if length is None:
        raise _invalid(text, f"digest algorithm {algorithm!r} is not supported")
    if len(encoded) != length or not re.fullmatch(r"[a-f0-9]+", encoded):
        raise _invalid(text, f"the {algorithm} digest is not {length} lowercase hex characters")


def _invalid(text: str, why: str) -> InvalidReferenceError:
    return InvalidReferenceError(
        f"invalid docker reference {text!r}: {why}",
        hint="write it as registry/repository:tag or registry/repository@sha256:<hex>",
    )


def _parse_signed(text: str) -> DockerReference | None:
    """The signature's docker-reference; None when c/image could not parse it (no match)."""
    try:
        return parse_docker_reference(text)
    except InvalidReferenceError:
        return None


# --- rules -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityRule:
    """A c/image `signedIdentity` rule. Call it as `rule(image_reference, signed_reference)`.

    `image_reference` is what the image was pulled as (`repo:tag` or `repo@digest`); the exact*
    rules ignore it. An unparsable image reference raises InvalidReferenceError; an unparsable
    signed reference is simply not accepted (as in c/image).
    """

    name: str  # the policy.json type: "matchRepoDigestOrExact", "exactReference", ...
    match: Callable[[DockerReference | None, DockerReference], bool]
    expected: str | None = None  # the configured reference/repository of the exact* rules
    uses_image: bool = True
    remap: tuple[str, str] | None = None  # remapIdentity's (prefix, signedPrefix)

    def __call__(self, image_reference: str, signed_reference: str) -> bool:
        intended = parse_docker_reference(image_reference) if self.uses_image else None
        signed = _parse_signed(signed_reference)
        return signed is not None and self.match(intended, signed)

    def explain(self, image_reference: str, signed_reference: str) -> str:
        """Why signed_reference is refused, in plain words."""
        target = self.expected if self.expected is not None else image_reference
        text = f"identity {signed_reference} does not match {target} ({self.name})"
        if self.remap is not None:
            text = f"{text[:-1]} {self.remap[0]} -> {self.remap[1]})"
        signed = _parse_signed(signed_reference)
        if signed is None:
            return f"{text}: not a valid docker reference"
        if signed.is_name_only and self.name in _NEEDS_TAG_OR_DIGEST:
            return f"{text}: the signature names no tag or digest"
        return text


_NEEDS_TAG_OR_DIGEST = ("matchRepoDigestOrExact", "matchExact", "exactReference", "remapIdentity")


def _require(image: DockerReference | None) -> DockerReference:
    if image is None:  # only the exact* rules run without an image, and they never get here
        raise ValueError("this identity rule needs the image reference")
    return image


def _repo_digest_or_exact(image: DockerReference | None, signed: DockerReference) -> bool:
    intended = _require(image)
    if signed.is_name_only:
        return False
    if intended.tag is not None:  # pulled by tag (maybe with a digest too): exact match
        return str(signed) == str(intended)
    if intended.digest is not None:  # pulled by digest: the repositories must be the same
        return signed.name == intended.name
    return False


def _exact(image: DockerReference | None, signed: DockerReference) -> bool:
    intended = _require(image)
    if intended.is_name_only or signed.is_name_only:
        return False
    return str(signed) == str(intended)


def _repository(image: DockerReference | None, signed: DockerReference) -> bool:
    return signed.name == _require(image).name


match_repo_digest_or_exact = IdentityRule("matchRepoDigestOrExact", _repo_digest_or_exact)
match_exact = IdentityRule("matchExact", _exact)
match_repository = IdentityRule("matchRepository", _repository)


def exact_reference(reference: str) -> IdentityRule:
    """Accept exactly this `repo:tag` or `repo@digest`, whatever the image was pulled as."""
    fixed = parse_docker_reference(reference)
    if fixed.is_name_only:
        raise InvalidReferenceError(
            f"exactReference {reference!r} has neither a tag nor a digest",
            hint="name a tag (repo:tag) or a digest (repo@sha256:<hex>)",
        )

    def match(_image: DockerReference | None, signed: DockerReference) -> bool:
        return not signed.is_name_only and str(signed) == str(fixed)

    return IdentityRule("exactReference", match, expected=reference, uses_image=False)


def exact_repository(repository: str) -> IdentityRule:
    """Accept any signature naming this repository, whatever the image was pulled as."""
    fixed = parse_docker_reference(repository)

    def match(_image: DockerReference | None, signed: DockerReference) -> bool:
        return signed.name == fixed.name

    return IdentityRule("exactRepository", match, expected=repository, uses_image=False)


# remapIdentity's prefixes: a host (`reference.DomainRegexp`) or a repository name that starts
# with a host (`reference.NameRegexp` whose first component is a domain).
_REMAP_DOMAIN_RE = re.compile(_DOMAIN, re.ASCII)
_REMAP_NAME_RE = re.compile(_NAME, re.ASCII)
_REMAP_DOMAIN_PREFIX_RE = re.compile(rf"{_DOMAIN}/", re.ASCII)


def valid_remap_prefix(prefix: str) -> bool:
    """validateIdentityRemappingPrefix: a host[:port], or host[:port]/namespace[/repo]."""
    if _REMAP_DOMAIN_RE.fullmatch(prefix):
        return True
    return bool(_REMAP_NAME_RE.fullmatch(prefix) and _REMAP_DOMAIN_PREFIX_RE.match(prefix))


def remap_prefix_matches(name: str, prefix: str) -> bool:
    """Whether a repository name lies under `prefix` (whole path components only)."""
    return name == prefix or name.startswith(prefix + "/")


def remap_reference(reference: DockerReference, prefix: str, signed_prefix: str) -> DockerReference:
    """The image reference with `prefix` replaced by `signed_prefix`; unchanged when it does not
    match. The rewritten text must already be canonical (c/image's reference.ParseNamed), so a
    rewrite that would imply docker.io or does not parse raises InvalidReferenceError."""
    if not remap_prefix_matches(reference.name, prefix):
        return reference
    text = str(reference).replace(prefix, signed_prefix, 1)
    rewritten = parse_docker_reference(text)
    if str(rewritten) != text:
        raise _invalid(text, "the rewritten reference is not in canonical form")
    return rewritten


def remap_identity(prefix: str, signed_prefix: str) -> IdentityRule:
    """remapIdentity: matchRepoDigestOrExact after rewriting the image reference's `prefix` to
    `signed_prefix` (for mirrors of images signed under their original name)."""

    def match(image: DockerReference | None, signed: DockerReference) -> bool:
        try:
            intended = remap_reference(_require(image), prefix, signed_prefix)
        except InvalidReferenceError:
            return False
        return _repo_digest_or_exact(intended, signed)

    return IdentityRule(
        "remapIdentity", match, expected=None, uses_image=True, remap=(prefix, signed_prefix)
    )
