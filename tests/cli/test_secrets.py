"""Secrets stay secret: not in `--debug` output or any file hangar writes, never sent to a
host other than the registry they belong to, and key files are kept private.

The registries are real; only the blob storage a registry redirects to is a small server of
this module (on 127.0.0.2, another loopback host), as distribution does with S3.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import http
from tests.support.cli import (
    HANGAR,
    KEY1,
    KEY1_PASS,
    KEY1_PUB,
    closed_port,
    failed_lines,
    hangar_env,
    read_attachment,
    run_hangar,
    sign_args,
    write_list,
)
from tests.support.errors_doc import documented, log_line
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.hsm import MODULE, PIN, SESSION_TOKEN, TOOL_KEY, SoftHsm
from tests.support.images import push_image
from tests.support.paths import VECTORS
from tests.support.registry import RegistryServer, write_auth_json

PASSPHRASE = KEY1_PASS.read_text().strip()
STORAGE_HOST = "127.0.0.2"  # loopback, but another host than the registry's 127.0.0.1


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


def auth_json(home: Path) -> Path:
    return home / ".config" / "containers" / "auth.json"


def files_under(root: Path, *, skip: set[Path]) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and path not in skip:
            yield path


def secrets_of(server: RegistryServer) -> dict[str, str]:
    """Every form a credential of `server` can take on the wire, by name for messages."""
    assert server.username and server.password and server.token_server
    basic = base64.b64encode(f"{server.username}:{server.password}".encode()).decode()
    found = {"password": server.password, "basic": basic, "passphrase": PASSPHRASE}
    for index, issued in enumerate(server.token_server.issued):
        found[f"token {index}"] = issued.token
        found[f"token {index} signature"] = issued.token.rsplit(".", 1)[1]
    return found


def test_debug_output_and_written_files_hold_no_secret(
    make_registry: Callable[..., RegistryServer], home: Path, tmp_path: Path
) -> None:
    server = make_registry("token")
    assert server.username and server.password and server.token_server
    repository = f"secret/app-{uuid.uuid4().hex[:8]}"
    push_image(server, repository, "v1", kind="oci-index")
    write_auth_json(auth_json(home), server.host, server.username, server.password)
    name = f"{server.host}/{repository}"
    list_file = write_list(tmp_path / "list", f"{name}:v1", f"{name}:missing")
    outputs: list[str] = []
    for label, args in (
        ("sign", sign_args(list_file, server, "-j", "4")),
        ("validate", ["sign", "validate", "-f", str(list_file), "-p", str(KEY1_PUB)]),
    ):
        report, failed = tmp_path / f"{label}-report.json", tmp_path / f"{label}-failed.txt"
        extra = ["--debug", "--tls-verify=false", "--report", str(report), "-o", str(failed)]
        result = run_hangar([*args, *extra], home, cwd=tmp_path)
        # The missing tag: sign fails the line, validate could not check it.
        assert result.returncode == (3 if label == "validate" else 1), result.stderr
        assert "[DEBU]" in result.stderr and failed_lines(failed) == [f"{name}:missing"]
        assert report.stat().st_size > 0
        outputs += [result.stdout, result.stderr]
    login = ["--debug", "login", server.host, "-u", server.username, "--tls-verify=false"]
    logged_in = run_hangar([*login, "-p", server.password], home, cwd=tmp_path)
    assert logged_in.returncode == 0 and "Login Succeeded!" in logged_in.stdout
    refused = run_hangar([*login, "-p", "not-the-password-42"], home, cwd=tmp_path)
    assert refused.returncode == 1 and "refused the username or password" in refused.stderr
    outputs += [logged_in.stdout, logged_in.stderr, refused.stdout, refused.stderr]
    stored = home / "run" / "containers" / "auth.json"  # podman's default, where login writes
    assert stored.exists()
    texts = outputs + [
        path.read_text(errors="replace")
        for path in files_under(tmp_path, skip={auth_json(home), stored})
    ]
    secrets = secrets_of(server) | {"refused password": "not-the-password-42"}
    assert len(secrets) > 5  # the run did get tokens
    for label, secret in secrets.items():
        for text in texts:
            assert secret not in text, f"the {label} leaked"
    for text in texts:
        assert "Bearer ey" not in text and "Basic aGFu" not in text


def test_token_realm_gets_only_the_basic_credentials_of_its_registry(
    make_registry: Callable[..., RegistryServer], home: Path, tmp_path: Path
) -> None:
    """The realm is another origin: it gets Basic credentials of the registry that named it,
    never a bearer token, and not what auth.json holds for the realm's own host."""
    server = make_registry("token")
    issuer = server.token_server
    assert issuer is not None and server.username and server.password
    repository = f"realm/app-{uuid.uuid4().hex[:8]}"
    push_image(server, repository, "v1", kind="oci-manifest")
    issuer.reset()  # forget the test bed's own requests
    write_auth_json(auth_json(home), server.host, server.username, server.password)
    write_auth_json(auth_json(home), issuer.host, "decoy", "decoy-secret")
    list_file = write_list(tmp_path / "list", f"{server.host}/{repository}:v1")
    signed = run_hangar(sign_args(list_file, server), home, cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr
    validate = ["sign", "validate", "-f", str(list_file), "-p", str(KEY1_PUB)]
    validated = run_hangar([*validate, "--tls-verify=false"], home, cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr
    assert issuer.requests, "hangar never asked the token server"
    for request in issuer.requests:
        assert request.authorization is not None
        assert not request.authorization.lower().startswith("bearer"), request
        assert (request.username, request.password) == (server.username, server.password)


# --- a redirect to blob storage on another host --------------------------------------------------


@dataclass
class BlobStorage:
    """Serves blobs by path on 127.0.0.2 and records the headers of every request."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    seen: list[dict[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{STORAGE_HOST}:{self.server.server_address[1]}"

    def start(self) -> BlobStorage:
        storage = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                storage.seen.append({k.lower(): v for k, v in self.headers.items()})
                data = storage.blobs.get(self.path)
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

        self.server = ThreadingHTTPServer((STORAGE_HOST, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def redirect(self, proxy: FaultProxy, server: RegistryServer, repo: str, digest: str) -> None:
        """Make the proxy answer GETs of this blob with a 307 to this storage."""
        path = f"/blobs/{digest}"
        self.blobs[path] = http.get_blob(server, repo, digest)
        proxy.add_rule(
            Rule(
                method="GET",
                path_regex=f"/blobs/{digest}$",
                status=307,
                headers={"Location": self.url + path},
            )
        )


@pytest.fixture
def storage() -> Iterator[BlobStorage]:
    blobs = BlobStorage().start()
    try:
        yield blobs
    finally:
        blobs.stop()


@pytest.mark.parametrize("kind", ["token", "basic"])
def test_redirected_blob_reads_carry_no_authorization(
    make_registry: Callable[..., RegistryServer],
    storage: BlobStorage,
    home: Path,
    tmp_path: Path,
    kind: str,
) -> None:
    server = make_registry(kind)
    assert server.username and server.password
    repository = f"redirect/app-{uuid.uuid4().hex[:8]}"
    image = push_image(server, repository, "v1", kind="oci-manifest")
    config = json.loads(image.manifest)["config"]["digest"]
    with FaultProxy.in_front_of(server) as proxy:
        storage.redirect(proxy, server, repository, config)
        write_auth_json(auth_json(home), proxy.host, server.username, server.password)
        list_file = write_list(tmp_path / "list", f"{proxy.host}/{repository}:v1")
        signed = run_hangar(sign_args(list_file, proxy.proxied(server)), home, cwd=tmp_path)
        assert signed.returncode == 0, signed.stderr
        layers = read_attachment(server, repository, image.digest)[2]
        storage.redirect(proxy, server, repository, layers[0].descriptor["digest"])
        validate = ["sign", "validate", "-f", str(list_file), "-p", str(KEY1_PUB)]
        validated = run_hangar([*validate, "--tls-verify=false"], home, cwd=tmp_path)
        assert validated.returncode == 0, validated.stderr
    # sign read the config; validate the config and the signature payload
    assert len(storage.seen) >= 3
    for headers in storage.seen:
        assert "authorization" not in headers, headers


# --- key files ---------------------------------------------------------------------------------


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def test_generated_private_key_is_0600_whatever_the_umask(home: Path, tmp_path: Path) -> None:
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("a long enough passphrase\n")
    passphrase.chmod(0o600)
    prefix = tmp_path / "release"
    command = ["generate-sigstore-key", "--prefix", str(prefix)]
    command += ["--passphrase-file", str(passphrase)]
    with umask(0):  # the child inherits it: the modes must not depend on it
        first = run_hangar(command, home, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert (prefix.with_suffix(".key").stat().st_mode & 0o777) == 0o600
    assert (prefix.with_suffix(".pub").stat().st_mode & 0o777) == 0o644
    prefix.with_suffix(".key").chmod(0o644)  # someone loosened it; a new pair is private again
    with umask(0):
        again = run_hangar([*command, "-y"], home, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (prefix.with_suffix(".key").stat().st_mode & 0o777) == 0o600
    assert "a long enough passphrase" not in first.stderr + again.stderr


def test_world_readable_private_key_and_passphrase_file_warn(home: Path, tmp_path: Path) -> None:
    key = tmp_path / "sigstore.key"
    key.write_bytes(KEY1.read_bytes())
    passphrase = tmp_path / "passphrase"
    passphrase.write_bytes(KEY1_PASS.read_bytes())
    public = tmp_path / "sigstore.pub"
    public.write_bytes(KEY1_PUB.read_bytes())
    list_file = write_list(tmp_path / "list", f"127.0.0.1:{closed_port()}/ns/app:v1")
    args = ["sign", "-f", str(list_file), "-k", str(key), "--skip-login"]
    args += ["--sigstore-passphrase-file", str(passphrase)]
    subs = {str(tmp_path): "TMP", str(VECTORS): "VECTORS"}
    for path in (key, passphrase, public):
        path.chmod(0o644)
    loose = run_hangar(args, home, cwd=tmp_path)
    assert loose.returncode == 1  # the closed port; the key was read
    for what, path in (("private key", key), ("passphrase file", passphrase)):
        warning = log_line(loose.stderr, f"{what} {path} is readable by every user", level="[WARN]")
        assert "(mode 0644); restrict it with chmod 600" in warning
        documented(f"{what.replace(' ', '-')}-world-readable", 1, warning, subs)
    validated = run_hangar(["sign", "validate", "-f", str(list_file), "-p", str(public)], home)
    assert "readable by every user" not in validated.stderr  # a public key is public
    for path in (key, passphrase):
        path.chmod(0o600)
    tight = run_hangar(args, home, cwd=tmp_path)
    assert tight.returncode == 1
    assert "readable by every user" not in tight.stderr


# --- PKCS#11 PINs ------------------------------------------------------------------------------


def test_a_pin_reaches_no_log_error_report_or_failed_file(
    registry_http: RegistryServer, softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    """A PIN given as pin-value (the worst place) is in no line of --debug output, no error,
    not in the report (its arguments and key show pin-value=***) nor the failed file; one
    warning points to pin-source=file:."""
    repository = f"secret/hsm-{uuid.uuid4().hex[:8]}"
    push_image(registry_http, repository, "v1", kind="oci-manifest")
    name = f"{registry_http.host}/{repository}"
    list_file = write_list(tmp_path / "list", f"{name}:v1", f"{name}:missing")
    uri = softhsm.uri(SESSION_TOKEN, TOOL_KEY, pin=PIN)
    report, failed = tmp_path / "report.json", tmp_path / "failed.txt"
    args = ["--debug", "sign", "-f", str(list_file), "-k", uri, "--tls-verify=false"]
    result = run_hangar(
        [*args, "--report", str(report), "-o", str(failed)], home, **softhsm.env_for_hangar()
    )
    assert result.returncode == 1, result.stderr  # :missing fails; v1 is signed
    assert f"Signed [{name}@" in result.stderr
    warnings = [line for line in result.stderr.splitlines() if "pin-value" in line]
    assert len(warnings) == 1 and warnings[0].startswith("[WARN]"), result.stderr
    assert "pin-source=file:" in warnings[0]
    document = json.loads(report.read_text())
    redacted = uri.replace(f"pin-value={PIN}", "pin-value=***")
    assert redacted in document["arguments"]
    assert document["keys"][0]["file"] == redacted
    for where, text in {
        "stderr": result.stderr,
        "stdout": result.stdout,
        "report": report.read_text(),
        "failed file": failed.read_text(),
    }.items():
        assert PIN not in text, f"the PIN is in the {where}"
    assert failed.read_text().splitlines()[0].startswith("# failed lines of hangar sign")


def test_a_pin_in_a_refused_uri_or_from_the_environment_stays_hidden(
    softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    list_file = write_list(tmp_path / "list", "127.0.0.1:1/never/contacted:v1")
    typo = f"pkcs11:token={SESSION_TOKEN};objcet={TOOL_KEY}?module-path={MODULE}&pin-value={PIN}"
    wrong_key = softhsm.uri(SESSION_TOKEN, "absent")
    cases = (
        (typo, {}, "pin-value=***"),
        (wrong_key, {"COSIGN_PKCS11_PIN": PIN}, "no private key matches object=absent"),
    )
    for uri, env, needle in cases:
        result = run_hangar(
            ["--debug", "sign", "-f", str(list_file), "-k", uri, "--tls-verify=false"],
            home,
            **softhsm.env_for_hangar(),
            **env,
        )
        assert result.returncode == 1
        assert PIN not in result.stderr + result.stdout, result.stderr
        assert "Traceback" not in result.stderr
        assert needle in result.stderr


def test_a_pin_value_is_not_in_the_process_title(
    registry_http: RegistryServer, softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    """What `ps` shows of a running `hangar sign -k pkcs11:...pin-value=...` (its
    /proc/PID/cmdline): the arguments with pin-value=***."""
    repository = f"secret/title-{uuid.uuid4().hex[:8]}"
    push_image(registry_http, repository, "v1", kind="oci-manifest")
    with FaultProxy.in_front_of(registry_http) as proxy:
        held = proxy.add_rule(
            Rule(method="GET", path_regex=f"/{repository}/manifests/v1$", action="hold")
        )
        list_file = write_list(tmp_path / "list", f"{proxy.host}/{repository}:v1")
        uri = softhsm.uri(SESSION_TOKEN, TOOL_KEY, pin=PIN)
        process = subprocess.Popen(
            [HANGAR, "sign", "-f", str(list_file), "-k", uri, "--tls-verify=false"],
            env=hangar_env(home, **softhsm.env_for_hangar()),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while proxy.hits(held) < 1:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.02)
            title = Path(f"/proc/{process.pid}/cmdline").read_bytes().replace(b"\0", b" ")
            proxy.release(held)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert PIN.encode() not in title, title
    assert b"pin-value=***" in title and title.startswith(b"hangar sign -f ")
