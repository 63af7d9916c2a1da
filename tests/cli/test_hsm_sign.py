"""`hangar sign -k pkcs11:...` end to end: a real SoftHSM2 token, a real registry.

The public key that checks the signatures is read out of the token by pkcs11-tool, not by
hangar, and each signature is verified with `cryptography` as containers/image does (ASN.1 DER
ECDSA over the exact payload bytes, which are checked field by field).
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.support.cli import (
    HANGAR,
    check_hangar_attachment,
    hangar_env,
    read_attachment,
    run_hangar,
    sig_tag,
    signed_tags,
    validate_args,
    write_list,
)
from tests.support.hsm import PIN, SESSION_TOKEN, TOOL_KEY, SoftHsm
from tests.support.images import push_image
from tests.support.registry import RegistryServer
from tests.support.terminal import run_in_pty


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


def hsm_sign_args(list_file: Path, server: RegistryServer, key: str, *extra: str) -> list[str]:
    args = ["sign", "-f", str(list_file), "-k", key]
    if server.scheme == "http":
        args.append("--tls-verify=false")
    return [*args, *extra]


def test_a_token_key_signs_what_podman_verifies_with_the_key_pkcs11_tool_reads_out(
    registry_http: RegistryServer, softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    repo = f"hsm/app-{uuid.uuid4().hex[:8]}"
    image = push_image(registry_http, repo, "v1", kind="oci-index")
    ref = f"{registry_http.host}/{repo}:v1"
    list_file = write_list(tmp_path / "list", ref)
    uri = softhsm.uri(SESSION_TOKEN, TOOL_KEY, pin_file=softhsm.pin_file())
    report = tmp_path / "report.json"
    result = run_hangar(
        hsm_sign_args(list_file, registry_http, uri, "--report", str(report)),
        home,
        **softhsm.env_for_hangar(),
    )
    assert result.returncode == 0, result.stderr
    public = softhsm.public_key_pem(SESSION_TOKEN, TOOL_KEY, tmp_path / "tool.pub")
    wanted = [image.platforms["linux/amd64"], image.platforms["linux/arm64"], image.digest]
    assert signed_tags(registry_http, repo) == {sig_tag(d) for d in wanted}
    for digest in wanted:
        layers = check_hangar_attachment(registry_http, repo, digest, ref, public)
        assert len(layers) == 1
        # ASN.1 DER, as containers/image requires: r and s decode, and re-encode to the same bytes
        r, s = decode_dss_signature(layers[0].signature)
        assert r > 0 and s > 0 and layers[0].signature[0] == 0x30
    # The report names the key by its URI and fingerprint; pkcs11-tool's key has the same.
    document = json.loads(report.read_text())
    (key,) = document["keys"]
    assert key["file"] == uri
    # validate with the .pub pkcs11-tool read, and with the token's URI: both PASS
    for pub in (str(public), softhsm.uri(SESSION_TOKEN, TOOL_KEY)):
        checked = run_hangar(
            [*validate_args(list_file, registry_http, keys=()), "-p", pub],
            home,
            **softhsm.env_for_hangar(),
        )
        assert checked.returncode == 0, checked.stderr
        assert f"PASS: [{ref}]" in checked.stderr


def test_eight_jobs_sign_many_images_with_one_token(
    registry_http: RegistryServer, softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    repo = f"hsm/many-{uuid.uuid4().hex[:8]}"
    refs = []
    digests = []
    for number in range(12):
        digests.append(push_image(registry_http, repo, f"v{number}", kind="oci-manifest").digest)
        refs.append(f"{registry_http.host}/{repo}:v{number}")
    list_file = write_list(tmp_path / "list", *refs)
    uri = softhsm.uri(SESSION_TOKEN, TOOL_KEY, pin_file=softhsm.pin_file())
    result = run_hangar(
        hsm_sign_args(list_file, registry_http, uri, "-j", "8"), home, **softhsm.env_for_hangar()
    )
    assert result.returncode == 0, result.stderr
    assert "12 signatures written" in result.stderr
    public = softhsm.public_key_pem(SESSION_TOKEN, TOOL_KEY, tmp_path / "tool.pub")
    for digest, ref in zip(digests, refs, strict=True):
        check_hangar_attachment(registry_http, repo, digest, ref, public)


def test_the_payload_holds_only_the_manifest_digest_and_identity(
    registry_http: RegistryServer, softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    """The vectors' rule: the signature covers the exact payload bytes stored as the layer
    (base64 annotation), nothing derived; the tag scheme is sha256-HEX.sig."""
    repo = f"hsm/one-{uuid.uuid4().hex[:8]}"
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    ref = f"{registry_http.host}/{repo}@{image.digest}"
    uri = softhsm.uri(SESSION_TOKEN, TOOL_KEY, pin_file=softhsm.pin_file())
    result = run_hangar(
        hsm_sign_args(write_list(tmp_path / "list", ref), registry_http, uri),
        home,
        **softhsm.env_for_hangar(),
    )
    assert result.returncode == 0, result.stderr
    manifest, _, layers = read_attachment(registry_http, repo, image.digest)
    (layer,) = layers
    annotation = layer.descriptor["annotations"]["dev.cosignproject.cosign/signature"]
    assert base64.b64decode(annotation) == layer.signature
    assert layer.document["critical"]["image"]["docker-manifest-digest"] == image.digest
    assert layer.document["critical"]["identity"]["docker-reference"] == ref
    assert manifest["layers"] == [layer.descriptor]


def test_the_pin_is_asked_on_a_terminal_without_echo(
    registry_http: RegistryServer, softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    repo = f"hsm/tty-{uuid.uuid4().hex[:8]}"
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    ref = f"{registry_http.host}/{repo}:v1"
    list_file = write_list(tmp_path / "list", ref)
    argv = [HANGAR, *hsm_sign_args(list_file, registry_http, softhsm.uri(SESSION_TOKEN, TOOL_KEY))]
    prompt = f"Enter PIN for PKCS#11 token {SESSION_TOKEN}: ".encode()
    code, output = run_in_pty(
        argv,
        [(prompt, PIN.encode() + b"\n")],
        env=hangar_env(home, **softhsm.env_for_hangar()),
        cwd=tmp_path,
    )
    assert code == 0, output.decode(errors="replace")
    assert PIN.encode() not in output  # no echo
    public = softhsm.public_key_pem(SESSION_TOKEN, TOOL_KEY, tmp_path / "tool.pub")
    check_hangar_attachment(registry_http, repo, image.digest, ref, public)


def test_an_rsa_token_key_signs_pkcs1_v15_that_validate_accepts(
    registry_http: RegistryServer, fresh_softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    hsm = fresh_softhsm
    hsm.init_token("rsa")
    hsm.keygen("rsa", "rsa-2048", "21", "rsa:2048")
    repo = f"hsm/rsa-{uuid.uuid4().hex[:8]}"
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    ref = f"{registry_http.host}/{repo}:v1"
    list_file = write_list(tmp_path / "list", ref)
    uri = hsm.uri("rsa", "rsa-2048", pin_file=hsm.pin_file())
    result = run_hangar(hsm_sign_args(list_file, registry_http, uri), home, **hsm.env_for_hangar())
    assert result.returncode == 0, result.stderr
    public_pem = hsm.public_key_pem("rsa", "rsa-2048", tmp_path / "rsa.pub")
    public = serialization.load_pem_public_key(public_pem.read_bytes())
    assert isinstance(public, rsa.RSAPublicKey)
    _, _, (layer,) = read_attachment(registry_http, repo, image.digest)
    public.verify(layer.signature, layer.payload, padding.PKCS1v15(), hashes.SHA256())
    checked = run_hangar(
        [*validate_args(list_file, registry_http, keys=()), "-p", str(public_pem)], home
    )
    assert checked.returncode == 0 and f"PASS: [{ref}]" in checked.stderr, checked.stderr


def test_inspect_policy_and_remove_take_the_token_uri_for_their_public_key(
    registry_http: RegistryServer, softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    repo = f"hsm/p-{uuid.uuid4().hex[:8]}"
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    ref = f"{registry_http.host}/{repo}:v1"
    list_file = write_list(tmp_path / "list", ref)
    env = softhsm.env_for_hangar()
    signing = softhsm.uri(SESSION_TOKEN, TOOL_KEY, pin_file=softhsm.pin_file())
    assert run_hangar(hsm_sign_args(list_file, registry_http, signing), home, **env).returncode == 0
    public = softhsm.uri(SESSION_TOKEN, TOOL_KEY)
    inspected = run_hangar(
        ["inspect", "--tls-verify=false", "-p", public, f"docker://{ref}"], home, **env
    )
    assert inspected.returncode == 0, inspected.stderr
    assert f"1 by {public} (sha256:" in inspected.stdout
    policy = run_hangar(
        ["sign", "policy", "-p", public, "--registry", registry_http.host], home, **env
    )
    assert policy.returncode == 0, policy.stderr
    tool_pub = softhsm.public_key_pem(SESSION_TOKEN, TOOL_KEY, tmp_path / "tool.pub")
    key_data = base64.b64encode(tool_pub.read_bytes()).decode()
    assert f'"keyData": "{key_data}"' in policy.stdout
    removed = run_hangar(
        ["sign", "remove", "-f", str(list_file), "-p", public, "--tls-verify=false"], home, **env
    )
    assert removed.returncode == 0, removed.stderr
    assert sig_tag(image.digest) not in signed_tags(registry_http, repo)
