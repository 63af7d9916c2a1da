"""The library API (hangar.api): the example of docs/api.md, run as a user would run it, on a
real registry; and the configs' checks, which the CLI shows as usage errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hangar.api import ConfigError, RemoveConfig, SignConfig, ValidateConfig
from tests.support.cli import KEY1, KEY1_PASS, KEY1_PUB, hangar_env, sig_tag, signed_tags
from tests.support.images import push_image
from tests.support.paths import REPO
from tests.support.registry import RegistryServer

pytestmark = pytest.mark.registry


def _example() -> str:
    text = (REPO / "docs" / "api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "docs/api.md has one example"
    return blocks[0]


def test_the_documented_example_signs_and_validates(
    registry_http: RegistryServer, tmp_path: Path, isolated_home: Path
) -> None:
    image = push_image(registry_http, "demo/app", "v1")
    for source, name in ((KEY1, "sigstore.key"), (KEY1_PASS, "passphrase.txt")):
        shutil.copy(source, tmp_path / name)
        (tmp_path / name).chmod(0o600)
    shutil.copy(KEY1_PUB, tmp_path / "sigstore.pub")
    (tmp_path / "example.py").write_text(_example())
    done = subprocess.run(
        [sys.executable, "example.py"],
        cwd=tmp_path,
        env=hangar_env(isolated_home, REGISTRY=registry_http.host),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "signed: 1 exit 0"
    assert lines[1] == "passed: 1 exit 0"
    assert lines[2] == f"{registry_http.host}/demo/app:v1 {image.digest} signed"
    tags = signed_tags(registry_http, "demo/app")
    assert sig_tag(image.digest) in tags
    # The library logs the run as the CLI does; printing the summary is the CLI's part.
    assert f"[IMG:1] PASS: [{registry_http.host}/demo/app:v1]" in done.stderr
    assert "Summary:" not in done.stderr and "[WARN]" not in done.stderr
    assert not (tmp_path / "sign-failed.txt").exists()


def test_configs_refuse_what_the_cli_refuses() -> None:
    with pytest.raises(ConfigError, match="-k/--sigstore-key is required"):
        SignConfig(file="images.txt")
    assert SignConfig(file="images.txt", dry_run=True).key is None
    with pytest.raises(ConfigError, match="-f/--file is required"):
        ValidateConfig(file="", pubkeys=("k.pub",))
    with pytest.raises(ConfigError, match="exclude each other"):
        ValidateConfig(file="l", policy="p.json", system_policy=True)
    with pytest.raises(ConfigError, match="say what to remove"):
        RemoveConfig(file="l")
    config = SignConfig(file="l", key="k", arch_given=("x86_64,aarch64",), jobs_given=99)
    assert config.arches == ["amd64", "arm64"] and config.jobs == 20
    assert config.command == "hangar sign" and config.inputs() == ["k"]
