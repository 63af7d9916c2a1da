"""Limits: what a registry sends is never read whole past hangar's caps, and a hostile or
bloated signature attachment costs bounded time.

- Manifests and signature blobs: at most 4 MiB (containers/image's limits). distribution
  itself refuses to store a manifest over 4 MiB, so the oversized manifests here are served by
  the fault proxy in front of the real registry, or (streamed without a Content-Length) by a
  small fake of this module; the oversized blobs are in the real registry.
- Attachments: at most 1000 layers (cosign's cap).

Memory is measured as the peak RSS of the hangar process (os.wait4), against a run of the
same command on a normal image.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import http
from tests.support.cli import (
    HANGAR,
    KEY1_PUB,
    KEY2,
    KEY2_PASS,
    KEY2_PUB,
    SIMPLESIGNING,
    hangar_env,
    read_attachment,
    run_hangar,
    sig_tag,
    sign_args,
    write_list,
)
from tests.support.errors_doc import documented, log_line
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.images import OCI_MANIFEST, PushedImage, push_image
from tests.support.registry import RegistryServer

LIMIT = 4 * 1024 * 1024
OVER_LIMIT = 5 * 1024 * 1024
HUGE = 64 * 1024 * 1024  # far above any RSS noise: reading it whole would show
RSS_MARGIN_KIB = 32 * 1024
# Bounded work, in CPU seconds of hangar itself: a wall-clock bound would also measure how
# busy the machine is (the subprocess timeout still catches a run that waits forever).
CPU_LIMIT_SECONDS = 20.0


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


@pytest.fixture
def subs(tmp_path: Path) -> dict[str, str]:
    return {str(tmp_path): "TMP"}


@dataclass
class Measured:
    returncode: int
    stderr: str
    peak_rss_kib: int
    seconds: float
    cpu_seconds: float  # user + system: what a bound on work can rely on under load


# The peak RSS of hangar alone. Not os.wait4 on a direct child: Linux carries the parent's
# high-water RSS (pytest's, holding test blobs) over fork and exec into the child's ru_maxrss.
# This small go-between starts hangar from its own small address space and reports it.
_PEAK_RSS_WRAPPER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(args: list[str], home: Path, cwd: Path) -> Measured:
    """The real command, with its peak RSS in KiB, its duration and its CPU time."""
    report = cwd / "peak-rss"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS_WRAPPER, str(report), HANGAR, *args],
        env=hangar_env(home),
        cwd=cwd,
        text=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    seconds = time.monotonic() - started
    assert "Traceback" not in result.stderr, result.stderr
    peak, cpu = report.read_text().split()
    report.unlink()
    return Measured(result.returncode, result.stderr, int(peak), seconds, float(cpu))


def validate_args(list_file: Path, pubkey: Path = KEY1_PUB) -> list[str]:
    return ["sign", "validate", "-f", str(list_file), "-p", str(pubkey), "--tls-verify=false"]


def new_image(server: RegistryServer, subs: dict[str, str]) -> tuple[PushedImage, str]:
    repository = f"limits/app-{uuid.uuid4().hex[:8]}"
    image = push_image(server, repository, "v1", kind="oci-manifest")
    subs[server.host] = "REGISTRY"
    subs[repository] = "limits/app"
    return image, f"{server.host}/{repository}:v1"


def put_attachment(
    server: RegistryServer, image: PushedImage, layers: list[dict], diff_ids: list[str]
) -> None:
    """Write the `.sig` manifest of `image` with these layer descriptors (blobs pushed)."""
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": http.push_blob(server, image.repository, config),
            "size": len(config),
        },
        "layers": layers,
    }
    data = json.dumps(manifest).encode()
    http.put_manifest(server, image.repository, sig_tag(image.digest), data, OCI_MANIFEST)


def blob_layer(server: RegistryServer, image: PushedImage, blob: bytes, size: int) -> dict:
    """A simple-signing layer over `blob`, declaring `size` (the truth, or a lie)."""
    return {
        "mediaType": SIMPLESIGNING,
        "digest": http.push_blob(server, image.repository, blob),
        "size": size,
        "annotations": {"dev.cosignproject.cosign/signature": base64.b64encode(b"x" * 64).decode()},
    }


# --- manifests over 4 MiB ----------------------------------------------------------------------


def test_manifest_over_4_mib_fails_its_line_only(
    registry_http: RegistryServer, home: Path, tmp_path: Path, subs: dict[str, str]
) -> None:
    image, _ = new_image(registry_http, subs)
    body = json.dumps({"schemaVersion": 2, "pad": "x" * OVER_LIMIT}).encode()
    with FaultProxy.in_front_of(registry_http) as proxy:
        proxy.add_rule(
            Rule(
                method="GET",
                path_regex=r"/manifests/huge$",
                status=200,
                body=body,
                headers={"Content-Type": OCI_MANIFEST},
            )
        )
        subs[proxy.host] = "REGISTRY"
        name = f"{proxy.host}/{image.repository}"
        list_file = write_list(tmp_path / "list", f"{name}:huge", f"{name}:v1")
        runs = {
            "sign": run_hangar(sign_args(list_file, proxy.proxied(registry_http)), home),
            "validate": run_hangar(validate_args(list_file), home),
        }
    for label, result in runs.items():
        assert result.returncode == 1, result.stderr
        line = log_line(result.stderr, f" {name}:huge: ", "too large")
        assert f"{len(body)} bytes" in line and f"at most {LIMIT} bytes" in line
        assert ("Signed [" if label == "sign" else "PASS: [") + name in result.stderr
        documented(f"manifest-too-large-{label}", 1, line, subs)


class EndlessManifest:
    """A registry that answers /v2/ and streams a 64 MiB manifest with no Content-Length
    (chunked): a client that trusted the stream would read it all."""

    def __init__(self) -> None:
        self.sent = 0

        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                if self.path == "/v2/":
                    self._answer(b"{}")
                    return
                self.send_response(200)
                self.send_header("Content-Type", OCI_MANIFEST)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                chunk = b"x" * (1024 * 1024)
                try:
                    while owner.sent < HUGE:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        owner.sent += len(chunk)
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what is wanted

            def _answer(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endless() -> Iterator[EndlessManifest]:
    server = EndlessManifest()
    try:
        yield server
    finally:
        server.stop()


def test_streamed_manifest_is_cut_at_4_mib_and_memory_stays_flat(
    registry_http: RegistryServer,
    endless: EndlessManifest,
    home: Path,
    tmp_path: Path,
    subs: dict[str, str],
) -> None:
    _, good = new_image(registry_http, subs)
    # validate, not sign: sign's peak is scrypt's 64 MiB, which would hide a read of 64 MiB
    baseline = run_measured(validate_args(write_list(tmp_path / "ok", good)), home, tmp_path)
    assert baseline.returncode == 1, baseline.stderr  # not signed; only its size matters
    subs[endless.host] = "FAKE_REGISTRY"
    list_file = write_list(tmp_path / "list", f"{endless.host}/big/app:v1")
    result = run_measured(validate_args(list_file), home, tmp_path)
    assert result.returncode == 1
    line = log_line(result.stderr, f"{endless.host}/big/app:v1", "too large")
    assert f"at most {LIMIT} bytes" in line
    assert endless.sent < HUGE, "the whole stream was read"
    assert result.peak_rss_kib < baseline.peak_rss_kib + RSS_MARGIN_KIB, (result, baseline)
    documented("manifest-too-large-streamed", 1, line, subs)


# --- signature blobs over 4 MiB ----------------------------------------------------------------


def test_signature_blob_over_4_mib_fails_the_image_and_sign_warns(
    registry_http: RegistryServer, home: Path, tmp_path: Path, subs: dict[str, str]
) -> None:
    """A 5 MiB layer: podman/CRI-O cannot read it, so they reject the image whatever else the
    attachment holds. validate says so; sign keeps the layer (not ours), appends its own
    signature, and warns that the image stays rejected until that layer is repaired."""
    image, ref = new_image(registry_http, subs)
    big = blob_layer(registry_http, image, b"{" + b" " * OVER_LIMIT + b"}", OVER_LIMIT + 2)
    put_attachment(registry_http, image, [big], [big["digest"]])
    list_file = write_list(tmp_path / "list", ref)
    before = run_hangar(validate_args(list_file), home, cwd=tmp_path)
    assert before.returncode == 1
    line = log_line(before.stderr, f"FAIL: [{ref}]", "cannot be read")
    assert f"layer 1/1 {big['digest']} (" in line
    assert f"exceeded maximum allowed size of {LIMIT} bytes" in line
    documented("signature-blob-too-large-validate", 1, line, subs)
    signed = run_hangar(sign_args(list_file, registry_http), home, cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr
    warning = log_line(signed.stderr, "cannot be read", level="[WARN]")
    assert f"layer 1/1 {big['digest']} (" in warning
    assert "they will reject this image whatever signature is added" in warning
    documented("signature-blob-too-large-sign-warning", 0, warning, subs)
    layers = read_attachment_layers(registry_http, image)
    assert [layer["digest"] for layer in layers][:1] == [big["digest"]] and len(layers) == 2
    after = run_hangar(validate_args(list_file), home, cwd=tmp_path)
    assert after.returncode == 1, after.stderr
    assert f"layer 1/2 {big['digest']} (" in log_line(after.stderr, f"FAIL: [{ref}]")


def read_attachment_layers(server: RegistryServer, image: PushedImage) -> list[dict]:
    data = http.get_manifest(server, image.repository, sig_tag(image.digest))[0]
    return json.loads(data)["layers"]


def test_signature_blob_larger_than_declared_is_cut_and_memory_stays_flat(
    registry_http: RegistryServer, home: Path, tmp_path: Path, subs: dict[str, str]
) -> None:
    """A descriptor that lies (says 100 bytes of a 64 MiB blob): the read stops at the cap."""
    image, ref = new_image(registry_http, subs)
    list_file = write_list(tmp_path / "list", ref)
    assert run_hangar(sign_args(list_file, registry_http), home).returncode == 0
    # Baselines on the signed image; sign's includes scrypt's 64 MiB (opening the key).
    baseline = run_measured(validate_args(list_file), home, tmp_path)
    sign_baseline = run_measured(sign_args(list_file, registry_http), home, tmp_path)
    assert baseline.returncode == 0 and sign_baseline.returncode == 0, sign_baseline.stderr
    liar = blob_layer(registry_http, image, b"y" * HUGE, 100)
    put_attachment(registry_http, image, [liar], [liar["digest"]])
    validated = run_measured(validate_args(list_file), home, tmp_path)
    assert validated.returncode == 1
    fail = log_line(validated.stderr, f"FAIL: [{ref}]")
    assert str(LIMIT) in fail, fail
    assert validated.peak_rss_kib < baseline.peak_rss_kib + RSS_MARGIN_KIB, (validated, baseline)
    documented("signature-blob-size-lies-validate", 1, fail, subs)
    # sign reads every existing layer (to skip what it already signed, and to warn about what
    # consumers cannot read): the same cap applies, and a layer it cannot read is another
    # writer's, kept as it is beside the new signature; the image stays rejected.
    signed = run_measured(sign_args(list_file, registry_http), home, tmp_path)
    assert signed.returncode == 0, signed.stderr
    assert signed.peak_rss_kib < sign_baseline.peak_rss_kib + RSS_MARGIN_KIB, signed
    assert "exceeded maximum allowed size" in log_line(
        signed.stderr, liar["digest"], level="[WARN]"
    )
    layers = read_attachment_layers(registry_http, image)
    assert [layer["digest"] for layer in layers][:1] == [liar["digest"]] and len(layers) == 2
    assert run_hangar(validate_args(list_file), home).returncode == 1


# --- attachments with too many layers ----------------------------------------------------------


def bloated_attachment(
    server: RegistryServer, home: Path, tmp_path: Path, subs: dict[str, str], layers: int
) -> tuple[PushedImage, Path, str]:
    """An image whose `.sig` holds `layers` copies of one real key2 signature (every copy
    names the same payload blob: cheap to build, as costly to check as distinct ones)."""
    image, ref = new_image(server, subs)
    list_file = write_list(tmp_path / f"list-{layers}", ref)
    first = run_hangar(sign_args(list_file, server, key=KEY2, passphrase=KEY2_PASS), home)
    assert first.returncode == 0, first.stderr
    _, _, signed = read_attachment(server, image.repository, image.digest)
    descriptor = signed[0].descriptor
    put_attachment(server, image, [descriptor] * layers, [descriptor["digest"]] * layers)
    return image, list_file, ref


def test_attachment_over_1000_layers_is_refused_quickly(
    registry_http: RegistryServer, home: Path, tmp_path: Path, subs: dict[str, str]
) -> None:
    image, list_file, ref = bloated_attachment(registry_http, home, tmp_path, subs, 3000)
    signed = run_measured(sign_args(list_file, registry_http), home, tmp_path)
    assert signed.returncode == 1 and signed.cpu_seconds < CPU_LIMIT_SECONDS, signed
    line = log_line(signed.stderr, f" {ref}: ", "holds 3000 layers, more than 1000")
    documented("attachment-over-1000-layers-sign", 1, line, subs)
    validated = run_measured(validate_args(list_file, KEY2_PUB), home, tmp_path)
    assert validated.returncode == 1 and validated.cpu_seconds < CPU_LIMIT_SECONDS, validated
    fail = log_line(validated.stderr, f"FAIL: [{ref}]", "3000 layers, more than 1000")
    documented("attachment-over-1000-layers-validate", 1, fail, subs)
    assert len(read_attachment_layers(registry_http, image)) == 3000  # left as it was


def test_attachment_at_1000_layers_is_checked_in_bounded_time(
    registry_http: RegistryServer, home: Path, tmp_path: Path, subs: dict[str, str]
) -> None:
    """At cosign's cap: validate reads every layer and accepts; sign cannot add a 1001st."""
    image, list_file, ref = bloated_attachment(registry_http, home, tmp_path, subs, 1000)
    validated = run_measured(validate_args(list_file, KEY2_PUB), home, tmp_path)
    assert validated.returncode == 0 and validated.cpu_seconds < CPU_LIMIT_SECONDS, validated
    signed = run_measured(sign_args(list_file, registry_http), home, tmp_path)
    assert signed.returncode == 1 and signed.cpu_seconds < CPU_LIMIT_SECONDS, signed
    line = log_line(signed.stderr, f" {ref}: ", "would hold 1001 layers, more than 1000")
    documented("attachment-at-1000-layers-sign", 1, line, subs)
    assert len(read_attachment_layers(registry_http, image)) == 1000


def test_layers_sharing_one_blob_fetch_it_once(
    registry_http: RegistryServer, home: Path, tmp_path: Path, subs: dict[str, str]
) -> None:
    """1000 layers naming one payload: validate and sign's "already signed" check each fetch
    that blob once, not once per layer."""
    image, list_file, _ = bloated_attachment(registry_http, home, tmp_path, subs, 1000)
    _, _, signed = read_attachment(registry_http, image.repository, image.digest)
    blob_path = f"/blobs/{signed[0].descriptor['digest']} -> 200"
    validated = run_hangar([*validate_args(list_file, KEY2_PUB), "--debug"], home)
    assert validated.returncode == 0, validated.stderr
    assert validated.stderr.count(blob_path) == 1
    again = run_hangar(
        [*sign_args(list_file, registry_http, key=KEY2, passphrase=KEY2_PASS), "--debug"], home
    )
    assert again.returncode == 0, again.stderr
    assert "1 already signed" in again.stderr
    assert again.stderr.count(blob_path) == 1
