"""What a list command (`sign`, `sign validate`, `sign remove`) was asked to do, as one frozen,
checked value built from click's flags before any work.

Building a config reads no file and contacts nothing: it only raises the usage errors (exit 2)
that the flags alone decide, in the order the commands always raised them. Everything after
it (the list, the keys, the registries) takes the config, never click's flag dict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import click

from hangar import output
from hangar.cli._args import split_list
from hangar.manifest import normalize_arch, normalize_os, unknown_platform_value

MAX_JOBS = 20
DEFAULT_ARCH = ("amd64,arm64",)
DEFAULT_OS = ("linux",)

Identity = Literal["tag", "digest", "repository"]


def require(value: str | None, flag: str, what: str) -> str:
    if not value:
        raise click.UsageError(f"{flag} is required: {what}")
    return value


def clamp_jobs(jobs: int) -> int:
    """The seed's range is 1-20. Above it, 20 (asking for more speed must never mean the
    slowest run); below it, 1 (`announce` warns about either)."""
    return min(max(jobs, 1), MAX_JOBS)


def report_path(value: str | None) -> Path | None:
    """`--report -` is stdout, where the logs never go (they are on stderr)."""
    if not value:
        return None
    return Path("/dev/stdout") if value == "-" else Path(value)


def _normalized(values: tuple[str, ...], normalize: Callable[[str], str]) -> tuple[str, ...]:
    """--os/--arch in the spelling images use (`x86_64` is `amd64`), each once."""
    return tuple(dict.fromkeys(normalize(value) for value in split_list(values)))


@dataclass(frozen=True)
class RunConfig:
    """The flags every list command shares (see `_args.list_options`)."""

    command: str  # as the failed file's header and the report name it: "hangar sign"
    file: str
    registry: str | None
    project: str | None
    all_tags: bool
    os_given: tuple[str, ...]  # --os as typed (the re-sign hint repeats it)
    arch_given: tuple[str, ...]
    jobs_given: int
    failed: Path
    report: Path | None
    timeout: float
    tls_verify: bool
    authfile: str | None
    quiet: bool

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
        """Say where a flag is read otherwise than typed (a --jobs out of range, an
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


def _run_fields(flags: Mapping[str, Any], command: str, what: str) -> dict[str, Any]:
    """The shared fields, -f required first (as it always was)."""
    return {
        "command": command,
        "file": require(flags["file"], "-f/--file", what),
        "registry": flags["registry"],
        "project": flags["project"],
        "all_tags": bool(flags["all_tags"]),
        "os_given": tuple(flags["os_"]),
        "arch_given": tuple(flags["arch"]),
        "jobs_given": int(flags["jobs"]),
        "failed": Path(flags["failed"]),
        "report": report_path(flags["report"]),
        "timeout": float(flags["timeout"]),
        "tls_verify": bool(flags["tls_verify"]),
        "authfile": flags["authfile"],
        "quiet": bool(flags["quiet"]),
    }


@dataclass(frozen=True)
class SignConfig(RunConfig):
    key: str | None  # None only with --dry-run, which reads no key
    passphrase_file: str | None
    skip_login: bool
    signed_identity: Identity
    sign_index: bool
    sign_attestations: bool
    force: bool
    dry_run: bool

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any]) -> SignConfig:
        fields = _run_fields(flags, "hangar sign", "the image list to sign")
        dry_run = bool(flags["dry_run"])
        key = flags["key"]
        if not dry_run:
            key = require(key, "-k/--sigstore-key", "the sigstore private key file")
        return cls(
            **fields,
            key=key,
            passphrase_file=flags["sigstore_passphrase_file"],
            skip_login=bool(flags["skip_login"]),
            signed_identity=cast(Identity, flags["signed_identity"]),
            sign_index=bool(flags["sign_index"]),
            sign_attestations=bool(flags["sign_attestations"]),
            force=bool(flags["force"]),
            dry_run=dry_run,
        )

    def inputs(self) -> list[str]:
        return [path for path in (self.key, self.passphrase_file) if path] + super().inputs()


