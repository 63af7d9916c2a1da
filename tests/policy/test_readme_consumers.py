"""The README's consumer configuration must be what podman/CRI-O accept: its policy.json
parses with containers/image's strictness and its registries.d turns attachments on."""

from __future__ import annotations

import re
from pathlib import Path

from hangar.policy.config import parse_policy
from hangar.policy.registries import load_registries_d
from hangar.policy.requirements import SigstoreSigned
from tests.support.paths import REPO


def consumer_section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("### Consumers")
    return text[start : text.index("\n### ", start + 1)]


def block(language: str) -> str:
    match = re.search(rf"```{language}\n(.*?)```", consumer_section(), re.DOTALL)
    assert match is not None, language
    return match.group(1)


def test_readme_policy_and_registries_d(tmp_path: Path) -> None:
    policy = parse_policy(block("json").encode(), source="README.md")
    docker = policy.docker
    assert docker is not None
    requirement = docker["registry.example.com/ns"][0]
    assert isinstance(requirement, SigstoreSigned)
    assert requirement.identity.name == "matchRepoDigestOrExact"
    (tmp_path / "hangar.yaml").write_text(block("yaml"))
    config = load_registries_d(tmp_path)
    assert config.use_sigstore_attachments("registry.example.com/ns/app:v1") is True
    assert config.use_sigstore_attachments("registry.example.com/other/app:v1") is False


def test_readme_cosign_command_ignores_the_transparency_log() -> None:
    assert "cosign verify --key sigstore.pub --insecure-ignore-tlog=true" in block("bash")
