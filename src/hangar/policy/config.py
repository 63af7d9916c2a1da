"""policy.json parsed with containers/image's strictness (signature/policy_config.go and
policy_config_sigstore.go, 5.29 and later): unknown or duplicate keys, missing fields, empty
requirement lists, a wrong number of key sources are all refused, with the field's path.

JSON `null` is taken as Go's encoding/json takes it (a string stays empty, a list or bytes stay
unset), so what c/image accepts this accepts too, and what it refuses this refuses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hangar.errors import HangarError, InvalidReferenceError
from hangar.policy.requirements import (
    InsecureAcceptAnything,
    Reject,
    Requirement,
    SignedBaseLayer,
    SignedBy,
    SigstoreSigned,
)
from hangar.sigstore.attachment import decode_signature
from hangar.sigstore.identity import (
    IdentityRule,
    exact_reference,
    exact_repository,
    match_exact,
    match_repo_digest_or_exact,
    match_repository,
    parse_docker_reference,
    remap_identity,
    valid_remap_prefix,
)

SB_KEY_TYPES = ("GPGKeys", "signedByGPGKeys", "X509Certificates", "signedByX509CAs")


class PolicyError(HangarError):
    """A policy.json containers/image would refuse; a usage error (exit 2), found before any
    network traffic."""

    exit_code = 2


@dataclass(frozen=True)
class Policy:
    default: tuple[Requirement, ...]
    # transport name -> scope -> requirements; only "docker" is evaluated by hangar.
    transports: dict[str, dict[str, tuple[Requirement, ...]]] = field(default_factory=dict)

    @property
    def docker(self) -> dict[str, tuple[Requirement, ...]] | None:
        return self.transports.get("docker")


class _Invalid(Exception):
    """The first problem found, with the path of the field (`transports.docker."x"[0].type`)."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(f"{path}: {why}" if path else why)


class _Object(dict):
    """A JSON object that remembers its first duplicate key (Go's paranoid parser refuses it)."""

    duplicate: str | None = None


def _pairs(pairs: list[tuple[str, Any]]) -> _Object:
    result = _Object()
    for key, value in pairs:
        if key in result and result.duplicate is None:
            result.duplicate = key
        result[key] = value
    return result


def load_policy(path: str | Path) -> Policy:
    """Read and check a policy.json; PolicyError names the file and the field."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyError(
            f"cannot read policy file {path}: {exc.strerror or exc}",
            hint="pass the policy.json podman/CRI-O use with --policy",
        ) from None
    return parse_policy(data, source=str(path))


def parse_policy(data: bytes, *, source: str = "policy.json") -> Policy:
    try:
        document = json.loads(data, object_pairs_hook=_pairs)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _policy_error(source, f"not valid JSON: {exc}") from None
    try:
        return _policy(document)
    except _Invalid as exc:
        raise _policy_error(source, str(exc)) from None


def _policy_error(source: str, why: str) -> PolicyError:
    return PolicyError(
        f"invalid policy in {source}: {why}",
        hint="podman/CRI-O refuse this policy too; fix the field named",
    )


# --- objects -----------------------------------------------------------------------------------


def _object(value: Any, path: str, allowed: tuple[str, ...] | None) -> _Object:
    """A JSON object with no duplicate key and, when `allowed` is given, no other key."""
    if not isinstance(value, _Object):
        raise _Invalid(path, f"a JSON object is expected, not {_kind(value)}")
    if value.duplicate is not None:
        raise _Invalid(path, f'duplicate key "{value.duplicate}"')
    if allowed is not None:
        for key in value:
            if key not in allowed:
                raise _Invalid(path, f'unknown key "{key}"')
    return value


def _exact_fields(value: Any, path: str, fields: tuple[str, ...]) -> _Object:
    """ParanoidUnmarshalJSONObjectExactFields: exactly these keys."""
    obj = _object(value, path, fields)
    for key in fields:
        if key not in obj:
            raise _Invalid(path, f'key "{key}" missing')
    return obj


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _string(obj: _Object, key: str, path: str) -> str:
    """A string field; a missing field or null is "" (Go leaves the string empty)."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Invalid(f"{path}.{key}", f"a string is expected, not {_kind(value)}")
    return value


