"""registries.conf as podman and skopeo (containers/image, sysregistriesv2) read it: its
`credential-helpers`, and each `[[registry]]`'s `insecure` and `blocked`. Found and merged as
containers/image does:

- the main file: `$CONTAINERS_REGISTRIES_CONF` when set (it must exist); else
  `~/.config/containers/registries.conf` when it exists; else
  `/etc/containers/registries.conf` (a missing one is an empty configuration);
- then the drop-ins `*.conf` of `/etc/containers/registries.conf.d` and of
  `~/.config/containers/registries.conf.d`, each directory in name order; with the user's own
  registries.conf only the user's drop-in directory is read;
- a later file that sets a non-empty `credential-helpers` replaces the earlier value; none at
  all means `["containers-auth.json"]`, the auth.json files;
- a later file's `[[registry]]` replaces an earlier one with the same prefix; the others stay.

A reference's registry entry is the one whose `prefix` (else `location`) is the longest match
of its name (`host[:port]/repository`): equal, or followed by `/`, `:` or `@`; `*.example.com`
matches any subdomain. `insecure = true` lets hangar use plain HTTP and unverified TLS for the
registry without `--tls-verify=false`; `blocked = true` refuses every request to it. The v1
format's `[registries.insecure]` and `[registries.block]` lists are read too.

hangar's endpoints are per registry host, so `insecure` is decided for the host (`host[:port]`
as the name to match): an entry whose prefix names a repository (`example.com/team`) makes
`blocked` refuse that repository's references, but does not make the host insecure.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hangar.errors import HangarError
from hangar.registry.errors import RegistryError

AUTH_FILES_HELPER = "containers-auth.json"
SYSTEM_FILE = Path("/etc/containers/registries.conf")
SYSTEM_DROP_INS = Path("/etc/containers/registries.conf.d")


class RegistriesConfError(HangarError):
    """A registries.conf (or drop-in) podman would refuse to read."""


@dataclass(frozen=True)
class RegistryEntry:
    """One `[[registry]]` (or a v1 list's name): what hangar honours of it."""

    prefix: str
    location: str
    insecure: bool = False
    blocked: bool = False
    source: str = ""  # the file that set it, for messages


@dataclass(frozen=True)
class ConfFile:
    """What one file says (parse_registries_conf's result)."""

    credential_helpers: tuple[str, ...]
    registries: tuple[RegistryEntry, ...]


@dataclass(frozen=True)
class RegistriesConf:
    """The merged configuration of every file, in containers/image's order."""

    credential_helpers: tuple[str, ...] = (AUTH_FILES_HELPER,)
    helpers_source: str = "the default"
    registries: tuple[RegistryEntry, ...] = ()

    def find(self, name: str) -> RegistryEntry | None:
        """The entry for a reference name (`host[:port]/repo`, or a bare host): the longest
        matching prefix, as sysregistriesv2.FindRegistry picks it."""
        best, best_length = None, -1
        for entry in self.registries:
            length = match_prefix(name, entry.prefix)
            if length > best_length:
                best, best_length = entry, length
        return best

    def insecure(self, registry: str) -> bool:
        entry = self.find(registry)
        return entry is not None and entry.insecure

    def check_allowed(self, registry: str, repository: str | None) -> None:
        """Refuse a blocked registry (or repository) as podman does, naming the file."""
        name = f"{registry}/{repository}" if repository else registry
        entry = self.find(name)
        if entry is not None and entry.blocked:
            raise BlockedError(
                f"registry {entry.prefix} is blocked in {entry.source} (blocked = true), so "
                f"hangar does not contact it for {name}",
                registry=registry,
                hint="remove `blocked = true` from that [[registry]] entry if hangar may use "
                "this registry; podman and skopeo refuse it too",
            )


class BlockedError(RegistryError):
    """A reference whose registries.conf entry says `blocked = true`."""


def match_prefix(name: str, prefix: str) -> int:
    """containers/image's refMatchingPrefix: the length matched, -1 for no match. A prefix
    matches the name itself or a name continuing with `/`, `:` or `@` (so `example.com`
    also matches `example.com:5000/x`, a quirk c/image keeps); `*.example.com` matches a
    host ending in `.example.com`."""
    if prefix.startswith("*."):
        suffix = prefix[1:]
        index = name.find(suffix)
        if index == -1 or "/" in name[:index]:
            return -1
        end = index + len(suffix)
        return end if end == len(name) or name[end] in ":/@" else -1
    if name == prefix:
        return len(prefix)
    if len(name) > len(prefix) and name.startswith(prefix) and name[len(prefix)] in ":/@":
        return len(prefix)
    return -1


def credential_helpers() -> tuple[list[str], str]:
    """The helpers in order, and the file that named them (for messages)."""
    conf = load_registries_conf()
    return list(conf.credential_helpers), conf.helpers_source


def load_registries_conf() -> RegistriesConf:
    """Every file merged, read now (a registry client reads it once, at its first request)."""
    helpers: tuple[str, ...] = (AUTH_FILES_HELPER,)
    source = "the default"
    registries: dict[str, RegistryEntry] = {}
    for path in _config_files():
        parsed = parse_registries_conf(_read(path), str(path))
        if parsed.credential_helpers:  # an empty list in a drop-in changes nothing (c/image)
            helpers, source = parsed.credential_helpers, str(path)
        for entry in parsed.registries:
            registries.pop(entry.prefix, None)  # a later file's entry replaces, last in order
            registries[entry.prefix] = entry
    return RegistriesConf(helpers, source, tuple(registries.values()))


def _config_files() -> list[Path]:
    user_dir = Path.home() / ".config" / "containers"
    explicit = os.environ.get("CONTAINERS_REGISTRIES_CONF")
    if explicit:
        main = Path(explicit)
        if not main.is_file():
            raise RegistriesConfError(
                f"$CONTAINERS_REGISTRIES_CONF names {main}, which does not exist",
                hint="fix the path, or unset CONTAINERS_REGISTRIES_CONF",
            )
        directories = [SYSTEM_DROP_INS, user_dir / "registries.conf.d"]
    elif (user_dir / "registries.conf").is_file():
        main, directories = user_dir / "registries.conf", [user_dir / "registries.conf.d"]
    else:
        main, directories = SYSTEM_FILE, [SYSTEM_DROP_INS, user_dir / "registries.conf.d"]
    files = [main] if main.is_file() else []
    for directory in directories:
        if directory.is_dir():
            files += sorted(p for p in directory.glob("*.conf") if p.is_file())
    return files


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _bad(str(path), getattr(exc, "strerror", None) or "not UTF-8 text") from None


def parse_registries_conf(text: str, source: str) -> ConfFile:
    """One registries.conf (or drop-in) as containers/image reads it; RegistriesConfError for
    anything podman would refuse. Keys hangar has no use for (mirrors, search registries,
    aliases) are accepted and ignored."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _bad(source, f"not valid TOML ({exc})") from None
    except RecursionError:
        raise _bad(source, "not valid TOML (nested too deeply)") from None
    helpers = document.get("credential-helpers")
    if helpers is None:
        helpers = []
    if not isinstance(helpers, list) or not all(isinstance(item, str) and item for item in helpers):
        raise _bad(source, "credential-helpers must be a list of helper names")
    v2 = document.get("registry", [])
    v1 = document.get("registries")
    if not isinstance(v2, list) or not all(isinstance(item, dict) for item in v2):
        raise _bad(source, "[[registry]] must be a list of tables")
    if v1 is not None and not isinstance(v1, dict):
        raise _bad(source, "[registries] must be a table")
    if v1 and v2:
        raise _bad(source, "mixing the v1 ([registries.*]) and v2 ([[registry]]) formats")
    entries = [_entry(item, source) for item in v2] if v2 else _v1_entries(v1 or {}, source)
    merged: dict[str, RegistryEntry] = {}
    for entry in entries:
        known = merged.get(entry.prefix)
        if known is not None and known != entry:
            raise _bad(source, f"registry {entry.prefix} is defined more than once, differently")
        merged[entry.prefix] = entry
    return ConfFile(tuple(helpers), tuple(merged.values()))


def _entry(item: dict[str, Any], source: str) -> RegistryEntry:
    location = _location(item.get("location", ""), source)
    prefix = item.get("prefix", "")
    if not isinstance(prefix, str):
        raise _bad(source, "a [[registry]] prefix must be a string")
    prefix = _location(prefix, source) if prefix and not prefix.startswith("*.") else prefix
    prefix = prefix or location
    if not prefix:
        raise _bad(source, "a [[registry]] needs a location or a prefix")
    flags = {}
    for key in ("insecure", "blocked"):
        value = item.get(key, False)
        if not isinstance(value, bool):
            raise _bad(source, f"[[registry]] {prefix}: {key} must be true or false")
        flags[key] = value
    return RegistryEntry(prefix, location, flags["insecure"], flags["blocked"], source)


def _location(value: object, source: str) -> str:
    """containers/image's parseLocation: no scheme, a trailing `/` dropped."""
    if not isinstance(value, str):
        raise _bad(source, "a [[registry]] location must be a string")
    trimmed = value.rstrip("/")
    if trimmed.startswith(("http://", "https://")):
        raise _bad(source, f"invalid location {value!r}: URI schemes are not supported")
    return trimmed


def _v1_entries(v1: dict[str, Any], source: str) -> list[RegistryEntry]:
    entries: dict[str, RegistryEntry] = {}
    for table, flag in (("insecure", "insecure"), ("block", "blocked")):
        section = v1.get(table, {})
        names = section.get("registries", []) if isinstance(section, dict) else None
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise _bad(source, f"[registries.{table}] registries must be a list of names")
        for name in names:
            location = _location(name, source)
            entry = entries.get(location, RegistryEntry(location, location, source=source))
            entries[location] = RegistryEntry(
                location,
                location,
                insecure=entry.insecure or flag == "insecure",
                blocked=entry.blocked or flag == "blocked",
                source=source,
            )
    return list(entries.values())


def _bad(source: str, why: str) -> RegistriesConfError:
    return RegistriesConfError(
        f"cannot read registries configuration {source}: {why}",
        hint="fix the file (podman and skopeo read it too)",
    )
