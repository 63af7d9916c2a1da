"""The seed's quick start, end to end, on a local registry this script starts.

Generates a key pair, pushes sample multi-arch images, signs them, shows the signature
attachment and validates the signatures, printing each command before it runs. Everything
is kept under ./demo (the registry is stopped at the end).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import http  # noqa: E402
from tests.support.images import push_image  # noqa: E402
from tests.support.registry import start_registry  # noqa: E402

HANGAR = str(ROOT / ".venv" / "bin" / "hangar")


def run(args: list[str], env: dict[str, str], capture: bool = False) -> str:
    print(f"\n$ hangar {shlex.join(args)}", flush=True)
    result = subprocess.run([HANGAR, *args], env=env, text=True, capture_output=capture)
    if capture:
        sys.stdout.write(result.stdout + ("" if result.stdout.endswith("\n") else "\n"))
        sys.stderr.write(result.stderr)
    if result.returncode != 0:
        sys.exit(f"demo: `hangar {args[0]}` exited with {result.returncode}")
    return result.stdout if capture else ""


def main() -> None:
    work = ROOT / "demo"
    shutil.rmtree(work, ignore_errors=True)
    home = work / "home"
    home.mkdir(parents=True)
    os.chdir(work)
    server = start_registry("https", work / "registry")
    try:
        server.install_ca(home)  # verified TLS, through the certs.d directory podman reads
        env = {**os.environ, "HOME": str(home)}
        env.pop("REGISTRY_AUTH_FILE", None)
        print(
            f"[demo] registry https://{server.host} (its CA is in {home}/.config/containers/"
            f"certs.d/{server.host}/ca.crt)"
        )
        for tag, kind in (("v1.8.0", "oci-index"), ("latest", "docker-list")):
            pushed = push_image(server, "cnrancher/hangar", tag, kind=kind)
            print(
                f"[demo] pushed {server.host}/cnrancher/hangar:{tag} ({kind}: "
                f"{', '.join(pushed.platforms)})"
            )
        Path("example_image_list.txt").write_text(
            "cnrancher/hangar:v1.8.0\ncnrancher/hangar:latest\n"
        )
        passphrase = Path("passphrase.txt")
        passphrase.touch(mode=0o600)
        passphrase.write_text("demo passphrase\n")
        run(
            [
                "generate-sigstore-key",
                "--prefix",
                "sigstore",
                "--passphrase-file",
                "passphrase.txt",
                "--auto-yes",
            ],
            env,
        )
        run(
            [
                "sign",
                "--file=example_image_list.txt",
                "--sigstore-key=sigstore.key",
                "--sigstore-passphrase-file=passphrase.txt",
                "--arch",
                "amd64,arm64",
                "--os",
                "linux",
                f"--registry={server.host}",
                "--jobs=4",
            ],
            env,
        )
        raw = run(
            ["inspect", "--raw", f"docker://{server.host}/cnrancher/hangar:latest"],
            env,
            capture=True,
        )
        reported = http.head_manifest(server, "cnrancher/hangar", "latest")
        print(
            f"\n[demo] sha256 of that output: sha256:{hashlib.sha256(raw.encode()).hexdigest()}"
            f"\n[demo] digest the registry reports: {reported}"
        )
        first = json.loads(raw)["manifests"][0]["digest"]
        sig_tag = first.replace(":", "-") + ".sig"
        run(
            ["inspect", "--raw", f"docker://{server.host}/cnrancher/hangar:{sig_tag}"],
            env,
            capture=True,
        )
        run(["inspect", f"docker://{server.host}/cnrancher/hangar:latest"], env)
        run(
            [
                "sign",
                "validate",
                "--file=example_image_list.txt",
                "--sigstore-pubkey=sigstore.pub",
                "--arch",
                "amd64,arm64",
                "--os",
                "linux",
                f"--registry={server.host}",
                "--require-tag-identity",
                "--require-index-signature",
                "--jobs=4",
            ],
            env,
        )
        print("\n[demo] done: every image is signed and validates with sigstore.pub")
    finally:
        server.close()


if __name__ == "__main__":
    main()