def _strings(obj: _Object, key: str, path: str) -> list[str] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Invalid(f"{path}.{key}", "an array of strings is expected")
    return value


def _bytes(obj: _Object, key: str, path: str) -> bytes | None:
    """Go's []byte: standard base64 in a string; null leaves it unset."""
    value = obj.get(key)
    if value is None:
        return None
    decoded = decode_signature(value) if isinstance(value, str) else None
    if decoded is None:
        raise _Invalid(f"{path}.{key}", "base64 data in a string is expected")
    return decoded


def _bytes_list(obj: _Object, key: str, path: str) -> list[bytes] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _Invalid(f"{path}.{key}", "an array of base64 strings is expected")
    items = [
        _bytes(_Object(item=item), "item", f"{path}.{key}[{i}]") for i, item in enumerate(value)
    ]
    return [item or b"" for item in items]


# --- the policy and its transports ---------------------------------------------------------------


def _policy(document: Any) -> Policy:
    top = _object(document, "", ("default", "transports"))
    if "default" not in top or top["default"] is None:
        raise _Invalid("", 'the "default" policy is missing')
    default = _requirements(top["default"], "default")
    transports: dict[str, dict[str, tuple[Requirement, ...]]] = {}
    if top.get("transports") is not None:
        for name, scopes in _object(top["transports"], "transports", None).items():
            transports[name] = _scopes(scopes, f'transports."{name}"')
    return Policy(default, transports)


def _scopes(value: Any, path: str) -> dict[str, tuple[Requirement, ...]]:
    # The docker transport accepts any scope text (its ValidatePolicyConfigurationScope
    # checks nothing); other transports' scope rules are not hangar's concern.
    scopes = _object(value, path, None)
    return {scope: _requirements(reqs, f'{path}."{scope}"') for scope, reqs in scopes.items()}


def _requirements(value: Any, path: str) -> tuple[Requirement, ...]:
    if not isinstance(value, list):
        raise _Invalid(path, f"an array of requirements is expected, not {_kind(value)}")
    if not value:
        raise _Invalid(path, "the list of requirements must not be empty")
    return tuple(_requirement(item, f"{path}[{i}]") for i, item in enumerate(value))


# --- requirements ------------------------------------------------------------------------------


def _requirement(value: Any, path: str) -> Requirement:
    obj = _object(value, path, None)
    kind = obj.get("type")
    parser = _REQUIREMENTS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise _Invalid(f"{path}.type", f"unknown policy requirement type {_quoted(kind)}")
    return parser(obj, path)


def _quoted(value: Any) -> str:
    return json.dumps(value) if value is not None else '""'


def _accept_anything(obj: _Object, path: str) -> Requirement:
    _exact_fields(obj, path, ("type",))
    return InsecureAcceptAnything()


def _reject(obj: _Object, path: str) -> Requirement:
    _exact_fields(obj, path, ("type",))
    return Reject()


def _signed_by(obj: _Object, path: str) -> Requirement:
    keys = ("type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity")
    _object(obj, path, keys)
    key_type = obj.get("keyType")
    if key_type not in SB_KEY_TYPES:
        raise _Invalid(f"{path}.keyType", f"unrecognized keyType value {_quoted(key_type)}")
    sources = [key for key in ("keyPath", "keyPaths", "keyData") if key in obj]
    if len(sources) != 1:
        raise _Invalid(path, "exactly one of keyPath, keyPaths and keyData must be specified")
    key_path = _string(obj, "keyPath", path)
    key_paths = _strings(obj, "keyPaths", path)
    key_data = _bytes(obj, "keyData", path)
    if not key_path and key_paths is None and key_data is None:
        raise _Invalid(path, "exactly one of keyPath, keyPaths and keyData must be specified")
    return SignedBy(key_type, _signed_identity(obj, path))


