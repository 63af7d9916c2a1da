"""Benchmark `hangar sign` against a local docker-registry (run by hand, not in CI).

    .venv/bin/python bench/bench_sign.py --images 200 --jobs 1,8,20
    .venv/bin/python bench/bench_sign.py --images 10000 --jobs 8     # the memory figure

Pushes N two-platform images per run (fresh ones for each -j, so every run signs), then runs
the real `hangar sign` command and prints signatures per second (wall clock of the whole
command, start-up included) and the command's peak memory (VmHWM, sampled every 50 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hangar.reference import parse_reference  # noqa: E402
from hangar.registry.client import RegistryClient  # noqa: E402
from tests.support.registry import start_registry  # noqa: E402

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PLATFORMS = (("linux", "amd64"), ("linux", "arm64"))


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


async def _push_one(client: RegistryClient, host: str, repo: str, tag: str, layer: bytes) -> None:
    layer_digest = _digest(layer)
    entries = []
    for os_name, arch in PLATFORMS:
        config = _json(
            {
                "architecture": arch,
                "os": os_name,
                "created": tag,
                "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            }
        )
        await client.push_blob(host, repo, config)
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": _digest(config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": layer_digest,
                        "size": len(layer),
                    }
                ],
            }
        )
        ref = parse_reference(f"{host}/{repo}@{_digest(manifest)}")
        await client.put_manifest(ref, manifest, OCI_MANIFEST)
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": _digest(manifest),
                "size": len(manifest),
                "platform": {"os": os_name, "architecture": arch},
            }
        )
    index = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    await client.put_manifest(parse_reference(f"{host}/{repo}:{tag}"), index, OCI_INDEX)


async def push_images(host: str, prefix: str, count: int, concurrency: int = 16) -> list[str]:
    layer = os.urandom(512)
    refs = [(f"bench/{prefix}-{i % 50}", f"v{i}") for i in range(count)]
    async with RegistryClient(tls_verify=False, max_connections=concurrency) as client:
        await client.push_blob(host, refs[0][0], layer)
        semaphore = asyncio.Semaphore(concurrency)

        async def one(repo: str, tag: str) -> None:
            async with semaphore:
                await client.push_blob(host, repo, layer)
                await _push_one(client, host, repo, tag, layer)

        await asyncio.gather(*(one(repo, tag) for repo, tag in refs))
    return [f"{host}/{repo}:{tag}" for repo, tag in refs]


def _peak_rss_mb(pid: int) -> float | None:
    """VmHWM of the process: its own peak, unlike ru_maxrss, which Linux carries over from the
    parent across fork and exec (this script's memory would count as hangar's)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_sign(list_file: Path, key: Path, passphrase: Path, jobs: int, workdir: Path) -> dict:
    command = [
        str(ROOT / ".venv/bin/hangar"),
        "sign",
        "-f",
        str(list_file),
        "-k",
        str(key),
        "--sigstore-passphrase-file",
        str(passphrase),
        "--tls-verify=false",
        "--skip-login",
        "-j",
        str(jobs),
        "-o",
        str(workdir / f"failed-{jobs}.txt"),
    ]
    started = time.monotonic()
    peak = 0.0
    with open(workdir / f"sign-{jobs}.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        while process.poll() is None:
            peak = max(peak, _peak_rss_mb(process.pid) or 0.0)
            time.sleep(0.05)
    elapsed = time.monotonic() - started
    return {"status": process.returncode, "elapsed": elapsed, "max_rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="images per run (2 platforms)")
    parser.add_argument("--jobs", default="1,8,20", help="comma-separated -j values")
    args = parser.parse_args()
    jobs_values = [int(value) for value in args.jobs.split(",")]
    with tempfile.TemporaryDirectory(prefix="hangar-bench-") as tmp:
        workdir = Path(tmp)
        server = start_registry("http", workdir / "registry")
        try:
            passphrase = workdir / "passphrase"
            passphrase.write_text("bench-passphrase\n")
            subprocess.run(
                [
                    str(ROOT / ".venv/bin/hangar"),
                    "generate-sigstore-key",
                    "-p",
                    str(workdir / "bench"),
                    "--passphrase-file",
                    str(passphrase),
                    "-y",
                ],
                check=True,
                capture_output=True,
            )
            print(
                f"registry {server.host}; {args.images} images x {len(PLATFORMS)} platforms "
                f"(+ the index) per run; cores: {os.cpu_count()}"
            )
            for jobs in jobs_values:
                started = time.monotonic()
                refs = asyncio.run(push_images(server.host, f"j{jobs}", args.images))
                pushed = time.monotonic() - started
                list_file = workdir / f"list-{jobs}.txt"
                list_file.write_text("\n".join(refs) + "\n")
                result = run_sign(list_file, workdir / "bench.key", passphrase, jobs, workdir)
                signatures = args.images * (len(PLATFORMS) + 1)
                print(
                    f"-j {jobs:>2}: {signatures} signatures in {result['elapsed']:.1f}s = "
                    f"{signatures / result['elapsed']:.1f} signatures/s "
                    f"({args.images * len(PLATFORMS) / result['elapsed']:.1f} platform "
                    f"signatures/s); peak RSS {result['max_rss_mb']:.0f} MB; exit "
                    f"{result['status']} (pushed in {pushed:.1f}s)"
                )
                if result["status"] != 0:
                    print((workdir / f"sign-{jobs}.log").read_text()[-3000:])
        finally:
            server.stop()


if __name__ == "__main__":
    main()
