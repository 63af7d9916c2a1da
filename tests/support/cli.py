"""Run the real `hangar` command, and check what it wrote with code independent of hangar.

The checks read the registry with tests/support/http.py and verify signatures with
`cryptography` directly, field by field as containers/image and cosign write them, so a bug in
hangar's own attachment or payload code cannot hide itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support import http
from tests.support.registry import RegistryServer

HANGAR = str(Path(sys.executable).parent / "hangar")
from tests.support.paths import VECTORS  # noqa: E402

KEY1 = VECTORS / "cimage-keys" / "key1.private"
KEY1_PUB = VECTORS / "cimage-keys" / "key1.pub"
KEY1_PASS = VECTORS / "cimage-keys" / "key1.passphrase"
KEY2 = VECTORS / "cimage-keys" / "key2.private"
KEY2_PUB = VECTORS / "cimage-keys" / "key2.pub"
KEY2_PASS = VECTORS / "cimage-keys" / "key2.passphrase"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
ANNOTATION = "dev.cosignproject.cosign/signature"


def hangar_env(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "REGISTRY_AUTH_FILE",
            "DOCKER_CONFIG",
            "XDG_RUNTIME_DIR",
            "XDG_CONFIG_HOME",
            "COSIGN_PASSWORD",
        )
    }
    env["HOME"] = str(home)
    env["XDG_RUNTIME_DIR"] = str(home / "run")
    env.update(extra)
    return env


def run_hangar(
    args: list[str], home: Path, *, cwd: Path | None = None, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HANGAR, *args],
        env=hangar_env(home, **env),
        cwd=cwd or home,  # never the checkout: a default failed file would land there
        text=True,
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def failed_lines(path: Path) -> list[str]:
    """The lines of a failed file hangar wrote, after its `# failed lines of ...` header."""
    lines = path.read_text().splitlines()
    assert lines and lines[0].startswith("# failed lines of hangar "), lines[:1]
    return lines[1:]


def sign_args(
    list_file: Path,
    server: RegistryServer,
    *extra: str,
    key: Path = KEY1,
    passphrase: Path = KEY1_PASS,
) -> list[str]:
    args = [
        "sign",
        "-f",
        str(list_file),
        "-k",
        str(key),
        "--sigstore-passphrase-file",
        str(passphrase),
    ]
    if server.scheme == "http":
        args.append("--tls-verify=false")
    return [*args, *extra]


@dataclass
class SignatureLayer:
    descriptor: dict
    payload: bytes
    document: dict
    signature: bytes


def verify_with(public_key_pem: Path, signature: bytes, payload: bytes) -> bool:
    key = serialization.load_pem_public_key(public_key_pem.read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    try:
        key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def read_attachment(server: RegistryServer, repo: str, digest: str) -> tuple[dict, dict, list]:
    """The `.sig` manifest, its config and its layers (payload bytes checked against digests)."""
    tag = "sha256-" + digest.split(":", 1)[1] + ".sig"
    data = http.get_manifest(server, repo, tag)[0]
    manifest = json.loads(data)
    config_bytes = http.get_blob(server, repo, manifest["config"]["digest"])
    assert "sha256:" + hashlib.sha256(config_bytes).hexdigest() == manifest["config"]["digest"]
    layers = []
    for descriptor in manifest["layers"]:
        payload = http.get_blob(server, repo, descriptor["digest"])
        assert "sha256:" + hashlib.sha256(payload).hexdigest() == descriptor["digest"]
        assert descriptor["size"] == len(payload)
        signature = base64.b64decode(descriptor["annotations"][ANNOTATION], validate=True)
        layers.append(SignatureLayer(descriptor, payload, json.loads(payload), signature))
    return manifest, json.loads(config_bytes), layers


def check_hangar_attachment(
    server: RegistryServer, repo: str, digest: str, identity: str, public_key: Path
) -> list[SignatureLayer]:
    """Assert every field of an attachment hangar wrote, as c/image writes it; return its layers."""
    manifest, config, layers = read_attachment(server, repo, digest)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["config"]["mediaType"] == OCI_CONFIG
    assert config["rootfs"]["type"] == "layers"
    assert config["rootfs"]["diff_ids"] == [layer.descriptor["digest"] for layer in layers]
    ours = [layer for layer in layers if verify_with(public_key, layer.signature, layer.payload)]
    assert ours, f"no layer of {digest}'s attachment verifies with {public_key.name}"
    for layer in ours:
        assert layer.descriptor["mediaType"] == SIMPLESIGNING
        check_payload(layer.payload, identity, digest)
    return layers


def check_payload(payload: bytes, identity: str, digest: str) -> dict:
    document = json.loads(payload)
    assert list(document) == ["critical", "optional"]
    critical = document["critical"]
    assert list(critical) == ["identity", "image", "type"]
    assert critical == {
        "identity": {"docker-reference": identity},
        "image": {"docker-manifest-digest": digest},
        "type": "cosign container image signature",
    }
    optional = document["optional"]
    assert set(optional) == {"creator", "timestamp"}
    assert optional["creator"].startswith("hangar ")
    assert isinstance(optional["timestamp"], int)
    # compact, as c/image writes it
    assert payload == json.dumps(document, separators=(",", ":")).encode()
    return document


def signed_tags(server: RegistryServer, repo: str) -> set[str]:
    return {tag for tag in http.list_tags(server, repo) if tag.endswith(".sig")}


def sig_tag(digest: str) -> str:
    return "sha256-" + digest.split(":", 1)[1] + ".sig"


def write_list(path: Path, *lines: str) -> Path:
    """An image list file, one line each."""
    path.write_text("\n".join(lines) + "\n")
    return path


def closed_port() -> int:
    """A loopback port nothing listens on (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def validate_args(
    list_file: Path, server: RegistryServer, *extra: str, keys: tuple[Path, ...] = (KEY1_PUB,)
) -> list[str]:
    """`sign validate` arguments for `server`, with each key as a `-p`."""
    args = ["sign", "validate", "-f", str(list_file)]
    for key in keys:
        args += ["-p", str(key)]
    if server.scheme == "http":
        args.append("--tls-verify=false")
    return [*args, *extra]


class StderrWatch:
    """Reads a running process's stderr (a pipe) as it comes, so that a test can wait until a
    line is there, an event, rather than sleep and hope on a loaded machine."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._read, args=(process.stderr,), name="stderr-watch", daemon=True
        )
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._lock:
                self._lines.append(line)

    def wait_for(self, needle: str, timeout: float = 60.0) -> None:
        """Until a line holding `needle` was written (an AssertionError after `timeout`)."""
        deadline = time.monotonic() + timeout
        while not any(needle in line for line in self._snapshot()):
            assert time.monotonic() < deadline, f"no line with {needle!r} in:\n{self.text()}"
            time.sleep(0.02)

    def text(self) -> str:
        """What was read so far; everything once the process ended and `close` returned."""
        return "".join(self._snapshot())

    def close(self, timeout: float = 30.0) -> str:
        """After the process ended: the whole stderr."""
        self._thread.join(timeout)
        return self.text()

    def _snapshot(self) -> list[str]:
        with self._lock:
            return list(self._lines)
