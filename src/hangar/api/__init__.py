"""hangar as a library: sign, validate and remove signatures over a list, and inspect an
image, with the same checked configs, results and report as the CLI (docs/api.md).

    from hangar.api import SignConfig, sign
    result = sign(SignConfig(file="images.txt", key="sigstore.key", passphrase_file="pass"))
    print(result.summary.counts, result.exit_code)

Each function logs to stderr as the CLI does and raises HangarError (with a message and a
hint) for what stops a whole run before it starts; a failed image never raises: it is counted
in the summary and written to the failed file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hangar.api.config import ConfigError, RemoveConfig, RunConfig, SignConfig, ValidateConfig

if TYPE_CHECKING:
    from hangar.api._inspect import config_bytes, describe_image, inspect_image, manifest_bytes
    from hangar.api._remove import remove
    from hangar.api._sign import PlannedLine, plan_signing, sign
    from hangar.api._validate import ValidateResult, validate
    from hangar.api.run import CredentialsPrompt, RunResult

__all__ = [
    "ConfigError",
    "CredentialsPrompt",
    "PlannedLine",
    "RemoveConfig",
    "RunConfig",
    "RunResult",
    "SignConfig",
    "ValidateConfig",
    "ValidateResult",
    "config_bytes",
    "describe_image",
    "inspect_image",
    "manifest_bytes",
    "plan_signing",
    "remove",
    "sign",
    "validate",
]

# The operations pull in the registry client and the crypto: imported on first use, so that
# importing the configs (as the CLI does for --help) stays fast.
_LAZY = {
    "CredentialsPrompt": "hangar.api.run",
    "RunResult": "hangar.api.run",
    "sign": "hangar.api._sign",
    "plan_signing": "hangar.api._sign",
    "PlannedLine": "hangar.api._sign",
    "validate": "hangar.api._validate",
    "ValidateResult": "hangar.api._validate",
    "remove": "hangar.api._remove",
    "inspect_image": "hangar.api._inspect",
    "manifest_bytes": "hangar.api._inspect",
    "config_bytes": "hangar.api._inspect",
    "describe_image": "hangar.api._inspect",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hangar.api' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
