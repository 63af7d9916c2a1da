"""`hangar login` and `logout`: credentials written to (and removed from) the auth file
`podman login` uses, or the credential helper that file names for the registry.

Unlike c/image, writes keep unknown fields of the file, and `remove_all_credentials` erases
the credential helpers' entries but leaves the `credHelpers` map (it is configuration).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from hangar.errors import HangarError
from hangar.registry.authfiles import (
    auth_key,
    auths_of,
    cred_helpers_of,
    default_auth_file,
    load_for_update,
    normalize_auth_key,
    read_json,
    write_atomically,
)
from hangar.registry.credhelpers import run_helper


def store_credentials(
    registry: str, username: str, password: str, *, authfile: str | None = None
) -> Path:
    """Store credentials for `registry` (a host, or host/namespace) in the auth file; if the
    file names a credential helper for that key, the helper stores them instead."""
    key = auth_key(registry)
    if ":" in username:
        raise HangarError(
            "the username must not contain ':'", hint="auth.json stores user:password in one field"
        )
    path = Path(authfile) if authfile else default_auth_file()
    document = load_for_update(path)
    helper = cred_helpers_of(document, path).get(key)
    if helper is not None:
        payload = {"ServerURL": key, "Username": username, "Secret": password}
        run_helper(helper, "store", json.dumps(payload), key, path)
        return path
    auths = auths_of(document, path, create=True)
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    auths[key] = {"auth": encoded}  # the whole entry is replaced, as c/image does
    write_atomically(path, document)
    return path


def remove_credentials(registry: str, *, authfile: str | None = None) -> bool:
    """Remove the credentials stored for `registry` (entries spelled `https://host/...` and
    Docker Hub's aliases too); True when something was removed."""
    key = auth_key(registry)
    path = Path(authfile) if authfile else default_auth_file()
    document = read_json(path)
    if document is None:
        return False
    removed = False
    helper = cred_helpers_of(document, path).get(key)
    if helper is not None:
        removed = run_helper(helper, "erase", key, key, path) is not None
    auths = auths_of(document, path, create=False)
    if auths:
        target = normalize_auth_key(key, legacy=False)
        doomed = [name for name in auths if normalize_auth_key(name, legacy=False) == target]
        for name in doomed:
            del auths[name]
        if doomed:
            write_atomically(path, document)
            removed = True
    return removed


def remove_all_credentials(*, authfile: str | None = None) -> list[str]:
    """Remove every stored credential from the auth file (and from the credential helpers it
    names); returns the keys removed."""
    path = Path(authfile) if authfile else default_auth_file()
    document = read_json(path)
    if document is None:
        return []
    auths = auths_of(document, path, create=False)
    removed = list(auths)
    if auths:
        auths.clear()
        write_atomically(path, document)
    failures = []
    for registry, helper in cred_helpers_of(document, path).items():
        try:
            if run_helper(helper, "erase", registry, registry, path) is not None:
                removed.append(registry)
        except HangarError as exc:
            failures.append(exc.message)
    if failures:
        raise HangarError("; ".join(failures), hint="the auth file entries were removed")
    return removed
