"""What consumers need to accept hangar's signatures: a policy.json, a registries.d file and
the cosign command line, for a registry or namespace (`hangar sign policy`). Pure text.

The policy's signedIdentity follows how the images were signed (`sign --signed-identity`):
tag identities (the default) pass matchRepoDigestOrExact whether podman pulls by tag or by
digest; digest identities (hangar v1.8) and repository identities (cosign) only pass
matchRepository when pulled by tag.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

from hangar.errors import HangarError
from hangar.sigstore.identity import valid_remap_prefix
from hangar.sigstore.keys import PublicKey

IDENTITY_RULES = {
    "tag": "matchRepoDigestOrExact",
    "digest": "matchRepository",
    "repository": "matchRepository",
}


@dataclass(frozen=True)
class ConsumerConfig:
    scope: str  # HOST or HOST/namespace
    policy_json: str
    registries_d_name: str
    registries_d_yaml: str
    cosign_command: str


def checked_scope(text: str) -> str:
    """`HOST[:PORT][/namespace...]`, as a policy.json docker scope; HangarError otherwise."""
    scope = text.strip().removeprefix("docker://").rstrip("/")
    host = scope.split("/", 1)[0]
    looks_like_host = "." in host or ":" in host or host == "localhost"
    if not scope or not looks_like_host or not valid_remap_prefix(scope):
        raise HangarError(
            f"--registry {text!r} is not a registry or namespace",
            hint="write HOST[:PORT] or HOST[:PORT]/namespace, e.g. registry.example.com/team",
        )
    return scope


def consumer_config(
    scope: str, key: PublicKey, key_file: str, signed_identity: str = "tag"
) -> ConsumerConfig:
    requirement = {
        "type": "sigstoreSigned",
        "keyData": base64.b64encode(key.pem()).decode("ascii"),
        "signedIdentity": {"type": IDENTITY_RULES[signed_identity]},
    }
    policy = {
        # The usual default of Fedora/RHEL; keep yours, only the scope below matters.
        "default": [{"type": "insecureAcceptAnything"}],
        "transports": {"docker": {scope: [requirement]}},
    }
    # Quoted: a host:port key stays one string for every YAML reader.
    registries = f"docker:\n  {json.dumps(scope)}:\n    use-sigstore-attachments: true\n"
    name = "hangar-" + re.sub(r"[^A-Za-z0-9.-]+", "-", scope) + ".yaml"
    cosign = f"cosign verify --key {key_file} --insecure-ignore-tlog=true {scope}/IMAGE:TAG"
    return ConsumerConfig(scope, json.dumps(policy, indent=2), name, registries, cosign)


def render(config: ConsumerConfig) -> str:
    """The three parts, each after a `#` comment line saying where it goes."""
    return "\n".join(
        [
            f"# policy.json (/etc/containers/policy.json, or ~/.config/containers/policy.json):"
            f' add the "{config.scope}" scope to transports.docker of yours',
            config.policy_json,
            "",
            f"# registries.d (/etc/containers/registries.d/{config.registries_d_name}): podman"
            " and CRI-O read .sig attachments only where this is true",
            config.registries_d_yaml.rstrip("\n"),
            "",
            "# cosign 2.x and later: key-pair signatures without a transparency-log entry need"
            " --insecure-ignore-tlog=true",
            config.cosign_command,
            "",
        ]
    )
