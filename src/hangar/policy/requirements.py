"""The requirement types of a policy.json, as parsed by hangar.policy.config."""

from __future__ import annotations

from dataclasses import dataclass

from hangar.sigstore.identity import IdentityRule


@dataclass(frozen=True)
class InsecureAcceptAnything:
    type = "insecureAcceptAnything"


@dataclass(frozen=True)
class Reject:
    type = "reject"


@dataclass(frozen=True)
class SignedBy:
    """Simple signing (GPG, X.509): hangar cannot check it, so never reports a pass."""

    key_type: str
    identity: IdentityRule
    type = "signedBy"


@dataclass(frozen=True)
class SignedBaseLayer:
    """c/image refuses every image under it ("signedBaseLayer not implemented yet!")."""

    identity: IdentityRule
    type = "signedBaseLayer"


@dataclass(frozen=True)
class SigstoreSigned:
    """Exactly one key source is set (config enforces it); keyPath/keyData are lists of one."""

    key_paths: tuple[str, ...]
    key_datas: tuple[bytes, ...]
    uses_fulcio: bool
    uses_pki: bool
    uses_rekor: bool
    identity: IdentityRule
    type = "sigstoreSigned"

    def not_checkable(self) -> str | None:
        """Why hangar cannot decide this requirement (None: it can)."""
        if self.uses_fulcio:
            return (
                "sigstoreSigned with fulcio (certificates and a Rekor log) is not checkable by "
                "hangar"
            )
        if self.uses_pki:
            return "sigstoreSigned with pki (X.509 certificates) is not checkable by hangar"
        if self.uses_rekor:
            return (
                "sigstoreSigned with rekorPublicKey* (a Rekor SET on each signature) is not "
                "checkable by hangar"
            )
        return None


Requirement = InsecureAcceptAnything | Reject | SignedBy | SignedBaseLayer | SigstoreSigned
