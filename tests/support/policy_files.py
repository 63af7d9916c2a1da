"""policy.json and registries.d files as podman/CRI-O read them, written for `--policy` tests."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli import KEY1_PUB


def write_policy(path: Path, scopes: dict, default: list | None = None) -> Path:
    document = {
        "default": default or [{"type": "reject"}],
        "transports": {"docker": scopes},
    }
    path.write_text(json.dumps(document, indent=2))
    return path


def sigstore(key: Path = KEY1_PUB, **fields) -> dict:
    return {"type": "sigstoreSigned", "keyPath": str(key), **fields}


def registries_d(directory: Path, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "hangar.yaml").write_text(text)
    return directory


def attachments_on(directory: Path, host: str) -> Path:
    return registries_d(directory, f"docker:\n  {host}:\n    use-sigstore-attachments: true\n")
