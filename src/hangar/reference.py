"""Docker image references: grammar, normalization, and the --registry/--project overrides.

The grammar is containers/image's docker/reference (distribution's), checked against c/image
5.29's own parser (tests/test_reference.py holds a sample of its verdicts). Differences:
- digests must be `sha256:<64 lowercase hex>`: the only algorithm the registries and verifiers
  hangar talks to use; anything else is refused with the reason;
- `registry-1.docker.io` is spelled `docker.io` like `index.docker.io`;
- `[::1]:5000/app` (IPv6 host, from newer distribution/reference) is accepted;
- `a_b.io/app` is refused (c/image takes `a_b.io` as a path component, leaving no registry).
Like c/image 5.29 (and unlike newer docker), a first component with uppercase letters is not a
registry host, so `MyOrg/app` fails with "repository name must be lowercase".

Normalization is docker's: `nginx` -> `docker.io/library/nginx:latest`; the first component is a
registry when it contains `.` or `:` or is `localhost`; `index.docker.io` and
`registry-1.docker.io` are spelled `docker.io`.

Overrides follow hangar v1.8 (pkg/hangar/signer.go with pkg/utils GetRegistryName,
GetProjectName, GetImageName), which rebuilds every image as REGISTRY/PROJECT/NAME with PROJECT
defaulting to `library`:
- `--registry R` replaces the registry; a repository with a single component gains `library/`
  (v1.8 signs `R/library/app` for a line `quay.io/app`, and that is where `hangar mirror` put it);
- `--project P` replaces the first path component after the registry, or adds one when the
  repository has a single component (`quay.io/app` -> `quay.io/P/app`).
Where v1.8 differs, we keep the reference as written: without overrides v1.8 also turns
`localhost:5000/app` into `localhost:5000/library/app` (a repository the user did not name), and
it mangles paths deeper than three components and `name@digest` lines; we do not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from hangar import output
from hangar.errors import HangarError, InvalidReferenceError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DEFAULT_TAG = "latest"
OFFICIAL_NAMESPACE = "library"
NAME_TOTAL_LENGTH_MAX = 255

_SCHEME_PREFIXES = ("https://", "http://")
_TRANSPORT_PREFIX = "docker://"

_NAME_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_ALGORITHM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*")
_IMAGE_ID = re.compile(r"[0-9a-f]{64}")

_REFERENCE_HINT = "image references look like [REGISTRY/]NAMESPACE/NAME[:TAG][@sha256:DIGEST]"


@dataclass(frozen=True)
class Reference:
    registry: str  # "docker.io", "127.0.0.1:5000"
    repository: str  # "library/nginx", "ns/app"
    tag: str | None
    digest: str | None  # "sha256:<64 hex>"

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def api_reference(self) -> str:
        """What goes after /v2/<repository>/manifests/: the digest wins over the tag."""
        if self.digest:
            return self.digest
        return self.tag or DEFAULT_TAG

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, None, _checked_digest(str(self), digest))

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.registry, self.repository, _checked_tag(str(self), tag), None)

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> Reference:
    """Parse and normalize an image reference; `docker://` is accepted and dropped."""
    original = text
    if text.startswith(_TRANSPORT_PREFIX):
        text = text[len(_TRANSPORT_PREFIX) :]
    if not text:
        _fail(original, "the reference is empty")
    if any(char.isspace() for char in text):
        _fail(original, "white space is not allowed in an image reference")
    if _IMAGE_ID.fullmatch(text):
        _fail(original, "a 64-character hexadecimal string is an image ID, not a repository name")

    remainder, at, digest = text.partition("@")
    digest_value = _checked_digest(original, digest) if at else None
    name, tag = _split_tag(remainder)
    tag_value = _checked_tag(original, tag) if tag is not None else None
    registry, repository = _split_registry(original, name)
    _check_repository(original, registry, repository)
    if tag_value is None and digest_value is None:
        tag_value = DEFAULT_TAG
    return Reference(registry, repository, tag_value, digest_value)


def names_tag_or_digest(text: str) -> bool:
    """Whether a reference as written names a tag or a digest (parse_reference adds `latest`
    where it names neither; `--all-tags` must tell the two apart)."""
    if text.startswith(_TRANSPORT_PREFIX):
        text = text[len(_TRANSPORT_PREFIX) :]
    remainder, at, _digest = text.partition("@")
    return bool(at) or _split_tag(remainder)[1] is not None


def override_location(ref: Reference, registry: str | None, project: str | None) -> Reference:
    """Apply --registry and --project (see the module docstring for the rules and why)."""
    new_registry = ref.registry
    components = ref.repository.split("/")
    if registry:
        new_registry = _clean_registry(registry)
        if len(components) == 1:
            components.insert(0, OFFICIAL_NAMESPACE)
    if project:
        project_components = _clean_project(project).split("/")
        if len(components) == 1:
            components = project_components + components
        else:
            components = project_components + components[1:]
    if new_registry == DOCKER_HUB and len(components) == 1:
        components.insert(0, OFFICIAL_NAMESPACE)
    result = Reference(new_registry, "/".join(components), ref.tag, ref.digest)
    if len(result.name) > NAME_TOTAL_LENGTH_MAX:
        _fail(
            str(ref),
            f"with --registry/--project the repository name {result.name} is longer than "
            f"{NAME_TOTAL_LENGTH_MAX} characters",
        )
    return result


def api_host(registry: str) -> str:
    """The host that serves the API: Docker Hub's API is not on docker.io itself."""
    if registry.lower() in DOCKER_HUB_ALIASES:
        return DOCKER_HUB_API
    return registry


