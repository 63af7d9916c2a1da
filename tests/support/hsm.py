"""A real PKCS#11 token for the tests: SoftHSM2 (Debian's softhsm2) with a private
SOFTHSM2_CONF and token directory, tokens made with softhsm2-util and keys with OpenSC's
pkcs11-tool, so that nothing here goes through hangar's own PKCS#11 code.

`SoftHsm.create(dir)` makes the configuration; `remove()` deletes the whole directory. Tests run
hangar as a subprocess with `hsm.env` (SOFTHSM2_CONF), so each test may use a SoftHSM of its own
(SoftHSM reads its configuration once per process).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "1234-user"
SO_PIN = "5678-so"
CKA_OS_TOKENFLAGS = 0x8000534B  # SoftHSM2's vendor attribute holding the token flags
CKF_USER_PIN_LOCKED = 0x00040000
_ULONG_VALUE = 2  # SoftHSM2's object store: attribute value kind "unsigned long"


def _run(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({result.returncode}): {result.stderr}")
    return result.stdout


@dataclass
class SoftHsm:
    root: Path
    conf: Path
    tokens_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path) -> SoftHsm:
        import os

        tokens = root / "tokens"
        tokens.mkdir(parents=True)
        conf = root / "softhsm2.conf"
        conf.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )
        env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
        return cls(root, conf, tokens, env)

    def env_for_hangar(self) -> dict[str, str]:
        """What a hangar subprocess needs to see this SoftHSM (for run_hangar's **env)."""
        return {"SOFTHSM2_CONF": str(self.conf)}

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # Tokens -------------------------------------------------------------------------------

    def init_token(self, label: str, pin: str = PIN) -> None:
        _run(
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                label,
                "--pin",
                pin,
                "--so-pin",
                SO_PIN,
            ],
            self.env,
        )

    def delete_token(self, label: str) -> None:
        _run(["softhsm2-util", "--delete-token", "--token", label], self.env)

    def lock_user_pin(self, label: str) -> None:
        """Mark the token's user PIN locked in its store, as a token does after too many wrong
        PINs (SoftHSM2 refuses a login then, CKR_PIN_LOCKED, but never counts by itself)."""
        for token_file in self.tokens_dir.glob("*/token.object"):
            data = bytearray(token_file.read_bytes())
            if label.encode() not in data:
                continue
            marker = CKA_OS_TOKENFLAGS.to_bytes(8, "big") + _ULONG_VALUE.to_bytes(8, "big")
            at = data.index(marker) + len(marker)
            flags = int.from_bytes(data[at : at + 8], "big") | CKF_USER_PIN_LOCKED
            data[at : at + 8] = flags.to_bytes(8, "big")
            token_file.write_bytes(bytes(data))
            return
        raise AssertionError(f"no token {label} under {self.tokens_dir}")

    # Keys, with pkcs11-tool -----------------------------------------------------------------

    def tool(self, token: str, *args: str, pin: str | None = PIN) -> str:
        login = ["--login", "--pin", pin] if pin is not None else []
        return _run(
            ["pkcs11-tool", "--module", MODULE, "--token-label", token, *login, *args], self.env
        )

    def keygen(
        self,
        token: str,
        label: str,
        key_id: str,
        key_type: str = "EC:prime256v1",
        *usage: str,
    ) -> None:
        """A key pair made by pkcs11-tool (`--keypairgen`), as an operator would."""
        self.tool(
            token,
            "--keypairgen",
            "--key-type",
            key_type,
            "--label",
            label,
            "--id",
            key_id,
            *usage,
        )

    def keygen_without_sign(self, token: str, label: str, key_id: str) -> None:
        """A P-256 pair whose private key may not sign (CKA_SIGN false), which pkcs11-tool
        cannot make (it only ever sets usage flags true): python-pkcs11 in a child process."""
        script = (
            "import sys, pkcs11\n"
            "from pkcs11 import Attribute, KeyType\n"
            "from pkcs11.util.ec import encode_named_curve_parameters\n"
            f"token = pkcs11.lib({MODULE!r}).get_token(token_label=sys.argv[1])\n"
            "with token.open(rw=True, user_pin=sys.argv[2]) as session:\n"
            "    params = session.create_domain_parameters(KeyType.EC, {Attribute.EC_PARAMS:"
            " encode_named_curve_parameters('1.2.840.10045.3.1.7')}, local=True)\n"
            "    params.generate_keypair(store=True, label=sys.argv[3], id=bytes.fromhex("
            "sys.argv[4]), private_template={Attribute.SIGN: False, Attribute.DERIVE: True})\n"
        )
        _run([sys.executable, "-c", script, token, PIN, label, key_id], self.env)

    def public_key_pem(self, token: str, label: str, out: Path) -> Path:
        """The public key read out of the token by pkcs11-tool, written as a PEM .pub."""
        der_file = out.with_suffix(".der")
        self.tool(token, "--read-object", "--type", "pubkey", "--label", label, "-o", str(der_file))
        key = serialization.load_der_public_key(der_file.read_bytes())
        out.write_bytes(
            key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        return out

    def objects(self, token: str) -> str:
        return self.tool(token, "--list-objects")

    # URIs ----------------------------------------------------------------------------------

    def uri(
        self,
        token: str,
        label: str | None = None,
        *,
        pin_file: Path | None = None,
        pin: str | None = None,
        module: bool = True,
        **path: str,
    ) -> str:
        parts = [f"token={quote(token)}"]
        if label is not None:
            parts.append(f"object={quote(label)}")
        parts += [f"{name.replace('_', '-')}={value}" for name, value in path.items()]
        query = []
        if module:
            query.append(f"module-path={MODULE}")
        if pin_file is not None:
            query.append(f"pin-source=file:{pin_file}")
        if pin is not None:
            query.append(f"pin-value={pin}")
        return "pkcs11:" + ";".join(parts) + ("?" + "&".join(query) if query else "")

    def pin_file(self, pin: str = PIN) -> Path:
        path = self.root / f"pin-{len(list(self.root.glob('pin-*')))}"
        path.write_text(pin + "\n")
        path.chmod(0o600)
        return path


SESSION_TOKEN = "hangar"
TOOL_KEY = "tool-p256"  # made by pkcs11-tool
TOOL_KEY_ID = "01"


def session_token(hsm: SoftHsm) -> None:
    hsm.init_token(SESSION_TOKEN)
    hsm.keygen(SESSION_TOKEN, TOOL_KEY, TOOL_KEY_ID)
