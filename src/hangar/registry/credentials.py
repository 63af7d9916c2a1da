"""Registry credentials from the files podman, skopeo and docker already use.

Lookup follows containers/image (its credentials lookup for an image reference):
- the files, in order: `$REGISTRY_AUTH_FILE` alone when set (or `authfile=` alone, like
  `podman --authfile`); otherwise `$XDG_RUNTIME_DIR/containers/auth.json` (when
  XDG_RUNTIME_DIR is unset: `/run/containers/<uid>/auth.json`, as c/image), then
  `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/...`), `$DOCKER_CONFIG/config.json` (or
  `~/.docker/config.json`), and `~/.dockercfg` (legacy: the top level is the auths map);
- in each file, `credHelpers[registry]` first (`docker-credential-<name> get`), then `auths` at
  the most specific key (`host/ns/repo`, `host/ns`, `host`), then any key that normalizes to the
  host (`https://host/v1/`, Docker Hub's aliases);
- the first file with non-empty credentials wins; an entry whose `auth` has no `:` is skipped
  (docker writes `{}` entries next to credential helpers).

Differences from c/image, on purpose: an explicit `authfile=` is used alone (c/image also reads
the other files after it); an explicit `authfile=` that does not exist is an error; an empty
(0-byte) file counts as no credentials; `credHelpers` is also tried under Docker Hub's other
spellings. The files themselves: authfiles.py; writes (login, logout): logins.py.

Before all that, registries.conf `credential-helpers` (registries_conf.py) says which helpers
are asked, in order: `containers-auth.json` is the lookup above, any other NAME runs
`docker-credential-NAME get` with the registry host (never a namespace) on stdin.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hangar import output
from hangar.errors import HangarError
from hangar.registry.authfiles import (
    AuthFile,
    as_auths_map,
    auth_file_chain,
    auths_of,
    cred_helpers_of,
    field_of,
    host_spellings,
    malformed,
    normalize_auth_key,
    normalize_host,
    read_json,
)
from hangar.registry.credhelpers import run_helper
from hangar.registry.registries_conf import AUTH_FILES_HELPER, credential_helpers

_TOKEN_USERNAME = "<token>"


@dataclass(frozen=True, repr=False)
class Credentials:
    username: str | None
    password: str | None
    identity_token: str | None
    source: str | None = field(default=None, compare=False)  # file (or helper) it came from

    def __repr__(self) -> str:
        password = "***" if self.password else None
        token = "***" if self.identity_token else None
        return (
            f"Credentials(username={self.username!r}, password={password!r}, "
            f"identity_token={token!r}, source={self.source!r})"
        )

    __str__ = __repr__


def lookup_credentials(
    registry: str, repository: str | None = None, *, authfile: str | None = None
) -> Credentials | None:
    """Credentials for `registry` (and `repository`, for namespaced entries), or None."""
    host = normalize_host(registry)
    key = f"{host}/{repository}" if repository else host
    if authfile and not Path(authfile).exists():
        raise HangarError(
            f"credentials file {authfile} does not exist",
            hint="check the --authfile path, or run `hangar login --authfile FILE REGISTRY`",
        )
    helpers, configured_in = credential_helpers()
    errors: list[HangarError] = []
    for helper in helpers:
        # As containers/image: a failing helper is noted and the next one asked; the failures
        # matter only when no helper has credentials.
        try:
            if helper == AUTH_FILES_HELPER:
                found = _from_auth_files(host, key, authfile)
            else:
                where = f"credential-helpers in {configured_in}"
                found = _from_helper(helper, host, Path(configured_in), where)
        except HangarError as exc:
            output.debug(f"credential helper {helper} failed for {key}: {exc}")
            errors.append(exc)
            continue
        if found is not None:
            output.debug(f"using credentials for {key} from {found.source}")
            return found
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise HangarError("; ".join(error.message for error in errors), hint=errors[0].hint)
    output.debug(f"no credentials for {key}")
    return None


def _from_auth_files(host: str, key: str, authfile: str | None) -> Credentials | None:
    """The `containers-auth.json` helper: the auth.json chain (credHelpers inside included)."""
    for auth_file in auth_file_chain(authfile=authfile):
        found = _find_in_file(auth_file, host, key)
        if found is not None:
            return found
    return None


def _find_in_file(auth_file: AuthFile, host: str, key: str) -> Credentials | None:
    document = read_json(auth_file.path)
    if document is None:
        return None
    path = auth_file.path
    if auth_file.legacy:
        auths, helpers = as_auths_map(document, path), {}
    else:
        auths, helpers = auths_of(document, path, create=False), cred_helpers_of(document, path)
    for spelling in host_spellings(host):
        if spelling in helpers:
            output.debug(f"looking up {host} with credential helper {helpers[spelling]} ({path})")
            return _from_helper(helpers[spelling], host, path)
    candidates = [host] if auth_file.legacy else _keys_for(key)
    for candidate in candidates:
        if candidate in auths:
            return _decode_entry(path, candidate, auths[candidate])
    target = normalize_auth_key(host, legacy=False)
    for name, entry in auths.items():
        if normalize_auth_key(name, legacy=auth_file.legacy) == target:
            return _decode_entry(path, name, entry)
    return None


def _keys_for(key: str) -> list[str]:
    """quay.io/ns/app -> [quay.io/ns/app, quay.io/ns, quay.io]: the best match first."""
    keys = [key]
    while "/" in key:
        key = key.rsplit("/", 1)[0]
        keys.append(key)
    return keys


def _decode_entry(path: Path, key: str, entry: Any) -> Credentials | None:
    if not isinstance(entry, dict):
        raise malformed(path, f'the entry "{key}" is not an object')
    auth = field_of(entry, "auth") or ""
    token = field_of(entry, "identitytoken") or ""
    if not isinstance(auth, str) or not isinstance(token, str):
        raise malformed(path, f'"auth" and "identitytoken" of "{key}" must be strings')
    try:
        decoded = base64.b64decode(auth.replace("\n", "").replace("\r", ""), validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError):
        reason = f'the "auth" field of "{key}" is not base64 of user:password'
        raise malformed(path, reason) from None
    username, colon, password = text.partition(":")
    if not colon:
        if text:  # never print the decoded text: it may be a secret
            output.warn(f'the "auth" field of "{key}" in {path} has no ":"; entry ignored')
        return None
    password = password.strip("\x00")
    if not (username or password or token):
        return None
    return Credentials(username, password, token or None, source=str(path))


def _from_helper(
    helper: str, host: str, path: Path, where: str | None = None
) -> Credentials | None:
    out = run_helper(helper, "get", host, host, path, where)
    if out is None:
        return None
    try:
        answer = json.loads(out)
        username, secret = answer.get("Username") or "", answer.get("Secret") or ""
        if not isinstance(username, str) or not isinstance(secret, str):
            raise TypeError
    except (ValueError, TypeError, AttributeError, RecursionError):
        raise HangarError(
            f"credential helper docker-credential-{helper} returned an answer that is not "
            f'{{"Username": ..., "Secret": ...}} for {host}'
        ) from None
    source = f"docker-credential-{helper} ({where or path})"
    if not username and not secret:
        return None
    if username == _TOKEN_USERNAME:
        return Credentials(None, None, secret, source=source)
    return Credentials(username, secret, None, source=source)
