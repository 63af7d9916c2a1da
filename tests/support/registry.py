"""Start Debian's docker-registry (distribution 2.8) on 127.0.0.1 for tests.

Four kinds: `http` (plain, no auth), `https` (TLS with a test CA), `basic` (htpasswd) and
`token` (bearer tokens from tests.support.tokens.TokenServer). `basic` and `token` serve plain
HTTP unless `tls=True` is asked. Storage is a folder under the caller's work dir, so a
stop()/start() keeps the data; start() comes back on the same port.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.pki import CertificateAuthority
from tests.support.tokens import TokenServer, make_token_server

REGISTRY_BINARY = "/usr/bin/docker-registry"
KINDS = ("http", "https", "basic", "token")
TEST_USERNAME = "hangar"
TEST_PASSWORD = "hangar-test-pass"
# bcrypt of TEST_PASSWORD, made once with `htpasswd -Bbn -C 4 hangar hangar-test-pass`.
# A fixed hash needs neither apache2-utils nor the bcrypt package; cost 4 (the minimum) keeps
# the registry's check of every authenticated request to about a millisecond.
_HTPASSWD_LINE = "hangar:$2y$04$dl6WHeLj0opF6IsqjVZW/.taSK643TUM8JNm0OrqDRowEbt6LiSYK\n"
TOKEN_SERVICE = "hangar-test-registry"
PROXIED_NAME = "registry.hangar.test"  # in every TLS registry's certificate

STARTUP_DEADLINE_SECONDS = 20.0
STOP_GRACE_SECONDS = 5.0
PORT_ATTEMPTS = 5
LOG_TAIL_LINES = 40

_live: set[RegistryServer] = set()
_live_lock = threading.Lock()


class RegistryStartError(RuntimeError):
    """The registry did not come up; the message carries the tail of its log."""


@dataclass(eq=False)
class RegistryServer:
    kind: str  # "http" | "https" | "basic" | "token"
    host: str  # "127.0.0.1:PORT"
    scheme: str  # "http" | "https"
    url: str  # f"{scheme}://{host}"
    ca_cert: Path | None  # CA that signed the TLS certificate (None on plain HTTP)
    username: str | None
    password: str | None
    token_server: TokenServer | None
    workdir: Path
    config_path: Path
    log_path: Path
    storage: Path
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def port(self) -> int:
        return int(self.host.rsplit(":", 1)[1])

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start (again) on the same port and storage; returns once /v2/ answers."""
        if self.running:
            return
        self._process = _spawn(self.config_path, self.log_path)
        with _live_lock:
            _live.add(self)
        try:
            _wait_ready(self)
        except RegistryStartError:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the registry process only (the token server keeps running: see close())."""
        process, self._process = self._process, None
        if process is not None:
            _terminate(process)
        with _live_lock:
            _live.discard(self)

    def kill(self) -> None:
        """SIGKILL the registry: an abrupt failure, for fault tests (start() brings it back)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        with _live_lock:
            _live.discard(self)

    def close(self) -> None:
        """Stop the registry and its token server: what fixtures call at the end."""
        self.stop()
        if self.token_server is not None:
            self.token_server.stop()

    def install_ca(self, home: Path) -> Path:
        """Write the CA where containers/image looks: HOME/.config/containers/certs.d/HOST/."""
        if self.ca_cert is None:
            raise ValueError(f"registry {self.host} serves plain HTTP: it has no CA")
        directory = home / ".config" / "containers" / "certs.d" / self.host
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / "ca.crt"
        target.write_bytes(self.ca_cert.read_bytes())
        return target

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this registry's CA only (system CAs on plain HTTP)."""
        return ssl.create_default_context(cafile=str(self.ca_cert) if self.ca_cert else None)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return _tail(self.log_path, lines)


