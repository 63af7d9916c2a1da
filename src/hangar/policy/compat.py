"""policy.json fields that older containers/image releases do not know.

containers/image parses policy.json strictly: an unknown key anywhere makes it refuse the
whole policy (5.29, in podman 4.9 and the CRI-O of that time: `Unknown key "keyPaths"`), so
every pull on such a machine fails, whatever hangar's verdict. The versions that introduced
each field were read from containers/image's history (signature/policy_config_sigstore.go:
keyPaths and keyDatas in commit 32d9aab3, rekorPublicKeyPaths/Datas in 7bdb48b2, first in
v5.33.0; pki first in v5.35.0).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# sigstoreSigned field -> the first containers/image release that accepts it
SIGSTORE_FIELDS_SINCE = {
    "keyPaths": "5.33.0",
    "keyDatas": "5.33.0",
    "rekorPublicKeyPaths": "5.33.0",
    "rekorPublicKeyDatas": "5.33.0",
    "pki": "5.35.0",
}


def newer_fields(document: Any) -> list[str]:
    """One warning per sigstoreSigned requirement field an older containers/image refuses,
    naming where it is and the release that introduced it. `document`: the parsed JSON of a
    policy that parse_policy accepted."""
    warnings = []
    for path, requirement in _requirements(document):
        if requirement.get("type") != "sigstoreSigned":
            continue
        for name, since in SIGSTORE_FIELDS_SINCE.items():
            if name in requirement:
                warnings.append(
                    f"{path} uses {name}, which containers/image accepts since {since}: older "
                    f'ones (5.29: Unknown key "{name}") refuse the whole policy.json, and '
                    "podman/CRI-O built on them pull nothing under it (use keyPath or keyData, "
                    "one key per requirement, where those run)"
                )
    return warnings


def _requirements(document: Any) -> Iterator[tuple[str, dict]]:
    if not isinstance(document, dict):
        return
    yield from _listed(document.get("default"), "default")
    transports = document.get("transports")
    if isinstance(transports, dict):
        for name, scopes in transports.items():
            if isinstance(scopes, dict):
                for scope, requirements in scopes.items():
                    yield from _listed(requirements, f'transports."{name}"."{scope}"')


def _listed(value: Any, path: str) -> Iterator[tuple[str, dict]]:
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict):
                yield f"{path}[{index}]", item
