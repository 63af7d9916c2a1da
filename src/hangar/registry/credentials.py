"""Registry credentials from the files podman, skopeo and docker already use.

Lookup follows containers/image pkg/docker/config (GetCredentialsForRef):
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
spellings; writes keep unknown fields of the file (c/image drops them); `remove_all_credentials`
erases the credential helpers' entries but leaves the `credHelpers` map (it is configuration).

Before all that, registries.conf `credential-helpers` (registries_conf.py) says which helpers
are asked, in order: `containers-auth.json` is the lookup above, any other NAME runs
`docker-credential-NAME get` with the registry host (never a namespace) on stdin.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hangar import output
from hangar.errors import HangarError
from hangar.reference import DOCKER_HUB, DOCKER_HUB_ALIASES
from hangar.registry.registries_conf import AUTH_FILES_HELPER, credential_helpers

HELPER_TIMEOUT = 60.0  # seconds; a helper may unlock a keyring
_NOT_FOUND_MESSAGE = "credentials not found in native keychain"
_TOKEN_USERNAME = "<token>"
_SCHEMES = ("http://", "https://")


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


@dataclass(frozen=True)
class AuthFile:
    path: Path
    legacy: bool = False  # ~/.dockercfg: the top level is the auths map


def auth_file_chain(*, authfile: str | None = None) -> list[AuthFile]:
    """The files searched for credentials, in order (they need not exist)."""
    if authfile:
        return [AuthFile(Path(authfile))]
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return [AuthFile(Path(os.environ["REGISTRY_AUTH_FILE"]))]
    home = Path.home()
    chain = []
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        if Path(runtime_dir).exists():
            chain.append(AuthFile(Path(runtime_dir) / "containers" / "auth.json"))
        else:  # c/image warns and goes on: the image may be public
            output.debug(
                f"$XDG_RUNTIME_DIR {runtime_dir} does not exist; not reading auth.json there"
            )
    else:
        chain.append(AuthFile(Path(f"/run/containers/{os.getuid()}/auth.json")))
    chain.append(AuthFile(_config_home() / "containers" / "auth.json"))
    docker_config = os.environ.get("DOCKER_CONFIG")
    docker_dir = Path(docker_config) if docker_config else home / ".docker"
    chain.append(AuthFile(docker_dir / "config.json"))
    chain.append(AuthFile(home / ".dockercfg", legacy=True))
    return chain


def default_auth_file() -> Path:
    """Where `hangar login` writes, as `podman login` does (XDG_CONFIG_HOME is honoured so that
    the file written is one the lookup reads)."""
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return Path(os.environ["REGISTRY_AUTH_FILE"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    return _config_home() / "containers" / "auth.json"


def lookup_credentials(
    registry: str, repository: str | None = None, *, authfile: str | None = None
) -> Credentials | None:
    """Credentials for `registry` (and `repository`, for namespaced entries), or None."""
    host = _normalize_host(registry)
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


def store_credentials(
    registry: str, username: str, password: str, *, authfile: str | None = None
) -> Path:
    """Store credentials for `registry` (a host, or host/namespace) in the auth file; if the
    file names a credential helper for that key, the helper stores them instead."""
    key = _auth_key(registry)
    if ":" in username:
        raise HangarError(
            "the username must not contain ':'", hint="auth.json stores user:password in one field"
        )
    path = Path(authfile) if authfile else default_auth_file()
    document = _load_for_update(path)
    helper = _cred_helpers(document, path).get(key)
    if helper is not None:
        payload = {"ServerURL": key, "Username": username, "Secret": password}
        _run_helper(helper, "store", json.dumps(payload), key, path)
        return path
    auths = _auths(document, path, create=True)
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    auths[key] = {"auth": encoded}  # the whole entry is replaced, as c/image does
    _write_atomically(path, document)
    return path


def remove_credentials(registry: str, *, authfile: str | None = None) -> bool:
    """Remove the credentials stored for `registry` (entries spelled `https://host/...` and
    Docker Hub's aliases too); True when something was removed."""
    key = _auth_key(registry)
    path = Path(authfile) if authfile else default_auth_file()
    document = _read_json(path)
    if document is None:
        return False
    removed = False
    helper = _cred_helpers(document, path).get(key)
    if helper is not None:
        removed = _run_helper(helper, "erase", key, key, path) is not None
    auths = _auths(document, path, create=False)
    if auths:
        target = _normalize_auth_key(key, legacy=False)
        doomed = [name for name in auths if _normalize_auth_key(name, legacy=False) == target]
        for name in doomed:
            del auths[name]
        if doomed:
            _write_atomically(path, document)
            removed = True
    return removed


def remove_all_credentials(*, authfile: str | None = None) -> list[str]:
    """Remove every stored credential from the auth file (and from the credential helpers it
    names); returns the keys removed."""
    path = Path(authfile) if authfile else default_auth_file()
    document = _read_json(path)
    if document is None:
        return []
    auths = _auths(document, path, create=False)
    removed = list(auths)
    if auths:
        auths.clear()
        _write_atomically(path, document)
    failures = []
    for registry, helper in _cred_helpers(document, path).items():
        try:
            if _run_helper(helper, "erase", registry, registry, path) is not None:
                removed.append(registry)
        except HangarError as exc:
            failures.append(exc.message)
    if failures:
        raise HangarError("; ".join(failures), hint="the auth file entries were removed")
    return removed


# --- lookup ---------------------------------------------------------------------------------


def _find_in_file(auth_file: AuthFile, host: str, key: str) -> Credentials | None:
    document = _read_json(auth_file.path)
    if document is None:
        return None
    path = auth_file.path
    if auth_file.legacy:
        auths, helpers = _as_auths_map(document, path), {}
    else:
        auths, helpers = _auths(document, path, create=False), _cred_helpers(document, path)
    for spelling in _host_spellings(host):
        if spelling in helpers:
            output.debug(f"looking up {host} with credential helper {helpers[spelling]} ({path})")
            return _from_helper(helpers[spelling], host, path)
    candidates = [host] if auth_file.legacy else _keys_for(key)
    for candidate in candidates:
        if candidate in auths:
            return _decode_entry(path, candidate, auths[candidate])
    target = _normalize_auth_key(host, legacy=False)
    for name, entry in auths.items():
        if _normalize_auth_key(name, legacy=auth_file.legacy) == target:
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
        raise _malformed(path, f'the entry "{key}" is not an object')
    auth = _field(entry, "auth") or ""
    token = _field(entry, "identitytoken") or ""
    if not isinstance(auth, str) or not isinstance(token, str):
        raise _malformed(path, f'"auth" and "identitytoken" of "{key}" must be strings')
    try:
        decoded = base64.b64decode(auth.replace("\n", "").replace("\r", ""), validate=True)
        text = decoded.decode("utf-8")
    except (binascii.Error, ValueError):
        reason = f'the "auth" field of "{key}" is not base64 of user:password'
        raise _malformed(path, reason) from None
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
    out = _run_helper(helper, "get", host, host, path, where)
    if out is None:
        return None
    try:
        answer = json.loads(out)
        username, secret = answer.get("Username") or "", answer.get("Secret") or ""
        if not isinstance(username, str) or not isinstance(secret, str):
            raise TypeError
    except (ValueError, TypeError, AttributeError):
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


def _run_helper(
    helper: str, action: str, stdin: str, host: str, path: Path, where: str | None = None
) -> str | None:
    """Run `docker-credential-<helper> <action>`; its stdout, or None for "not found".
    `where` says which configuration named the helper (default: credHelpers in `path`)."""
    program = f"docker-credential-{helper}"
    executable = shutil.which(program)
    if executable is None:
        named_in = where or f'credHelpers "{host}" in {path}'
        raise HangarError(
            f"credential helper {program} ({named_in}) is not installed or not on PATH",
            hint="install it, or remove it from "
            + ("that credential-helpers list" if where else "that credHelpers entry"),
        )
    try:
        result = subprocess.run(
            [executable, action],
            input=stdin.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise HangarError(
            f"credential helper {program} did not answer within {HELPER_TIMEOUT:.0f}s for {host}"
        ) from None
    except OSError as exc:
        raise HangarError(f"cannot run credential helper {program}: {exc.strerror}") from None
    out = result.stdout.decode("utf-8", errors="replace").strip()
    if result.returncode == 0:
        return out
    if out == _NOT_FOUND_MESSAGE:
        return None
    detail = (out or result.stderr.decode("utf-8", errors="replace").strip()).splitlines()
    message = detail[0][:200] if detail else f"exit status {result.returncode}"
    raise HangarError(f"credential helper {program} failed to {action} for {host}: {message}")


# --- file contents --------------------------------------------------------------------------


def _read_json(path: Path) -> Any | None:
    """The parsed file; None when it does not exist (or is empty)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise HangarError(f"credentials file {path} is a directory") from None
    except OSError as exc:
        raise HangarError(f"cannot read credentials file {path}: {exc.strerror}") from None
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _malformed(path, f"not valid JSON ({exc})") from None


def _load_for_update(path: Path) -> dict[str, Any]:
    document = _read_json(path)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise _malformed(path, "the top level is not a JSON object")
    return document


def _auths(document: Any, path: Path, *, create: bool) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise _malformed(path, "the top level is not a JSON object")
    name = _field_name(document, "auths")
    value = document.get(name) if name else None
    if value is None:
        value = {}
        if create:
            document[name or "auths"] = value
    if not isinstance(value, dict):
        raise _malformed(path, '"auths" is not an object')
    return value


def _as_auths_map(document: Any, path: Path) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise _malformed(path, "the top level is not a JSON object")
    return document


def _cred_helpers(document: Any, path: Path) -> dict[str, str]:
    if not isinstance(document, dict):
        raise _malformed(path, "the top level is not a JSON object")
    helpers = _field(document, "credHelpers") or {}
    if not isinstance(helpers, dict) or not all(isinstance(v, str) for v in helpers.values()):
        raise _malformed(path, '"credHelpers" is not an object of strings')
    return helpers


def _field_name(obj: dict[str, Any], name: str) -> str | None:
    """Go's encoding/json matches field names case-insensitively, preferring an exact match."""
    if name in obj:
        return name
    matches = [key for key in obj if key.lower() == name.lower()]
    return matches[-1] if matches else None


def _field(obj: dict[str, Any], name: str) -> Any:
    key = _field_name(obj, name)
    return obj[key] if key is not None else None


def _write_atomically(path: Path, document: dict[str, Any]) -> None:
    """Write to a 0600 temporary file in the same directory, then rename it over the file: a
    reader sees the old file or the new one, never half of one."""
    data = (json.dumps(document, indent="\t") + "\n").encode()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise HangarError(f"cannot write credentials file {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise HangarError(f"cannot write credentials file {path}: {exc.strerror}") from None


# --- keys -----------------------------------------------------------------------------------


def _normalize_host(registry: str) -> str:
    host = registry
    for scheme in _SCHEMES:
        if host.startswith(scheme):
            host = host[len(scheme) :]
    host = host.split("/", 1)[0]
    return DOCKER_HUB if host.lower() in DOCKER_HUB_ALIASES else host


def _auth_key(registry: str) -> str:
    """The key `login`/`logout` use: host or host/namespace, Docker Hub spelled docker.io."""
    key = registry.strip()
    for scheme in _SCHEMES:
        if key.startswith(scheme):
            key = key[len(scheme) :]
    key = key.rstrip("/")
    host, slash, rest = key.partition("/")
    if not host or "@" in key or (slash and ":" in rest) or any(c.isspace() for c in key):
        raise HangarError(
            f'"{registry}" is not a registry: use a host[:port], optionally with a namespace',
            hint="for example registry.example.com or 127.0.0.1:5000",
        )
    host = DOCKER_HUB if host.lower() in DOCKER_HUB_ALIASES else host
    return f"{host}/{rest}" if slash else host


def _normalize_auth_key(key: str, *, legacy: bool) -> str:
    """c/image normalizeAuthFileKey: URL keys become their host; Docker Hub's names are one."""
    stripped = key
    for scheme in _SCHEMES:
        if stripped.startswith(scheme):
            stripped = stripped[len(scheme) :]
            break
    if legacy or stripped != key:
        stripped = stripped.split("/", 1)[0]
    return "index.docker.io" if stripped.lower() in DOCKER_HUB_ALIASES else stripped


def _host_spellings(host: str) -> list[str]:
    if host == DOCKER_HUB:
        return [
            DOCKER_HUB,
            "index.docker.io",
            "registry-1.docker.io",
            "https://index.docker.io/v1/",
        ]
    return [host]


def _config_home() -> Path:
    configured = os.environ.get("XDG_CONFIG_HOME")
    return Path(configured) if configured else Path.home() / ".config"


def _malformed(path: Path, reason: str) -> HangarError:
    return HangarError(
        f"credentials file {path} is malformed: {reason}",
        hint="fix or remove the file, then run `hangar login` again",
    )