# Flags that approximate a policy; with --policy the policy itself says all of it.
_APPROXIMATIONS = {
    "pubkeys": "-p/--sigstore-pubkey",
    "exact_repository": "--exact-repository",
    "accept_repository_identity": "--accept-repository-identity",
    "require_tag_identity": "--require-tag-identity",
    "require_index_signature": "--require-index-signature",
}


@dataclass(frozen=True)
class ValidateConfig(RunConfig):
    pubkeys: tuple[str, ...]
    exact_repository: str | None
    accept_repository_identity: bool
    require_tag_identity: bool
    require_index_signature: bool
    all_instances: bool
    policy: str | None
    registries_d: str | None
    system_policy: bool

    @property
    def uses_policy(self) -> bool:
        """--policy or --system-policy: the verdict comes from a policy.json."""
        return bool(self.policy or self.system_policy)

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any]) -> ValidateConfig:
        fields = _run_fields(flags, "hangar sign validate", "the image list to validate")
        if flags["policy"] and flags["system_policy"]:
            raise click.UsageError("--policy and --system-policy exclude each other: pick one")
        if flags["policy"] or flags["system_policy"]:
            for name, flag in _APPROXIMATIONS.items():
                if flags[name]:
                    raise click.UsageError(
                        f"{flag} is not used with --policy/--system-policy: the policy names "
                        "the keys and identity rules"
                    )
        elif flags["registries_d"]:
            raise click.UsageError("--registries-d needs --policy FILE or --system-policy")
        elif not flags["pubkeys"]:
            raise click.UsageError("-p/--sigstore-pubkey is required: the sigstore public key file")
        return cls(
            **fields,
            pubkeys=tuple(flags["pubkeys"]),
            exact_repository=flags["exact_repository"],
            accept_repository_identity=bool(flags["accept_repository_identity"]),
            require_tag_identity=bool(flags["require_tag_identity"]),
            require_index_signature=bool(flags["require_index_signature"]),
            all_instances=bool(flags["all_instances"]),
            policy=flags["policy"],
            registries_d=flags["registries_d"],
            system_policy=bool(flags["system_policy"]),
        )

    def inputs(self) -> list[str]:
        # --system-policy's file is not named: it is read from where podman reads it.
        policy = [self.policy] if self.policy else []
        return [*self.pubkeys, *super().inputs(), *policy]


@dataclass(frozen=True)
class RemoveConfig(RunConfig):
    pubkeys: tuple[str, ...]
    keep_pubkeys: tuple[str, ...]
    unverified: bool
    everything: bool
    dry_run: bool
    skip_login: bool

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any]) -> RemoveConfig:
        what = "the image list to remove signatures from"
        fields = _run_fields(flags, "hangar sign remove", what)
        pubkeys, keep = tuple(flags["pubkeys"]), tuple(flags["keep_pubkeys"])
        unverified, everything = bool(flags["unverified"]), bool(flags["everything"])
        if everything and (pubkeys or unverified or keep):
            raise click.UsageError(
                "--all removes every signature: give it alone, without -p or keys"
            )
        if keep and not unverified:
            raise click.UsageError("--keep-pubkey goes with --unverified")
        if not (pubkeys or unverified or everything):
            raise click.UsageError(
                "say what to remove: -p/--sigstore-pubkey FILE, --unverified --keep-pubkey FILE, "
                "or --all"
            )
        if unverified and not keep:
            raise click.UsageError(
                "--unverified needs --keep-pubkey FILE: the keys whose signatures stay"
            )
        return cls(
            **fields,
            pubkeys=pubkeys,
            keep_pubkeys=keep,
            unverified=unverified,
            everything=everything,
            dry_run=bool(flags["dry_run"]),
            skip_login=bool(flags["skip_login"]),
        )

    def inputs(self) -> list[str]:
        return [*self.pubkeys, *self.keep_pubkeys, *super().inputs()]
