"""policy.json parsed with containers/image's strictness (signature/policy_config.go and
policy_config_sigstore.go, 5.29 and later): unknown or duplicate keys, missing fields, empty
requirement lists, a wrong number of key sources are all refused, with the field's path.

JSON `null` is taken as Go's encoding/json takes it (a string stays empty, a list or bytes stay
unset), so what c/image accepts this accepts too, and what it refuses this refuses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hangar.errors import HangarError, InvalidReferenceError
from hangar.policy._json import (
    Invalid,
    JSONObject,
    bytes_field,
    bytes_list_field,
    exact_fields,
    json_object,
    kind_of,
    listed,
    object_pairs,
    quoted,
    string_field,
    strings_field,
)
from hangar.policy.compat import newer_fields
from hangar.policy.requirements import (
    InsecureAcceptAnything,
    Reject,
    Requirement,
    SignedBaseLayer,
    SignedBy,
    SigstoreSigned,
)
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

    # Fields older containers/image releases refuse, with where they are (policy/compat.py).
    newer_fields: tuple[str, ...] = ()

    @property
    def docker(self) -> dict[str, tuple[Requirement, ...]] | None:
        return self.transports.get("docker")


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
        document = json.loads(data, object_pairs_hook=object_pairs)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _policy_error(source, f"not valid JSON: {exc}") from None
    try:
        policy = _policy(document)
    except Invalid as exc:
        raise _policy_error(source, str(exc)) from None
    return replace(policy, newer_fields=tuple(newer_fields(document)))


def _policy_error(source: str, why: str) -> PolicyError:
    return PolicyError(
        f"invalid policy in {source}: {why}",
        hint="podman/CRI-O refuse this policy too; fix the field named",
    )


# --- the policy and its transports ---------------------------------------------------------------


def _policy(document: Any) -> Policy:
    top = json_object(document, "", ("default", "transports"))
    if "default" not in top or top["default"] is None:
        raise Invalid("", 'the "default" policy is missing')
    default = _requirements(top["default"], "default")
    transports: dict[str, dict[str, tuple[Requirement, ...]]] = {}
    if top.get("transports") is not None:
        for name, scopes in json_object(top["transports"], "transports", None).items():
            transports[name] = _scopes(scopes, f'transports."{name}"')
    return Policy(default, transports)


def _scopes(value: Any, path: str) -> dict[str, tuple[Requirement, ...]]:
    # The docker transport accepts any scope text (its ValidatePolicyConfigurationScope
    # checks nothing); other transports' scope rules are not hangar's concern.
    scopes = json_object(value, path, None)
    return {scope: _requirements(reqs, f'{path}."{scope}"') for scope, reqs in scopes.items()}


def _requirements(value: Any, path: str) -> tuple[Requirement, ...]:
    if not isinstance(value, list):
        raise Invalid(path, f"an array of requirements is expected, not {kind_of(value)}")
    if not value:
        raise Invalid(path, "the list of requirements must not be empty")
    return tuple(_requirement(item, f"{path}[{i}]") for i, item in enumerate(value))


# --- requirements ------------------------------------------------------------------------------


def _requirement(value: Any, path: str) -> Requirement:
    obj = json_object(value, path, None)
    kind = obj.get("type")
    parser = _REQUIREMENTS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise Invalid(f"{path}.type", f"unknown policy requirement type {quoted(kind)}")
    return parser(obj, path)


def _accept_anything(obj: JSONObject, path: str) -> Requirement:
    exact_fields(obj, path, ("type",))
    return InsecureAcceptAnything()


def _reject(obj: JSONObject, path: str) -> Requirement:
    exact_fields(obj, path, ("type",))
    return Reject()


def _signed_by(obj: JSONObject, path: str) -> Requirement:
    keys = ("type", "keyType", "keyPath", "keyPaths", "keyData", "signedIdentity")
    json_object(obj, path, keys)
    key_type = obj.get("keyType")
    if key_type not in SB_KEY_TYPES:
        raise Invalid(f"{path}.keyType", f"unrecognized keyType value {quoted(key_type)}")
    sources = [key for key in ("keyPath", "keyPaths", "keyData") if key in obj]
    if len(sources) != 1:
        raise Invalid(path, "exactly one of keyPath, keyPaths and keyData must be specified")
    key_path = string_field(obj, "keyPath", path)
    key_paths = strings_field(obj, "keyPaths", path)
    key_data = bytes_field(obj, "keyData", path)
    if not key_path and key_paths is None and key_data is None:
        raise Invalid(path, "exactly one of keyPath, keyPaths and keyData must be specified")
    return SignedBy(key_type, _signed_identity(obj, path))


def _signed_base_layer(obj: JSONObject, path: str) -> Requirement:
    exact_fields(obj, path, ("type", "baseLayerIdentity"))
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


def _sigstore_signed(obj: JSONObject, path: str) -> Requirement:
    json_object(obj, path, _SIGSTORE_KEYS)
    key_path = string_field(obj, "keyPath", path)
    key_paths = listed(obj, "keyPaths", path, strings_field)
    key_data = bytes_field(obj, "keyData", path)
    key_datas = listed(obj, "keyDatas", path, bytes_list_field)
    fulcio = _fulcio(obj, path) if "fulcio" in obj else None
    pki = _pki(obj, path) if "pki" in obj else None
    sources = [key_path or None, key_paths, key_data, key_datas, fulcio, pki]
    if sum(source is not None for source in sources) != 1:
        raise Invalid(
            path, "exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio and pki must be set"
        )
    rekor = _rekor_sources(obj, path)
    if rekor > 1:
        raise Invalid(path, "at most one of the rekorPublicKey* fields can be used")
    if fulcio is not None and rekor == 0:
        raise Invalid(path, "fulcio needs one of the rekorPublicKey* fields")
    if pki is not None and rekor > 0:
        raise Invalid(path, "rekorPublicKey* fields are not supported with pki")
    return SigstoreSigned(
        key_paths=tuple([key_path] if key_path else key_paths or ()),
        key_datas=tuple([key_data] if key_data is not None else key_datas or ()),
        uses_fulcio=fulcio is not None,
        uses_pki=pki is not None,
        uses_rekor=rekor > 0,
        identity=_signed_identity(obj, path),
    )


def _rekor_sources(obj: JSONObject, path: str) -> int:
    found = [
        string_field(obj, "rekorPublicKeyPath", path) or None,
        listed(obj, "rekorPublicKeyPaths", path, strings_field),
        bytes_field(obj, "rekorPublicKeyData", path),
        listed(obj, "rekorPublicKeyDatas", path, bytes_list_field),
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


def _fulcio(obj: JSONObject, path: str) -> JSONObject:
    where = f"{path}.fulcio"
    fulcio = json_object(obj["fulcio"], where, ("caPath", "caData", "oidcIssuer", "subjectEmail"))
    ca_path = string_field(fulcio, "caPath", where)
    ca_data = bytes_field(fulcio, "caData", where)
    if bool(ca_path) == (ca_data is not None):
        raise Invalid(where, "exactly one of caPath and caData must be specified")
    for key in ("oidcIssuer", "subjectEmail"):
        if not string_field(fulcio, key, where):
            raise Invalid(f"{where}.{key}", f"{key} not specified")
    return fulcio


def _pki(obj: JSONObject, path: str) -> JSONObject:
    where = f"{path}.pki"
    pki = json_object(obj["pki"], where, _PKI_KEYS)
    roots = (string_field(pki, "caRootsPath", where), bytes_field(pki, "caRootsData", where))
    if bool(roots[0]) == (roots[1] is not None):
        raise Invalid(where, "exactly one of caRootsPath and caRootsData must be specified")
    middle = (
        string_field(pki, "caIntermediatesPath", where),
        bytes_field(pki, "caIntermediatesData", where),
    )
    if middle[0] and middle[1] is not None:
        raise Invalid(where, "caIntermediatesPath and caIntermediatesData cannot both be used")
    subjects = [string_field(pki, key, where) for key in ("subjectEmail", "subjectHostname")]
    if not any(subjects):
        raise Invalid(where, "at least one of subjectEmail and subjectHostname must be specified")
    return pki


# --- signedIdentity ----------------------------------------------------------------------------


def _signed_identity(obj: JSONObject, path: str) -> IdentityRule:
    """Absent: matchRepoDigestOrExact; an explicit null is refused (no type)."""
    if "signedIdentity" not in obj:
        return match_repo_digest_or_exact
    return _identity(obj["signedIdentity"], f"{path}.signedIdentity")


def _identity(value: Any, path: str) -> IdentityRule:
    obj = json_object(value, path, None)
    kind = obj.get("type")
    parser = _IDENTITIES.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise Invalid(f"{path}.type", f"unknown policy reference match type {quoted(kind)}")
    return parser(obj, path)


def _fixed(rule: IdentityRule) -> Callable[[JSONObject, str], IdentityRule]:
    def parse(obj: JSONObject, path: str) -> IdentityRule:
        exact_fields(obj, path, ("type",))
        return rule

    return parse


def _exact_reference(obj: JSONObject, path: str) -> IdentityRule:
    exact_fields(obj, path, ("type", "dockerReference"))
    text = string_field(obj, "dockerReference", path)
    try:
        return exact_reference(text)
    except InvalidReferenceError as exc:
        raise Invalid(f"{path}.dockerReference", exc.message) from None


def _exact_repository(obj: JSONObject, path: str) -> IdentityRule:
    exact_fields(obj, path, ("type", "dockerRepository"))
    text = string_field(obj, "dockerRepository", path)
    try:
        parse_docker_reference(text)
    except InvalidReferenceError as exc:
        raise Invalid(f"{path}.dockerRepository", exc.message) from None
    return exact_repository(text)


def _remap_identity(obj: JSONObject, path: str) -> IdentityRule:
    exact_fields(obj, path, ("type", "prefix", "signedPrefix"))
    prefix = string_field(obj, "prefix", path)
    signed_prefix = string_field(obj, "signedPrefix", path)
    for key, value in (("prefix", prefix), ("signedPrefix", signed_prefix)):
        if not valid_remap_prefix(value):
            raise Invalid(
                f"{path}.{key}", f"{key} {json.dumps(value)} is not a host or host/namespace"
            )
    return remap_identity(prefix, signed_prefix)


_REQUIREMENTS: dict[str, Callable[[JSONObject, str], Requirement]] = {
    "insecureAcceptAnything": _accept_anything,
    "reject": _reject,
    "signedBy": _signed_by,
    "signedBaseLayer": _signed_base_layer,
    "sigstoreSigned": _sigstore_signed,
}

_IDENTITIES: dict[str, Callable[[JSONObject, str], IdentityRule]] = {
    "matchExact": _fixed(match_exact),
    "matchRepoDigestOrExact": _fixed(match_repo_digest_or_exact),
    "matchRepository": _fixed(match_repository),
    "exactReference": _exact_reference,
    "exactRepository": _exact_repository,
    "remapIdentity": _remap_identity,
}
