"""What a list run (`sign`, `sign validate`, `sign remove`) is asked to do: one frozen, checked
value per command, built before any work.

Building a config reads no file and contacts nothing. It raises ConfigError (exit 2, a usage
error) for settings that cannot work together, in the order the CLI always reported them.
The CLI builds these from its flags (hangar/cli/_config.py); a script builds them directly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

from hangar import output
from hangar.errors import UsageProblem
from hangar.manifest import normalize_arch, normalize_os, unknown_platform_value

MAX_JOBS = 20
DEFAULT_ARCH = ("amd64,arm64",)
DEFAULT_OS = ("linux",)
DEFAULT_TIMEOUT = 600.0  # seconds per image: the seed's 10m0s
DEFAULT_FAILED = Path("sign-failed.txt")

Identity = Literal["tag", "digest", "repository"]
SignatureFormat = Literal["legacy", "bundle", "both"]
ValidateFormat = Literal["legacy", "bundle", "both", "any"]


class ConfigError(UsageProblem):
    """Settings that cannot work together, or a required one missing (the CLI prints it as a
    usage error, naming its flags)."""


def split_list(values: tuple[str, ...]) -> list[str]:
    """Flatten a repeatable, comma-separated setting (`-a amd64,arm64 -a arm`)."""
    items: list[str] = []
    for value in values:
        items.extend(part.strip() for part in value.split(",") if part.strip())
    return items


# Durations as Go's time.ParseDuration reads them: the seed documents `--timeout 10m0s`.
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """Parse a Go duration (`10m0s`, `90s`, `1h30m`, `1.5h`) into seconds."""
    value = text.strip()
    sign = 1.0
    if value[:1] in "+-" and value:
        sign = -1.0 if value[0] == "-" else 1.0
        value = value[1:]
    if value == "0":
        return 0.0
    if not value:
        raise ValueError(f'invalid duration "{text}"')
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(value):
        if re.fullmatch(r"[\d.]+", value):
            raise ValueError(f'missing unit in duration "{text}" (for example 90s, 10m0s, 1h30m)')
        raise ValueError(f'invalid duration "{text}" (for example 90s, 10m0s, 1h30m)')
    return sign * total


def clamp_jobs(jobs: int) -> int:
    """The seed's range is 1-20. Above it, 20 (asking for more speed must never mean the
    slowest run); below it, 1 (`announce` warns about either)."""
    return min(max(jobs, 1), MAX_JOBS)


def _normalized(values: tuple[str, ...], normalize: Callable[[str], str]) -> tuple[str, ...]:
    """--os/--arch in the spelling images use (`x86_64` is `amd64`), each once."""
    return tuple(dict.fromkeys(normalize(value) for value in split_list(values)))


def _require(value: object, flag: str, what: str) -> None:
    if not value:
        raise ConfigError(f"{flag} is required: {what}")


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """What every list run shares. `file` is the image list (`-` for stdin)."""

    COMMAND: ClassVar[str] = "hangar"
    LIST_WHAT: ClassVar[str] = "the image list"

    file: str
    registry: str | None = None
    project: str | None = None
    all_tags: bool = False
    os_given: tuple[str, ...] = DEFAULT_OS  # --os as typed (the re-sign hint repeats it)
    arch_given: tuple[str, ...] = DEFAULT_ARCH
    jobs_given: int = 1
    failed: Path = DEFAULT_FAILED
    report: Path | None = None
    timeout: float = DEFAULT_TIMEOUT
    tls_verify: bool = True
    authfile: str | None = None
    quiet: bool = False

    def __post_init__(self) -> None:
        _require(self.file, "-f/--file", self.LIST_WHAT)

    @property
    def command(self) -> str:
        """As the failed file's header and the report name it: "hangar sign"."""
        return self.COMMAND

    @property
    def oses(self) -> list[str]:
        return list(_normalized(self.os_given, normalize_os))

    @property
    def arches(self) -> list[str]:
        return list(_normalized(self.arch_given, normalize_arch))

    @property
    def jobs(self) -> int:
        return clamp_jobs(self.jobs_given)

    def inputs(self) -> list[str]:
        """The files this command reads besides the list: no output may be one of them."""
        return [self.authfile] if self.authfile else []

    def announce(self) -> None:
        """Say where a setting is read otherwise than typed (a --jobs out of range, an
        architecture spelled as uname does), so that nobody wonders why."""
        if self.jobs != self.jobs_given:
            output.warn(
                f"--jobs {self.jobs_given} is outside 1-{MAX_JOBS}: using {self.jobs} worker(s)"
            )
        for flag, values, normalize in (
            ("--os", self.os_given, normalize_os),
            ("--arch", self.arch_given, normalize_arch),
        ):
            for value in split_list(values):
                name = normalize(value)
                if name != value:
                    output.info(f"{flag} {value} is read as {name}, as containers/image names it")
                problem = unknown_platform_value(flag, name)
                if problem is not None:
                    output.warn(problem)