def _signed_base_layer(obj: _Object, path: str) -> Requirement:
    _exact_fields(obj, path, ("type", "baseLayerIdentity"))
    return SignedBaseLayer(_identity(obj["baseLayerIdentity"], f"{path}.baseLayerIdentity"))


_SIGSTORE_KEYS = (
    "type",
    "keyPath",
    "keyPaths",
    "keyData",
    "keyDatas",
    "fulcio",
    "pki",
    "rekorPublicKeyPath",
    "rekorPublicKeyPaths",
    "rekorPublicKeyData",
    "rekorPublicKeyDatas",
    "signedIdentity",
)


def _sigstore_signed(obj: _Object, path: str) -> Requirement:
    _object(obj, path, _SIGSTORE_KEYS)
    key_path = _string(obj, "keyPath", path)
    key_paths = _listed(obj, "keyPaths", path, _strings)
    key_data = _bytes(obj, "keyData", path)
    key_datas = _listed(obj, "keyDatas", path, _bytes_list)
    fulcio = _fulcio(obj, path) if "fulcio" in obj else None
    pki = _pki(obj, path) if "pki" in obj else None
    sources = [key_path or None, key_paths, key_data, key_datas, fulcio, pki]
    if sum(source is not None for source in sources) != 1:
        raise _Invalid(
            path, "exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio and pki must be set"
        )
    rekor = _rekor_sources(obj, path)
    if rekor > 1:
        raise _Invalid(path, "at most one of the rekorPublicKey* fields can be used")
    if fulcio is not None and rekor == 0:
        raise _Invalid(path, "fulcio needs one of the rekorPublicKey* fields")
    if pki is not None and rekor > 0:
        raise _Invalid(path, "rekorPublicKey* fields are not supported with pki")
    return SigstoreSigned(
        key_paths=tuple([key_path] if key_path else key_paths or ()),
        key_datas=tuple([key_data] if key_data is not None else key_datas or ()),
        uses_fulcio=fulcio is not None,
        uses_pki=pki is not None,
        uses_rekor=rekor > 0,
        identity=_signed_identity(obj, path),
    )


def _listed(obj: _Object, key: str, path: str, parse: Callable[..., Any]) -> Any:
    """A list field of sigstoreSigned: once present (even as null) it must have entries."""
    if key not in obj:
        return None
    values = parse(obj, key, path) or []
    if not values:
        raise _Invalid(f"{path}.{key}", f'"{key}" contains no entries')
    return values


def _rekor_sources(obj: _Object, path: str) -> int:
    found = [
        _string(obj, "rekorPublicKeyPath", path) or None,
        _listed(obj, "rekorPublicKeyPaths", path, _strings),
        _bytes(obj, "rekorPublicKeyData", path),
        _listed(obj, "rekorPublicKeyDatas", path, _bytes_list),
    ]
    return sum(source is not None for source in found)


_PKI_KEYS = (
    "caRootsPath",
    "caRootsData",
    "caIntermediatesPath",
    "caIntermediatesData",
    "subjectEmail",
    "subjectHostname",
)


def _fulcio(obj: _Object, path: str) -> _Object:
    where = f"{path}.fulcio"
    fulcio = _object(obj["fulcio"], where, ("caPath", "caData", "oidcIssuer", "subjectEmail"))
    ca_path = _string(fulcio, "caPath", where)
    ca_data = _bytes(fulcio, "caData", where)
    if bool(ca_path) == (ca_data is not None):
        raise _Invalid(where, "exactly one of caPath and caData must be specified")
    for key in ("oidcIssuer", "subjectEmail"):
        if not _string(fulcio, key, where):
            raise _Invalid(f"{where}.{key}", f"{key} not specified")
    return fulcio


