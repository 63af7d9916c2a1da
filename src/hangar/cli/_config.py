"""The checked config of a list command (hangar.api.config), built from click's flags before
any work. A ConfigError becomes click's usage error (exit 2, `see hangar sign --help`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from hangar.api.config import ConfigError, RemoveConfig, RunConfig, SignConfig, ValidateConfig

C = TypeVar("C", bound=RunConfig)


def report_path(value: str | None) -> Path | None:
    """`--report -` is stdout, where the logs never go (they are on stderr)."""
    if not value:
        return None
    return Path("/dev/stdout") if value == "-" else Path(value)


def _build(make: Callable[..., C], flags: Mapping[str, Any], **fields: Any) -> C:
    try:
        return make(
            file=flags["file"],
            registry=flags["registry"],
            project=flags["project"],
            all_tags=bool(flags["all_tags"]),
            os_given=tuple(flags["os_"]),
            arch_given=tuple(flags["arch"]),
            jobs_given=int(flags["jobs"]),
            failed=Path(flags["failed"]),
            report=report_path(flags["report"]),
            timeout=float(flags["timeout"]),
            tls_verify=bool(flags["tls_verify"]),
            authfile=flags["authfile"],
            quiet=bool(flags["quiet"]),
            **fields,
        )
    except ConfigError as exc:
        raise click.UsageError(exc.message) from None


def sign_config(flags: Mapping[str, Any]) -> SignConfig:
    return _build(
        SignConfig,
        flags,
        key=flags["key"],
        passphrase_file=flags["sigstore_passphrase_file"],
        skip_login=bool(flags["skip_login"]),
        signed_identity=flags["signed_identity"],
        sign_index=bool(flags["sign_index"]),
        sign_attestations=bool(flags["sign_attestations"]),
        force=bool(flags["force"]),
        dry_run=bool(flags["dry_run"]),
        signature_format=flags["signature_format"],
    )


def validate_config(flags: Mapping[str, Any]) -> ValidateConfig:
    return _build(
        ValidateConfig,
        flags,
        pubkeys=tuple(flags["pubkeys"]),
        exact_repository=flags["exact_repository"],
        accept_repository_identity=bool(flags["accept_repository_identity"]),
        require_tag_identity=bool(flags["require_tag_identity"]),
        pull_by=flags["pull_by"],
        require_index_signature=bool(flags["require_index_signature"]),
        all_instances=bool(flags["all_instances"]),
        policy=flags["policy"],
        registries_d=flags["registries_d"],
        system_policy=bool(flags["system_policy"]),
        signature_format=flags["signature_format"],
    )


def remove_config(flags: Mapping[str, Any]) -> RemoveConfig:
    return _build(
        RemoveConfig,
        flags,
        pubkeys=tuple(flags["pubkeys"]),
        keep_pubkeys=tuple(flags["keep_pubkeys"]),
        unverified=bool(flags["unverified"]),
        everything=bool(flags["everything"]),
        dry_run=bool(flags["dry_run"]),
        skip_login=bool(flags["skip_login"]),
    )