@dataclass(frozen=True, kw_only=True)
class SignConfig(RunConfig):
    COMMAND: ClassVar[str] = "hangar sign"
    LIST_WHAT: ClassVar[str] = "the image list to sign"

    key: str | None = None  # None only with dry_run, which reads no key
    passphrase_file: str | None = None
    skip_login: bool = False
    signed_identity: Identity = "tag"
    sign_index: bool = True
    sign_attestations: bool = False
    force: bool = False
    dry_run: bool = False
    signature_format: SignatureFormat = "legacy"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.dry_run:
            _require(self.key, "-k/--sigstore-key", "the sigstore private key file")

    def inputs(self) -> list[str]:
        from hangar.keys.backends import input_files  # a URI: its pin-source file

        key = input_files(self.key) if self.key else []
        return [*key, *([self.passphrase_file] if self.passphrase_file else []), *super().inputs()]


# Settings that approximate a policy; with a policy the policy itself says all of it.
_APPROXIMATIONS = {
    "pubkeys": "-p/--sigstore-pubkey",
    "exact_repository": "--exact-repository",
    "accept_repository_identity": "--accept-repository-identity",
    "require_tag_identity": "--require-tag-identity",
    "pull_by": "--pull-by",
    "require_index_signature": "--require-index-signature",
}


@dataclass(frozen=True, kw_only=True)
class ValidateConfig(RunConfig):
    COMMAND: ClassVar[str] = "hangar sign validate"
    LIST_WHAT: ClassVar[str] = "the image list to validate"

    pubkeys: tuple[str, ...] = ()
    exact_repository: str | None = None
    accept_repository_identity: bool = False
    require_tag_identity: bool = False
    require_index_signature: bool = False
    pull_by: Literal["tag", "digest"] | None = None  # None: tag (which pulls a PASS promises)
    all_instances: bool = False
    policy: str | None = None
    registries_d: str | None = None
    system_policy: bool = False
    signature_format: ValidateFormat = "legacy"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.policy and self.system_policy:
            raise ConfigError("--policy and --system-policy exclude each other: pick one")
        if self.signature_format != "legacy" and self.uses_policy:
            raise ConfigError(
                "--signature-format goes without --policy/--system-policy: a policy is judged "
                "as containers/image judges it, which reads only the .sig tag"
            )
        if self.uses_policy:
            for name, flag in _APPROXIMATIONS.items():
                if getattr(self, name):
                    raise ConfigError(
                        f"{flag} is not used with --policy/--system-policy: the policy names "
                        "the keys and identity rules"
                    )
        elif self.registries_d:
            raise ConfigError("--registries-d needs --policy FILE or --system-policy")
        elif not self.pubkeys:
            raise ConfigError("-p/--sigstore-pubkey is required: the sigstore public key file")

    @property
    def uses_policy(self) -> bool:
        """--policy or --system-policy: the verdict comes from a policy.json."""
        return bool(self.policy or self.system_policy)

    def inputs(self) -> list[str]:
        # --system-policy's file is not named: it is read from where podman reads it.
        from hangar.keys.backends import input_files  # a URI: its pin-source file

        policy = [self.policy] if self.policy else []
        keys = [path for spec in self.pubkeys for path in input_files(spec)]
        return [*keys, *super().inputs(), *policy]


@dataclass(frozen=True, kw_only=True)
class RemoveConfig(RunConfig):
    COMMAND: ClassVar[str] = "hangar sign remove"
    LIST_WHAT: ClassVar[str] = "the image list to remove signatures from"

    pubkeys: tuple[str, ...] = ()
    keep_pubkeys: tuple[str, ...] = ()
    unverified: bool = False
    everything: bool = False
    dry_run: bool = False
    skip_login: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        pubkeys, keep = self.pubkeys, self.keep_pubkeys
        if self.everything and (pubkeys or self.unverified or keep):
            raise ConfigError("--all removes every signature: give it alone, without -p or keys")
        if keep and not self.unverified:
            raise ConfigError("--keep-pubkey goes with --unverified")
        if not (pubkeys or self.unverified or self.everything):
            raise ConfigError(
                "say what to remove: -p/--sigstore-pubkey FILE, --unverified --keep-pubkey FILE, "
                "or --all"
            )
        if self.unverified and not keep:
            raise ConfigError(
                "--unverified needs --keep-pubkey FILE: the keys whose signatures stay"
            )

    def inputs(self) -> list[str]:
        return [*self.pubkeys, *self.keep_pubkeys, *super().inputs()]
