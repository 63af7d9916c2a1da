"""The commands around token keys, on a real SoftHSM2: `pkcs11 list-tokens`, `pkcs11 list-keys`
(its URIs work as they are), `public-key` (the same key pkcs11-tool reads out), and
`generate-sigstore-key --pkcs11` (a non-extractable pair in the token that signs images on a
real registry, checked with the public key pkcs11-tool reads out)."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from tests.support.cli import (
    KEY1,
    KEY1_PASS,
    KEY1_PUB,
    check_hangar_attachment,
    run_hangar,
    validate_args,
    write_list,
)
from tests.support.errors_doc import documented, error_lines
from tests.support.hsm import MODULE, SESSION_TOKEN, TOOL_KEY, TOOL_KEY_ID, SoftHsm
from tests.support.images import push_image
from tests.support.registry import RegistryServer


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


def test_list_tokens_names_the_token_with_its_serial_and_slot(softhsm: SoftHsm, home: Path) -> None:
    result = run_hangar(
        ["pkcs11", "list-tokens", "--module-path", MODULE], home, **softhsm.env_for_hangar()
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"token={SESSION_TOKEN}\tserial=")
    assert "\tslot-id=" in line and line.endswith("SoftHSM project SoftHSM v2 (login required)")
    serial = line.split("serial=", 1)[1].split("\t", 1)[0]
    assert serial in softhsm.tool(SESSION_TOKEN, "--list-token-slots", pin=None)


def test_list_keys_prints_uris_that_work_as_they_are(
    softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    pin = softhsm.pin_file()
    result = run_hangar(
        [
            "pkcs11",
            "list-keys",
            "--module-path",
            MODULE,
            "--token",
            SESSION_TOKEN,
            "--pin-source",
            f"file:{pin}",
        ],
        home,
        **softhsm.env_for_hangar(),
    )
    assert result.returncode == 0, result.stderr
    wanted = (
        f"pkcs11:token={SESSION_TOKEN};object={TOOL_KEY};id=%{TOOL_KEY_ID}"
        f"?module-path={MODULE}\t# EC"
    )
    assert wanted in result.stdout.splitlines()
    assert "pin" not in result.stdout
    uri = wanted.split("\t", 1)[0]
    printed = run_hangar(["public-key", "-k", uri], home, **softhsm.env_for_hangar())
    assert printed.returncode == 0, printed.stderr
    from_tool = softhsm.public_key_pem(SESSION_TOKEN, TOOL_KEY, tmp_path / "tool.pub")
    assert printed.stdout == from_tool.read_text()


@pytest.mark.parametrize("selector", ["object", "id", "serial", "slot-id"])
def test_public_key_finds_the_token_and_key_by_each_uri_attribute(
    softhsm: SoftHsm, home: Path, tmp_path: Path, selector: str
) -> None:
    tokens = run_hangar(
        ["pkcs11", "list-tokens", "--module-path", MODULE], home, **softhsm.env_for_hangar()
    ).stdout
    fields = dict(part.split("=", 1) for part in tokens.split("\t")[:3])
    uri = {
        "object": f"pkcs11:token={SESSION_TOKEN};object={TOOL_KEY}",
        "id": f"pkcs11:token={SESSION_TOKEN};id=%{TOOL_KEY_ID}",
        "serial": f"pkcs11:serial={fields['serial']};object={TOOL_KEY}",
        "slot-id": f"pkcs11:slot-id={fields['slot-id']};id=%{TOOL_KEY_ID}",
    }[selector]
    outfile = tmp_path / "out.pub"
    result = run_hangar(
        ["public-key", "-k", uri, "--outfile", str(outfile)],
        home,
        COSIGN_PKCS11_MODULE_PATH=MODULE,
        **softhsm.env_for_hangar(),
    )
    assert result.returncode == 0, result.stderr
    from_tool = softhsm.public_key_pem(SESSION_TOKEN, TOOL_KEY, tmp_path / "tool.pub")
    assert outfile.read_bytes() == from_tool.read_bytes()
    assert stat.S_IMODE(outfile.stat().st_mode) == 0o644


def test_public_key_of_a_key_file_is_its_pub(home: Path) -> None:
    result = run_hangar(
        ["public-key", "-k", str(KEY1), "--sigstore-passphrase-file", str(KEY1_PASS)], home
    )
    assert result.returncode == 0, result.stderr
    from cryptography.hazmat.primitives import serialization

    ours = serialization.load_pem_public_key(result.stdout.encode())
    theirs = serialization.load_pem_public_key(KEY1_PUB.read_bytes())
    assert ours.public_numbers() == theirs.public_numbers()  # type: ignore[union-attr]


def test_generate_in_the_token_writes_only_the_pub_and_the_key_signs_on_a_registry(
    registry_http: RegistryServer, fresh_softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    hsm = fresh_softhsm
    hsm.init_token("release")
    pin = hsm.pin_file()
    uri = hsm.uri("release", "made-by-hangar", pin_file=pin)
    prefix = tmp_path / "release"
    made = run_hangar(
        ["generate-sigstore-key", "--pkcs11", uri, "--prefix", str(prefix)],
        home,
        **hsm.env_for_hangar(),
    )
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in tmp_path.glob("release*")) == ["release.pub"]
    listing = hsm.objects("release")
    private = listing.split("Private Key Object; EC", 1)[1].split("Object;", 1)[0]
    assert "label:      made-by-hangar" in private
    assert "never extractable" in private and "always sensitive" in private
    assert "sign" in private.split("Usage:", 1)[1].splitlines()[0]
    # the .pub hangar wrote is the key pkcs11-tool reads out of the token
    from_tool = hsm.public_key_pem("release", "made-by-hangar", tmp_path / "tool.pub")
    assert (tmp_path / "release.pub").read_bytes() == from_tool.read_bytes()
    # a second one under the same label is refused: the URI must keep naming one key
    again = run_hangar(
        ["generate-sigstore-key", "--pkcs11", uri, "--prefix", str(tmp_path / "again")],
        home,
        **hsm.env_for_hangar(),
    )
    assert (
        again.returncode == 1 and "already holds a key with object=made-by-hangar" in again.stderr
    )

    repo = f"hsm/made-{uuid.uuid4().hex[:8]}"
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    ref = f"{registry_http.host}/{repo}:v1"
    list_file = write_list(tmp_path / "list", ref)
    signed = run_hangar(
        ["sign", "-f", str(list_file), "-k", uri, "--tls-verify=false"],
        home,
        **hsm.env_for_hangar(),
    )
    assert signed.returncode == 0, signed.stderr
    check_hangar_attachment(registry_http, repo, image.digest, ref, from_tool)
    checked = run_hangar(
        validate_args(list_file, registry_http, keys=(tmp_path / "release.pub",)), home
    )
    assert checked.returncode == 0 and f"PASS: [{ref}]" in checked.stderr, checked.stderr


def test_generate_in_the_token_needs_a_label(
    fresh_softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    hsm = fresh_softhsm
    hsm.init_token("nolabel")
    uri = hsm.uri("nolabel", pin_file=hsm.pin_file())
    result = run_hangar(
        ["generate-sigstore-key", "--pkcs11", uri, "--prefix", str(tmp_path / "k")],
        home,
        **hsm.env_for_hangar(),
    )
    assert result.returncode == 1
    assert "no object= to name the new key" in result.stderr
    assert not (tmp_path / "k.pub").exists()


def test_labels_with_spaces_and_separators_round_trip_through_list_keys(
    fresh_softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    hsm = fresh_softhsm
    hsm.init_token("Team Token")
    hsm.keygen("Team Token", "release key;2026?", "a1b2")
    pin = hsm.pin_file()
    listed = run_hangar(
        [
            "pkcs11",
            "list-keys",
            "--module-path",
            MODULE,
            "--token",
            "Team Token",
            "--pin-source",
            f"file:{pin}",
        ],
        home,
        **hsm.env_for_hangar(),
    )
    assert listed.returncode == 0, listed.stderr
    (line,) = listed.stdout.splitlines()
    uri = line.split("\t", 1)[0]
    assert uri == (
        f"pkcs11:token=Team%20Token;object=release%20key%3B2026%3F;id=%a1%b2?module-path={MODULE}"
    )
    shown = run_hangar(["public-key", "-k", uri], home, **hsm.env_for_hangar())
    from_tool = hsm.public_key_pem("Team Token", "release key;2026?", tmp_path / "tool.pub")
    assert shown.returncode == 0 and shown.stdout == from_tool.read_text(), shown.stderr


def test_a_private_key_without_its_public_object_is_named_and_refused(
    fresh_softhsm: SoftHsm, home: Path, tmp_path: Path
) -> None:
    hsm = fresh_softhsm
    hsm.init_token("halves")
    hsm.keygen("halves", "lonely", "0b")
    hsm.tool("halves", "--delete-object", "--type", "pubkey", "--label", "lonely")
    pin = hsm.pin_file()
    listed = run_hangar(
        [
            "pkcs11",
            "list-keys",
            "--module-path",
            MODULE,
            "--token",
            "halves",
            "--pin-source",
            f"file:{pin}",
        ],
        home,
        **hsm.env_for_hangar(),
    )
    assert listed.stdout.rstrip().endswith("# EC, no public key object"), listed.stdout
    list_file = write_list(tmp_path / "list", "127.0.0.1:1/never/contacted:v1")
    signed = run_hangar(
        ["sign", "-f", str(list_file), "-k", hsm.uri("halves", "lonely", pin_file=pin)],
        home,
        **hsm.env_for_hangar(),
    )
    assert signed.returncode == 1 and "127.0.0.1:1" not in signed.stderr
    (line,) = error_lines(signed.stderr)
    assert "key 'lonely' has no public key object beside it" in line
    serial = line.split("(serial ", 1)[1].split(",", 1)[0]
    slot = line.split("slot-id ", 1)[1].split(")", 1)[0]
    documented("pkcs11-no-public-key-object", 1, line, {serial: "SERIAL", slot: "N"})