def normalize_registry(host: str) -> str:
    """Spell Docker Hub's aliases `docker.io`; any other host is returned unchanged."""
    return DOCKER_HUB if host.lower() in DOCKER_HUB_ALIASES else host


_warned_registry_values: set[str] = set()


def normalize_registry_option(value: str) -> str:
    """Validate a --registry value once for a run: `https://` or `http://` is dropped with a
    warning (the scheme is decided by --tls-verify, as in podman), a trailing `/` is dropped;
    a path or anything that is not host[:port] is an error.
    """
    host = _clean_registry(value)
    if value.strip().lower().startswith(_SCHEME_PREFIXES) and value not in _warned_registry_values:
        _warned_registry_values.add(value)  # once per value: the list is read twice per run
        output.warn(
            f'--registry "{value}": the URL scheme is ignored, using "{host}" '
            "(HTTPS is required unless --tls-verify=false, which also allows plain HTTP)"
        )
    return host


def normalize_project_option(value: str) -> str:
    """Validate a --project value: one or more lowercase path components."""
    return _clean_project(value)


def _clean_registry(value: str) -> str:
    host = value.strip()
    for prefix in _SCHEME_PREFIXES:
        if host.lower().startswith(prefix):
            host = host[len(prefix) :]
            break
    host = host.rstrip("/")
    if "/" in host:
        raise HangarError(
            f'invalid --registry "{value}": it must be a registry host[:port], without a path',
            hint="use --project to change the namespace",
        )
    if not host or not _DOMAIN.fullmatch(host):
        raise HangarError(
            f'invalid --registry "{value}": not a registry host[:port]',
            hint="for example --registry registry.example.com or --registry 127.0.0.1:5000",
        )
    return normalize_registry(host)


def _clean_project(value: str) -> str:
    project = value.strip().strip("/")
    if not project:
        raise HangarError(f'invalid --project "{value}": it is empty')
    for component in project.split("/"):
        if component.lower() != component:
            raise HangarError(f'invalid --project "{value}": it must be lowercase')
        if not _NAME_COMPONENT.fullmatch(component):
            raise HangarError(
                f'invalid --project "{value}": "{component}" is not a valid path component',
                hint="use lowercase letters and digits, separated by '.', '_', '__' or '-'",
            )
    return project


def _split_tag(name: str) -> tuple[str, str | None]:
    """A ':' after the last '/' starts the tag; one before it is a registry port."""
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        return name[:colon], name[colon + 1 :]
    return name, None


def _split_registry(original: str, name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        if not _DOMAIN.fullmatch(first):
            _fail(original, f'"{first}" is not a valid registry host[:port]')
        registry, repository = normalize_registry(first), rest
    else:
        registry, repository = DOCKER_HUB, name
    if registry == DOCKER_HUB and repository and "/" not in repository:
        repository = f"{OFFICIAL_NAMESPACE}/{repository}"
    return registry, repository


def _check_repository(original: str, registry: str, repository: str) -> None:
    if not repository:
        _fail(original, "the repository name is missing")
    if repository.lower() != repository:
        _fail(original, "repository name must be lowercase")
    for component in repository.split("/"):
        if not component:
            _fail(original, "the repository name has an empty path component (// or a / at an end)")
        if not _NAME_COMPONENT.fullmatch(component):
            _fail(
                original,
                f'"{component}" is not a valid repository path component: use lowercase letters '
                "and digits, separated by '.', '_', '__' or '-' (not at the start or end)",
            )
    if len(registry) + 1 + len(repository) > NAME_TOTAL_LENGTH_MAX:
        _fail(original, f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")


def _checked_tag(original: str, tag: str) -> str:
    if not tag:
        _fail(original, "the tag after ':' is empty")
    if not _TAG.fullmatch(tag):
        _fail(
            original,
            f'invalid tag "{tag}": a tag is 1 to 128 letters, digits, "_", "." or "-", '
            'and does not start with "." or "-"',
        )
    return tag


def _checked_digest(original: str, digest: str) -> str:
    algorithm, colon, hex_part = digest.partition(":")
    if not colon or not _ALGORITHM.fullmatch(algorithm) or not hex_part:
        _fail(original, f'invalid digest "{digest}": expected sha256:<64 hexadecimal characters>')
    if algorithm != "sha256":
        _fail(original, f'unsupported digest algorithm "{algorithm}": only sha256 is supported')
    if not _SHA256_HEX.fullmatch(hex_part):
        if len(hex_part) != 64:
            reason = f"it has {len(hex_part)} characters"
        else:
            reason = "it must be lowercase hexadecimal"
        _fail(
            original,
            f'invalid digest "{digest}": a sha256 digest is 64 lowercase hexadecimal '
            f"characters ({reason})",
        )
    return digest


def _fail(original: str, reason: str) -> NoReturn:
    raise InvalidReferenceError(
        f'invalid image reference "{original}": {reason}', hint=_REFERENCE_HINT
    )
