"""The validate floor: the shortest request sequence that checks what podman/CRI-O check, to
measure `hangar sign validate` against.

    python bench/floor_validator.py LIST PUBLIC_KEY JOBS

For each line (a multi-arch image on a plain-HTTP registry): GET the index; then for each
linux/amd64 and linux/arm64 manifest, in turn: GET its `.sig` tag and each layer blob it lists,
and verify each layer's signature over the blob and the payload's manifest digest. No
identity rules, no referrers, no retries; the same HTTP library as hangar (aiohttp), `JOBS`
images at a time, the same connection pool size. Prints one JSON line: digests verified and
when (time.monotonic()) the first request was sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import time
from pathlib import Path

import aiohttp
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

INDEX_ACCEPT = (
    "application/vnd.oci.image.index.v1+json,"
    "application/vnd.docker.distribution.manifest.list.v2+json"
)
MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json"
WANTED = {("linux", "amd64"), ("linux", "arm64")}
SIGNATURE = "dev.cosignproject.cosign/signature"


class Floor:
    def __init__(self, session: aiohttp.ClientSession, key: ec.EllipticCurvePublicKey) -> None:
        self.session = session
        self.key = key
        self.verified = 0
        self.first_request: float | None = None

    async def get(self, url: str, accept: str | None = None) -> bytes:
        if self.first_request is None:
            self.first_request = time.monotonic()
        headers = {"Accept": accept} if accept else {}
        async with self.session.get(url, headers=headers) as response:
            assert response.status == 200, (url, response.status)
            return await response.read()

    async def check_digest(self, base: str, repository: str, digest: str) -> None:
        tag = digest.replace(":", "-") + ".sig"
        attachment = json.loads(
            await self.get(f"{base}/v2/{repository}/manifests/{tag}", MANIFEST_ACCEPT)
        )
        for layer in attachment["layers"]:
            blob = await self.get(f"{base}/v2/{repository}/blobs/{layer['digest']}")
            signature = base64.b64decode(layer["annotations"][SIGNATURE])
            try:
                self.key.verify(signature, blob, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                continue
            if json.loads(blob)["critical"]["image"]["docker-manifest-digest"] == digest:
                self.verified += 1
                return
        raise SystemExit(f"{repository}@{digest}: no signature verifies")

    async def check_line(self, line: str) -> None:
        host, _, rest = line.partition("/")
        repository, _, tag = rest.rpartition(":")
        base = f"http://{host}"
        index = json.loads(await self.get(f"{base}/v2/{repository}/manifests/{tag}", INDEX_ACCEPT))
        for entry in index["manifests"]:
            if (entry["platform"]["os"], entry["platform"]["architecture"]) in WANTED:
                await self.check_digest(base, repository, entry["digest"])


async def run(lines: list[str], key: ec.EllipticCurvePublicKey, jobs: int) -> Floor:
    connector = aiohttp.TCPConnector(limit=jobs * 4, limit_per_host=jobs * 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        floor = Floor(session, key)
        queue: asyncio.Queue[str] = asyncio.Queue()
        for line in lines:
            queue.put_nowait(line)

        async def worker() -> None:
            while not queue.empty():
                await floor.check_line(queue.get_nowait())

        await asyncio.gather(*(worker() for _ in range(jobs)))
        return floor


def main() -> None:
    list_file, key_file, jobs = sys.argv[1:4]
    key = serialization.load_pem_public_key(Path(key_file).read_bytes())
    assert isinstance(key, ec.EllipticCurvePublicKey)
    lines = [line.strip() for line in Path(list_file).read_text().splitlines() if line.strip()]
    floor = asyncio.run(run(lines, key, int(jobs)))
    print(json.dumps({"verified": floor.verified, "first_request": floor.first_request}))


if __name__ == "__main__":
    main()
