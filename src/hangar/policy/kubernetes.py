"""What Kubernetes admission controllers need to accept hangar's signatures, for the same key
and scope as `sign policy`'s policy.json (bundles.md sections 9-10). Pure text.

- Kyverno ClusterPolicy, `verifyImages` with the key: `type: Cosign` reads only the `.sig`
  tag; `type: SigstoreBundle` (Kyverno 1.13+) reads only bundles, and a key bundle with no log
  entry and no timestamp passes only with both `rekor.ignoreTlog` and `ctlog.ignoreSCT` (else
  Kyverno wants a tlog entry and an observer timestamp, and loads the public-good TUF root).
- policy-controller ClusterImagePolicy: a `key` authority verifies `.sig` signatures only
  (`signatureFormat: bundle` is refused for key authorities); without a `ctlog` block it asks
  for no transparency log.
"""

from __future__ import annotations

import re
import textwrap

from hangar.sigstore.keys import PublicKey


def _name(scope: str) -> str:
    """A Kubernetes object name (DNS label rules) for the scope."""
    return "hangar-" + re.sub(r"[^a-z0-9-]+", "-", scope.lower()).strip("-")[:50].strip("-")


def _indented_key(key: PublicKey, spaces: int) -> str:
    return textwrap.indent(key.pem().decode("ascii").rstrip("\n"), " " * spaces)


def kyverno_policy(scope: str, key: PublicKey, *, bundle: bool) -> str:
    """A ClusterPolicy verifying every Pod image under `scope` with `key`: the `.sig` format
    (type Cosign) or the bundle format (type SigstoreBundle)."""
    kind, suffix = ("SigstoreBundle", "-bundle") if bundle else ("Cosign", "-sig")
    ctlog = "\n                    ctlog:\n                      ignoreSCT: true" if bundle else ""
    return f"""apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: {_name(scope)}{suffix}
spec:
  webhookTimeoutSeconds: 30
  rules:
    - name: verify-{kind.lower()}
      match:
        any:
          - resources:
              kinds: [Pod]
      verifyImages:
        - imageReferences: ["{scope}/*"]
          type: {kind}
          failureAction: Enforce
          attestors:
            - entries:
                - keys:
                    publicKeys: |-
{_indented_key(key, 22)}
                    rekor:
                      ignoreTlog: true{ctlog}
"""


def policy_controller_policy(scope: str, key: PublicKey) -> str:
    """A ClusterImagePolicy with `key` as a key authority for every image under `scope`."""
    return f"""apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata:
  name: {_name(scope)}
spec:
  images:
    - glob: "{scope}/**"
  authorities:
    - name: hangar-key
      key:
        hashAlgorithm: sha256
        data: |
{_indented_key(key, 10)}
"""


def render_kubernetes(scope: str, key: PublicKey) -> str:
    """The three documents, each after a `#` comment line saying what it is for."""
    return "\n".join(
        [
            "# kyverno-sig: Kyverno ClusterPolicy for the .sig format (type: Cosign; what"
            " sign --signature-format legacy|both writes)",
            kyverno_policy(scope, key, bundle=False).rstrip("\n"),
            "",
            "# kyverno-bundle: Kyverno 1.13+ ClusterPolicy for Sigstore bundles (type:"
            " SigstoreBundle; sign --signature-format bundle|both); a key bundle with no log"
            " needs both rekor.ignoreTlog and ctlog.ignoreSCT",
            kyverno_policy(scope, key, bundle=True).rstrip("\n"),
            "",
            "# policy-controller: ClusterImagePolicy; a key authority verifies the .sig format"
            " only (signatureFormat: bundle is refused for key authorities), so sign with"
            " --signature-format legacy or both",
            policy_controller_policy(scope, key).rstrip("\n"),
            "",
        ]
    )