def _pki(obj: _Object, path: str) -> _Object:
    where = f"{path}.pki"
    pki = _object(obj["pki"], where, _PKI_KEYS)
    roots = (_string(pki, "caRootsPath", where), _bytes(pki, "caRootsData", where))
    if bool(roots[0]) == (roots[1] is not None):
        raise _Invalid(where, "exactly one of caRootsPath and caRootsData must be specified")
    middle = (_string(pki, "caIntermediatesPath", where), _bytes(pki, "caIntermediatesData", where))
    if middle[0] and middle[1] is not None:
        raise _Invalid(where, "caIntermediatesPath and caIntermediatesData cannot both be used")
    subjects = [_string(pki, key, where) for key in ("subjectEmail", "subjectHostname")]
    if not any(subjects):
        raise _Invalid(where, "at least one of subjectEmail and subjectHostname must be specified")
    return pki


# --- signedIdentity ----------------------------------------------------------------------------


def _signed_identity(obj: _Object, path: str) -> IdentityRule:
    """Absent: matchRepoDigestOrExact; an explicit null is refused (no type)."""
    if "signedIdentity" not in obj:
        return match_repo_digest_or_exact
    return _identity(obj["signedIdentity"], f"{path}.signedIdentity")


def _identity(value: Any, path: str) -> IdentityRule:
    obj = _object(value, path, None)
    kind = obj.get("type")
    parser = _IDENTITIES.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise _Invalid(f"{path}.type", f"unknown policy reference match type {_quoted(kind)}")
    return parser(obj, path)


def _fixed(rule: IdentityRule) -> Callable[[_Object, str], IdentityRule]:
    def parse(obj: _Object, path: str) -> IdentityRule:
        _exact_fields(obj, path, ("type",))
        return rule

    return parse


def _exact_reference(obj: _Object, path: str) -> IdentityRule:
    _exact_fields(obj, path, ("type", "dockerReference"))
    text = _string(obj, "dockerReference", path)
    try:
        return exact_reference(text)
    except InvalidReferenceError as exc:
        raise _Invalid(f"{path}.dockerReference", exc.message) from None


def _exact_repository(obj: _Object, path: str) -> IdentityRule:
    _exact_fields(obj, path, ("type", "dockerRepository"))
    text = _string(obj, "dockerRepository", path)
    try:
        parse_docker_reference(text)
    except InvalidReferenceError as exc:
        raise _Invalid(f"{path}.dockerRepository", exc.message) from None
    return exact_repository(text)


def _remap_identity(obj: _Object, path: str) -> IdentityRule:
    _exact_fields(obj, path, ("type", "prefix", "signedPrefix"))
    prefix = _string(obj, "prefix", path)
    signed_prefix = _string(obj, "signedPrefix", path)
    for key, value in (("prefix", prefix), ("signedPrefix", signed_prefix)):
        if not valid_remap_prefix(value):
            raise _Invalid(
                f"{path}.{key}", f"{key} {json.dumps(value)} is not a host or host/namespace"
            )
    return remap_identity(prefix, signed_prefix)


_REQUIREMENTS: dict[str, Callable[[_Object, str], Requirement]] = {
    "insecureAcceptAnything": _accept_anything,
    "reject": _reject,
    "signedBy": _signed_by,
    "signedBaseLayer": _signed_base_layer,
    "sigstoreSigned": _sigstore_signed,
}

_IDENTITIES: dict[str, Callable[[_Object, str], IdentityRule]] = {
    "matchExact": _fixed(match_exact),
    "matchRepoDigestOrExact": _fixed(match_repo_digest_or_exact),
    "matchRepository": _fixed(match_repository),
    "exactReference": _exact_reference,
    "exactRepository": _exact_repository,
    "remapIdentity": _remap_identity,
}
