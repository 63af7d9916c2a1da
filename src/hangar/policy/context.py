"""A policy and a registries.d configuration together: which requirements apply to an image
pulled as a given reference, and the keys of its sigstoreSigned requirements (read once)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hangar.keys.files import load_public_key
from hangar.policy.config import Policy
from hangar.policy.registries import RegistriesConfig
from hangar.policy.requirements import Requirement, SigstoreSigned
from hangar.policy.scopes import lookup_scope
from hangar.sigstore.keys import PublicKey, load_public_key_bytes


@dataclass
class PolicyContext:
    policy: Policy
    registries: RegistriesConfig
    _keys: dict[int, list[PublicKey]] = field(default_factory=dict)

    def requirements_for(self, image_reference: str) -> tuple[str, tuple[Requirement, ...]]:
        """The scope that applies (as written in the policy, `default` for the default) and
        its requirements."""
        docker = self.policy.docker
        scope = lookup_scope(docker, image_reference)
        if scope is None or docker is None:
            return "default", self.policy.default
        return f'transports.docker."{scope}"', docker[scope]

    def keys(self, requirement: SigstoreSigned) -> list[PublicKey]:
        """The requirement's public keys; KeyFileError when one cannot be read, which c/image
        also reports at evaluation time (so the image is refused, not the run)."""
        cached = self._keys.get(id(requirement))
        if cached is None:
            cached = [load_public_key(path) for path in requirement.key_paths]
            cached += [
                load_public_key_bytes(data, source=f"keyData {number}")
                for number, data in enumerate(requirement.key_datas, start=1)
            ]
            self._keys[id(requirement)] = cached
        return cached
