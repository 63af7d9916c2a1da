"""Every way a PKCS#11 key can fail, on a real SoftHSM2 token: one line that says what to do,
exit 1, nothing sent to the registry, the PIN in no message; each row is in docs/errors.md.
The token gone mid-run fails that image into the failed file, and the run goes on."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.support.cli import (
    HANGAR,
    StderrWatch,
    failed_lines,
    hangar_env,
    run_hangar,
    write_list,
)
from tests.support.errors_doc import documented, error_lines
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.hsm import MODULE, PIN, SESSION_TOKEN, TOOL_KEY, SoftHsm
from tests.support.images import push_image
from tests.support.registry import RegistryServer


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


def sign_with(
    key: str, home: Path, tmp_path: Path, hsm: SoftHsm, *extra: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """`hangar sign` of a list whose registry does not exist: a key error must come first."""
    list_file = write_list(tmp_path / "list", "127.0.0.1:1/never/contacted:v1")
    return run_hangar(
        ["sign", "-f", str(list_file), "-k", key, "--tls-verify=false", *extra],
        home,
        **hsm.env_for_hangar(),
        **env,
    )


def only_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "127.0.0.1:1" not in result.stderr, "the registry was contacted before the key"
    assert PIN not in result.stderr
    line = lines[0]
    assert line.endswith(")"), f"no hint: {line}"
    return line


def subs(tmp_path: Path, hsm: SoftHsm) -> dict[str, str]:
    return {str(hsm.root): "HSM", str(tmp_path): "TMP"}


def test_no_module_path(softhsm: SoftHsm, home: Path, tmp_path: Path) -> None:
    uri = softhsm.uri(SESSION_TOKEN, TOOL_KEY, module=False, pin_file=softhsm.pin_file())
    line = only_error(sign_with(uri, home, tmp_path, softhsm))
    assert "no PKCS#11 module path" in line and "COSIGN_PKCS11_MODULE_PATH" in line
    documented("pkcs11-no-module-path", 1, line, subs(tmp_path, softhsm))


def test_the_module_path_can_come_from_cosigns_variable(
    softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    """COSIGN_PKCS11_MODULE_PATH and COSIGN_PKCS11_PIN stand in for module-path and the PIN:
    the key opens and the run goes on to the (absent) registry."""
    uri = softhsm.uri(SESSION_TOKEN, TOOL_KEY, module=False)
    result = sign_with(
        uri,
        home,
        tmp_path,
        softhsm,
        COSIGN_PKCS11_MODULE_PATH=MODULE,
        COSIGN_PKCS11_PIN=PIN,
    )
    assert result.returncode == 1
    assert "127.0.0.1:1" in result.stderr and "PKCS#11" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("case", "module", "needle"),
    [
        ("pkcs11-module-missing", "/nonexistent/libvendor.so", "the file does not exist"),
        ("pkcs11-module-not-loadable", "/etc/hostname", "cannot be loaded"),
    ],
)
def test_a_module_that_cannot_be_loaded(
    softhsm: SoftHsm, home: Path, tmp_path: Path, case: str, module: str, needle: str
) -> None:
    uri = f"pkcs11:token={SESSION_TOKEN};object={TOOL_KEY}?module-path={module}"
    line = only_error(sign_with(uri, home, tmp_path, softhsm))
    assert needle in line and module in line
    documented(case, 1, line, subs(tmp_path, softhsm))


def test_token_not_found_names_the_tokens_present(
    softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    uri = softhsm.uri("no-such-token", TOOL_KEY, pin_file=softhsm.pin_file())
    line = only_error(sign_with(uri, home, tmp_path, softhsm))
    assert "token not found" in line and f'"{SESSION_TOKEN}" (serial ' in line
    serial = line.split("(serial ", 1)[1].split(",", 1)[0]
    slot = line.split("slot-id ", 1)[1].split(")", 1)[0]
    documented(
        "pkcs11-token-not-found", 1, line, {**subs(tmp_path, softhsm), serial: "SERIAL", slot: "N"}
    )


def test_key_not_found_names_the_keys_present(softhsm: SoftHsm, home: Path, tmp_path: Path) -> None:
    uri = softhsm.uri(SESSION_TOKEN, "no-such-key", pin_file=softhsm.pin_file())
    line = only_error(sign_with(uri, home, tmp_path, softhsm))
    assert "no private key matches object=no-such-key" in line
    assert f'keys present: "{TOOL_KEY}" (id 01, EC)' in line
    documented("pkcs11-key-not-found", 1, _stable_token(line, softhsm, tmp_path), {})


def _stable_token(line: str, hsm: SoftHsm, tmp_path: Path) -> str:
    serial = line.split("(serial ", 1)[1].split(",", 1)[0]
    slot = line.split("slot-id ", 1)[1].split(")", 1)[0]
    for old, new in {
        **subs(tmp_path, hsm),
        serial: "SERIAL",
        f"slot-id {slot}": "slot-id N",
    }.items():
        line = line.replace(old, new)
    return line


def test_wrong_pin(softhsm: SoftHsm, home: Path, tmp_path: Path) -> None:
    uri = softhsm.uri(SESSION_TOKEN, TOOL_KEY, pin_file=softhsm.pin_file("9999-wrong"))
    line = only_error(sign_with(uri, home, tmp_path, softhsm))
    assert "the PIN is wrong" in line and "9999-wrong" not in line
    documented("pkcs11-wrong-pin", 1, _stable_token(line, softhsm, tmp_path), {})


def test_no_pin_and_no_terminal(softhsm: SoftHsm, home: Path, tmp_path: Path) -> None:
    line = only_error(sign_with(softhsm.uri(SESSION_TOKEN, TOOL_KEY), home, tmp_path, softhsm))
    assert "no PIN for PKCS#11 token" in line and "pin-source=file:" in line
    documented("pkcs11-no-pin", 1, _stable_token(line, softhsm, tmp_path), {})


def test_pin_locked(fresh_softhsm: SoftHsm, home: Path, tmp_path: Path) -> None:
    hsm = fresh_softhsm
    hsm.init_token("locked")
    hsm.keygen("locked", "k", "07")
    hsm.lock_user_pin("locked")
    line = only_error(
        sign_with(hsm.uri("locked", "k", pin_file=hsm.pin_file()), home, tmp_path, hsm)
    )
    assert "the user PIN is locked" in line
    documented("pkcs11-pin-locked", 1, _stable_token(line, hsm, tmp_path), {})


def test_a_key_that_cannot_sign(fresh_softhsm: SoftHsm, home: Path, tmp_path: Path) -> None:
    hsm = fresh_softhsm
    hsm.init_token("derive")
    hsm.keygen_without_sign("derive", "derive-only", "08")
    uri = hsm.uri("derive", "derive-only", pin_file=hsm.pin_file())
    line = only_error(sign_with(uri, home, tmp_path, hsm))
    assert "cannot sign (its CKA_SIGN attribute is false)" in line
    documented("pkcs11-key-cannot-sign", 1, _stable_token(line, hsm, tmp_path), {})


def test_an_unsupported_key_type(fresh_softhsm: SoftHsm, home: Path, tmp_path: Path) -> None:
    hsm = fresh_softhsm
    hsm.init_token("curves")
    hsm.keygen("curves", "k256k1", "09", "EC:secp256k1")
    line = only_error(
        sign_with(hsm.uri("curves", "k256k1", pin_file=hsm.pin_file()), home, tmp_path, hsm)
    )
    assert "unsupported ECDSA curve secp256k1" in line and "P-256" in line
    documented("pkcs11-unsupported-key-type", 1, _stable_token(line, hsm, tmp_path), {})


@pytest.mark.parametrize(
    ("scheme", "name"),
    [
        ("hashivault://transit-key", "HashiCorp Vault"),
        ("awskms:///arn:aws:kms:eu-west-1:1:key/1", "AWS KMS"),
        ("gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k", "Google Cloud KMS"),
        ("azurekms://vault.vault.azure.net/key", "Azure Key Vault"),
        ("k8s://namespace/secret", "Kubernetes Secret"),
    ],
)
def test_kms_schemes_are_not_supported_yet(
    softhsm: SoftHsm, home: Path, tmp_path: Path, scheme: str, name: str
) -> None:
    line = only_error(sign_with(scheme, home, tmp_path, softhsm))
    assert f"{name} keys" in line and "not supported yet" in line
    assert "does not exist" not in line
    documented(f"key-{scheme.split(':')[0]}-not-supported", 1, line, {})


def test_a_uri_typo_is_refused_not_guessed(softhsm: SoftHsm, home: Path, tmp_path: Path) -> None:
    uri = f"pkcs11:token={SESSION_TOKEN};objcet={TOOL_KEY}?module-path={MODULE}"
    line = only_error(sign_with(uri, home, tmp_path, softhsm))
    assert "unknown attribute objcet=" in line
    documented("pkcs11-uri-unknown-attribute", 1, line, {})


def test_the_token_gone_mid_run_fails_those_images_into_the_failed_file(
    registry_http: RegistryServer, fresh_softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    hsm = fresh_softhsm
    hsm.init_token("removable")
    hsm.keygen("removable", "k", "0a")
    repo = f"hsm/gone-{uuid.uuid4().hex[:8]}"
    for tag in ("a", "b", "c"):
        push_image(registry_http, repo, tag, kind="oci-manifest")
    with FaultProxy.in_front_of(registry_http) as proxy:
        held = proxy.add_rule(Rule(method="GET", path_regex=f"/{repo}/manifests/b$", action="hold"))
        lines = [f"{proxy.host}/{repo}:{tag}" for tag in ("a", "b", "c")]
        list_file = write_list(tmp_path / "list", *lines)
        failed = tmp_path / "failed.txt"
        uri = hsm.uri("removable", "k", pin_file=hsm.pin_file())
        args = ["sign", "-f", str(list_file), "-k", uri, "-j", "1", "--tls-verify=false"]
        process = subprocess.Popen(
            [HANGAR, *args, "-o", str(failed)],
            env=hangar_env(home, **hsm.env_for_hangar()),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        watch = StderrWatch(process)
        try:
            deadline = time.monotonic() + 60
            while proxy.hits(held) < 1:
                assert time.monotonic() < deadline and process.poll() is None, watch.text()
                time.sleep(0.02)
            hsm.delete_token("removable")
            proxy.release(held)
            assert process.wait(timeout=120) == 1
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        stderr = watch.close()
    assert f"Signed [{proxy.host}/{repo}@" in stderr
    assert failed_lines(failed) == lines[1:]
    errors = [line for line in error_lines(stderr) if "[IMG:" in line]
    assert len(errors) == 2 and all("stopped answering while signing" in e for e in errors)
    assert (
        "Summary: 3 images: 1 signed, 0 already signed, 0 skipped for platform, 2 failed" in stderr
    )
    assert PIN not in stderr and "Traceback" not in stderr
    line = _stable_token(errors[0], hsm, tmp_path)
    documented("pkcs11-token-gone-mid-run", 1, line, {proxy.host: "HOST", repo: "REPO"})


def test_the_pin_file_is_an_input_no_output_may_overwrite(
    softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    pin = softhsm.pin_file()
    uri = softhsm.uri(SESSION_TOKEN, TOOL_KEY, pin_file=pin)
    result = sign_with(uri, home, tmp_path, softhsm, "-o", str(pin))
    assert result.returncode == 2, result.stderr
    assert f"-o {pin} is the same file as {pin}, which this command reads" in result.stderr
    assert pin.read_text() == PIN + "\n"


def test_a_passphrase_file_with_a_token_key_is_said_to_be_unused(
    softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("not used\n")
    passphrase.chmod(0o600)
    uri = softhsm.uri(SESSION_TOKEN, TOOL_KEY, pin_file=softhsm.pin_file())
    result = sign_with(uri, home, tmp_path, softhsm, "--sigstore-passphrase-file", str(passphrase))
    warning = [line for line in result.stderr.splitlines() if line.startswith("[WARN]")]
    assert (
        len(warning) == 1 and f"--sigstore-passphrase-file {passphrase} is not used" in warning[0]
    )
    assert "127.0.0.1:1" in result.stderr  # the key opened; the run went on to the registry
