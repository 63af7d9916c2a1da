"""TLS settings per registry host from certs.d, as containers/image reads them.

c/image uses the first existing directory among `~/.config/containers/certs.d/HOST[:PORT]`,
`/etc/containers/certs.d/HOST[:PORT]` and `/etc/docker/certs.d/HOST[:PORT]`; in it every `*.crt`
is an extra CA (added to the system's), and every `X.cert` needs its `X.key` (and the reverse),
a client certificate for mutual TLS. Docker Hub's directory is `docker.io` (c/image uses the
name the user sees, not registry-1.docker.io).

Where Python's ssl differs from Go's crypto/tls:
- a context holds one client certificate; with several pairs the first by file name is used
  (Go offers each to the server); every pair is still checked, so a missing key is an error;
- a `.crt` that holds no PEM certificate is skipped with a warning (Go skips it silently).

Client certificates are loaded with verification off too (c/image does: the server may still
require them). Contexts are cached per (host, verify): building one reads the system CA store.
"""

from __future__ import annotations

import os
import ssl
import threading
from pathlib import Path

from hangar import output
from hangar.errors import HangarError

# The system-wide directories, after the user's; a module constant so tests can point it away
# from /etc.
SYSTEM_CERTS_DIRS: tuple[Path, ...] = (
    Path("/etc/containers/certs.d"),
    Path("/etc/docker/certs.d"),
)

_cache: dict[tuple[str, bool], ssl.SSLContext] = {}
_cache_lock = threading.Lock()


def certs_dir(host: str) -> Path | None:
    """The certs.d directory for `host` (host[:port]), or None when there is none."""
    _check_host(host)
    for base in (Path.home() / ".config" / "containers" / "certs.d", *SYSTEM_CERTS_DIRS):
        candidate = base / host
        try:
            candidate.stat()
        except (FileNotFoundError, NotADirectoryError):
            continue
        except PermissionError:  # as c/image: not ours to read, look further
            output.debug(f"skipping {candidate}: permission denied")
            continue
        return candidate
    return None


def ssl_context(host: str, verify: bool) -> ssl.SSLContext:
    """The client context for `host`: system CAs plus certs.d (verify=True), or no verification
    at all (verify=False); client certificates from certs.d in both cases."""
    key = (host, verify)
    with _cache_lock:
        context = _cache.get(key)
        if context is None:
            context = _build_context(host, verify)
            _cache[key] = context
        return context


def clear_cache() -> None:
    """Forget the cached contexts (certs.d changed, or tests)."""
    with _cache_lock:
        _cache.clear()


def _build_context(host: str, verify: bool) -> ssl.SSLContext:
    if verify:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    directory = certs_dir(host)
    if directory is not None:
        _load_directory(context, directory, load_cas=verify)
    return context


def _load_directory(context: ssl.SSLContext, directory: Path, *, load_cas: bool) -> None:
    try:
        names = sorted(os.listdir(directory))
    except PermissionError:
        output.debug(f"skipping {directory}: permission denied")
        return
    except NotADirectoryError:
        raise HangarError(
            f"{directory} is not a directory",
            hint="certs.d/HOST[:PORT] must be a directory of .crt, .cert and .key files",
        ) from None
    except OSError as exc:
        raise HangarError(f"cannot read {directory}: {exc.strerror}") from None
    present = set(names)
    pairs: list[tuple[Path, Path]] = []
    for name in names:
        if name.endswith(".crt") and load_cas:
            _load_ca(context, directory / name)
        elif name.endswith(".cert"):
            key_name = name[: -len(".cert")] + ".key"
            if key_name not in present:
                raise HangarError(
                    f"missing key {key_name} for client certificate {directory / name}",
                    hint="CA certificates must use the extension .crt",
                )
            pairs.append((directory / name, directory / key_name))
        elif name.endswith(".key"):
            cert_name = name[: -len(".key")] + ".cert"
            if cert_name not in present:
                raise HangarError(
                    f"missing client certificate {cert_name} for key {directory / name}",
                    hint="a client key X.key needs its certificate X.cert beside it",
                )
    for cert, key in pairs:
        _check_pair(cert, key)
    if pairs:
        context.load_cert_chain(str(pairs[0][0]), str(pairs[0][1]), password=_no_passphrase)
        if len(pairs) > 1:
            output.warn(
                f"{directory} has {len(pairs)} client certificates; using {pairs[0][0].name}"
            )


def _load_ca(context: ssl.SSLContext, path: Path) -> None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # a dangling link, or removed meanwhile: c/image warns too
        output.warn(f"cannot read CA certificate {path}: it does not exist")
        return
    except OSError as exc:
        raise HangarError(f"cannot read CA certificate {path}: {exc.strerror}") from None
    try:
        context.load_verify_locations(cadata=data.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError, ValueError):
        output.warn(f"{path} holds no PEM certificate; ignored")


def _check_pair(cert: Path, key: Path) -> None:
    """Load the pair into a scratch context: a bad pair is reported by name, whichever it is."""
    scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        scratch.load_cert_chain(str(cert), str(key), password=_no_passphrase)
    except _EncryptedKeyError:
        raise HangarError(
            f"client key {key} is encrypted",
            hint="certs.d keys must be unencrypted, as for podman and docker",
        ) from None
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
        raise HangarError(
            f"cannot load client certificate {cert} with key {key}: {reason}",
            hint="both must be PEM, the key unencrypted and matching the certificate",
        ) from None


class _EncryptedKeyError(Exception):
    pass


def _no_passphrase() -> bytes:
    # Without this callback OpenSSL would prompt on the terminal in the middle of a run.
    raise _EncryptedKeyError


def _check_host(host: str) -> None:
    if not host or "/" in host or host in (".", "..") or "\x00" in host:
        raise HangarError(f'"{host}" is not a registry host[:port]')