def start_registry(
    kind: str,
    workdir: Path,
    *,
    tls: bool | None = None,
    log_level: str = "warn",
    deletes: bool = True,
) -> RegistryServer:
    """Start a registry of `kind` with its files under `workdir`; waits until /v2/ answers.

    `tls` defaults to True for `https` only; `basic` and `token` can be served over TLS too.
    `deletes=False` is distribution's default (storage.delete.enabled off: DELETE answers
    405 UNSUPPORTED).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}: expected one of {KINDS}")
    use_tls = (kind == "https") if tls is None else tls
    if kind == "http" and use_tls:
        raise ValueError("kind 'http' is plain HTTP: use kind 'https' for TLS")
    workdir.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority(workdir / "pki") if use_tls or kind == "token" else None
    token_server = _start_token_server(kind, ca, use_tls)
    last_error: RegistryStartError | None = None
    for _attempt in range(PORT_ATTEMPTS):
        server = _prepare(
            kind, workdir, ca, use_tls, token_server, log_level, _free_port(), deletes
        )
        try:
            server.start()
            return server
        except RegistryStartError as error:
            last_error = error
            if "address already in use" not in str(error):
                break
    if token_server is not None:
        token_server.stop()
    assert last_error is not None
    raise last_error


def write_auth_json(path: Path, host: str, username: str, password: str) -> Path:
    """Add credentials for `host` to an auth.json (created if missing), containers/image style."""
    data: dict[str, dict[str, dict[str, str]]] = {"auths": {}}
    if path.exists():
        data = json.loads(path.read_text())
        data.setdefault("auths", {})
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    data["auths"][host] = {"auth": encoded}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    path.chmod(0o600)
    return path


def stop_all() -> None:
    """Stop every registry still running (atexit hook, for runs whose fixtures did not end)."""
    with _live_lock:
        servers = list(_live)
    for server in servers:
        server.close()


atexit.register(stop_all)


# -- configuration -----------------------------------------------------------------------


def _start_token_server(
    kind: str, ca: CertificateAuthority | None, use_tls: bool
) -> TokenServer | None:
    if kind != "token":
        return None
    assert ca is not None
    return make_token_server(
        service=TOKEN_SERVICE,
        username=TEST_USERNAME,
        password=TEST_PASSWORD,
        signer=ca.issue_signing_certificate(),
        tls=ca.issue_server_certificate("token-tls") if use_tls else None,
    )


def _prepare(
    kind: str,
    workdir: Path,
    ca: CertificateAuthority | None,
    use_tls: bool,
    token_server: TokenServer | None,
    log_level: str,
    port: int,
    deletes: bool = True,
) -> RegistryServer:
    host = f"127.0.0.1:{port}"
    scheme = "https" if use_tls else "http"
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    http: dict[str, object] = {
        "addr": host,
        # A fixed secret: upload state survives a restart of the same registry.
        "secret": "hangar-test-registry-secret",
        "headers": {"X-Content-Type-Options": ["nosniff"]},
        # stop() (SIGTERM) lets the requests in flight finish, as stopping a registry service
        # does: distribution writes a tag's link file in place (truncate, then write), and one
        # cut halfway stays a 500 for good. An abrupt death is kill() (SIGKILL).
        "draintimeout": "3s",
    }
    if use_tls:
        assert ca is not None
        # A name besides 127.0.0.1: proxies are never used for loopback addresses (see
        # tests/support/connectproxy.py), so proxy tests reach the registry by this name.
        server_cert = ca.issue_server_certificate(dns_names=("localhost", PROXIED_NAME))
        http["tls"] = {"certificate": str(server_cert.cert_path), "key": str(server_cert.key_path)}
    config = {
        "version": 0.1,
        "log": {"level": log_level, "formatter": "text", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": deletes},
            "maintenance": {"uploadpurging": {"enabled": False}},
        },
        "http": http,
        # Lets tests push a signed schema1 manifest (refused by default since 2.8).
        "compatibility": {"schema1": {"enabled": True}},
    }
    auth = _auth_config(kind, workdir, ca, token_server)
    if auth:
        config["auth"] = auth
    # YAML is a superset of JSON, and the standard library writes JSON.
    config_path = workdir / "config.yml"
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    has_credentials = kind in ("basic", "token")
    return RegistryServer(
        kind=kind,
        host=host,
        scheme=scheme,
        url=f"{scheme}://{host}",
        ca_cert=ca.cert_path if use_tls and ca else None,
        username=TEST_USERNAME if has_credentials else None,
        password=TEST_PASSWORD if has_credentials else None,
        token_server=token_server,
        workdir=workdir,
        config_path=config_path,
        log_path=workdir / "registry.log",
        storage=storage,
    )


def _auth_config(
    kind: str,
    workdir: Path,
    ca: CertificateAuthority | None,
    token_server: TokenServer | None,
) -> dict[str, object] | None:
    if kind == "basic":
        htpasswd = workdir / "htpasswd"
        htpasswd.write_text(_HTPASSWD_LINE)
        return {"htpasswd": {"realm": "hangar-test-registry", "path": str(htpasswd)}}
    if kind == "token":
        assert ca is not None and token_server is not None
        return {
            "token": {
                "realm": token_server.realm,
                "service": token_server.service,
                "issuer": token_server.issuer,
                "rootcertbundle": str(ca.cert_path),
            }
        }
    return None


# -- process handling --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Looked up once, here: a preexec_fn must not load libraries (the parent has threads).
_prctl = ctypes.CDLL(None, use_errno=True).prctl
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # The kernel kills the registry if the test process dies without running its fixtures'
    # teardown (a hard timeout, SIGKILL).
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _spawn(config_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    if not os.access(REGISTRY_BINARY, os.X_OK):
        raise RegistryStartError(
            f"{REGISTRY_BINARY} is missing: install the Debian package docker-registry"
        )
    # The death signal follows the *thread* that forks: only ask for it from the main thread,
    # so a registry restarted from a helper thread does not die when that thread ends.
    in_main_thread = threading.current_thread() is threading.main_thread()
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if in_main_thread else None,
            # Only PATH: distribution reads REGISTRY_* variables as config overrides.
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        )


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_ready(server: RegistryServer) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    context = server.ssl_context() if server.scheme == "https" else None
    while True:
        process = server._process
        if process is None or process.poll() is not None:
            code = None if process is None else process.returncode
            raise RegistryStartError(
                f"docker-registry ({server.kind}) on {server.host} exited with {code}; "
                f"log {server.log_path}:\n{server.log_tail()}"
            )
        if _answers(server, context) and process.poll() is None:
            return
        if time.monotonic() > deadline:
            raise RegistryStartError(
                f"docker-registry ({server.kind}) on {server.host} did not answer /v2/ within "
                f"{STARTUP_DEADLINE_SECONDS:.0f}s; log {server.log_path}:\n{server.log_tail()}"
            )
        time.sleep(0.02)


def _answers(server: RegistryServer, context: ssl.SSLContext | None) -> bool:
    """True once the registry answers /v2/ at all: 200, or 401 for the auth kinds."""
    host, port = "127.0.0.1", server.port
    connection: http.client.HTTPConnection
    if context is None:
        connection = http.client.HTTPConnection(host, port, timeout=1)
    else:
        connection = http.client.HTTPSConnection(host, port, timeout=1, context=context)
    try:
        connection.request("GET", "/v2/")
        return connection.getresponse().status in (200, 401)
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _tail(path: Path, lines: int) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"
