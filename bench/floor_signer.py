"""The floor: the shortest correct request sequence for signing, to measure hangar against.

    python bench/floor_signer.py LIST KEY PASSPHRASE_FILE JOBS [--no-index]

For each line (a multi-arch image on a plain-HTTP registry): GET the index; then for each
linux/amd64 and linux/arm64 manifest and the index itself (not with --no-index, as
`sign --sign-index=false`), in turn: GET the `.sig` tag, sign,
POST + PUT the payload blob, POST + PUT the config blob, PUT the manifest. No checks, no
merge (it assumes no `.sig` exists yet), no retries; the same HTTP library as hangar (aiohttp),
`JOBS` images at a time, the same connection pool size. Prints one JSON line: signatures
written and when (time.monotonic()) the first request was sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import sys
import time
from pathlib import Path

import aiohttp
import nacl.secret
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

INDEX_ACCEPT = (
    "application/vnd.oci.image.index.v1+json,"
    "application/vnd.docker.distribution.manifest.list.v2+json"
)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
WANTED = {("linux", "amd64"), ("linux", "arm64")}


def load_key(path: str, passphrase_file: str) -> ec.EllipticCurvePrivateKey:
    """cosign's encrypted key: scrypt, then NaCl secretbox, then PKCS#8."""
    pem = Path(path).read_text()
    body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
    envelope = json.loads(base64.b64decode(body))
    params = envelope["kdf"]["params"]
    passphrase = Path(passphrase_file).read_bytes().strip()
    secret = hashlib.scrypt(
        passphrase,
        salt=base64.b64decode(envelope["kdf"]["salt"]),
        n=params["N"],
        r=params["r"],
        p=params["p"],
        maxmem=256 * 1024 * 1024,
        dklen=32,
    )
    plaintext = nacl.secret.SecretBox(secret).decrypt(
        base64.b64decode(envelope["ciphertext"]), base64.b64decode(envelope["cipher"]["nonce"])
    )
    key = serialization.load_der_private_key(plaintext, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def compact(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


class Floor:
    def __init__(
        self, session: aiohttp.ClientSession, key: ec.EllipticCurvePrivateKey, index: bool
    ) -> None:
        self.session = session
        self.key = key
        self.index = index  # sign the index too
        self.signatures = 0
        self.first_request: float | None = None

    async def request(self, method: str, url: str, **kwargs: object) -> tuple[int, dict, bytes]:
        if self.first_request is None:
            self.first_request = time.monotonic()
        async with self.session.request(method, url, **kwargs) as response:  # type: ignore[arg-type]
            return response.status, dict(response.headers), await response.read()

    async def upload(self, base: str, repository: str, data: bytes) -> str:
        digest = digest_of(data)
        _, headers, _ = await self.request("POST", f"{base}/v2/{repository}/blobs/uploads/")
        location = headers["Location"]
        url = location if "://" in location else base + location
        separator = "&" if "?" in url else "?"
        status, _, _ = await self.request(
            "PUT",
            f"{url}{separator}digest={digest}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert status == 201, status
        return digest

    async def sign_digest(self, base: str, repository: str, identity: str, digest: str) -> None:
        tag = digest.replace(":", "-") + ".sig"
        await self.request("GET", f"{base}/v2/{repository}/manifests/{tag}")
        payload = compact(
            {
                "critical": {
                    "identity": {"docker-reference": identity},
                    "image": {"docker-manifest-digest": digest},
                    "type": "cosign container image signature",
                },
                "optional": {"creator": "floor", "timestamp": int(time.time())},
            }
        )
        signature = self.key.sign(payload, ec.ECDSA(hashes.SHA256()))
        payload_digest = await self.upload(base, repository, payload)
        config = compact(
            {
                "architecture": "",
                "os": "",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [payload_digest]},
            }
        )
        config_digest = await self.upload(base, repository, config)
        manifest = compact(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "size": len(config),
                    "digest": config_digest,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                        "size": len(payload),
                        "digest": payload_digest,
                        "annotations": {
                            "dev.cosignproject.cosign/signature": base64.b64encode(
                                signature
                            ).decode()
                        },
                    }
                ],
            }
        )
        status, _, _ = await self.request(
            "PUT",
            f"{base}/v2/{repository}/manifests/{tag}",
            data=manifest,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert status == 201, status
        self.signatures += 1

    async def sign_line(self, line: str) -> None:
        host, _, rest = line.partition("/")
        repository, _, tag = rest.rpartition(":")
        base = f"http://{host}"
        _, _, body = await self.request(
            "GET", f"{base}/v2/{repository}/manifests/{tag}", headers={"Accept": INDEX_ACCEPT}
        )
        index = json.loads(body)
        digests = [
            entry["digest"]
            for entry in index["manifests"]
            if (entry["platform"]["os"], entry["platform"]["architecture"]) in WANTED
        ]
        if self.index:
            digests.append(digest_of(body))
        for digest in digests:
            await self.sign_digest(base, repository, f"{host}/{repository}:{tag}", digest)


async def run(
    lines: list[str], key: ec.EllipticCurvePrivateKey, jobs: int, index: bool = True
) -> Floor:
    connector = aiohttp.TCPConnector(limit=jobs * 4, limit_per_host=jobs * 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        floor = Floor(session, key, index)
        queue: asyncio.Queue[str] = asyncio.Queue()
        for line in lines:
            queue.put_nowait(line)

        async def worker() -> None:
            while not queue.empty():
                await floor.sign_line(queue.get_nowait())

        await asyncio.gather(*(worker() for _ in range(jobs)))
        return floor


def main() -> None:
    list_file, key_file, passphrase_file, jobs = sys.argv[1:5]
    key = load_key(key_file, passphrase_file)
    lines = [line.strip() for line in Path(list_file).read_text().splitlines() if line.strip()]
    floor = asyncio.run(run(lines, key, int(jobs), index="--no-index" not in sys.argv[5:]))
    print(json.dumps({"signatures": floor.signatures, "first_request": floor.first_request}))


if __name__ == "__main__":
    main()
