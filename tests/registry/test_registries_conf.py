"""registries.conf `credential-helpers`: which files, in which order, as containers/image."""

from __future__ import annotations

from pathlib import Path

import pytest

from hangar.errors import HangarError
from hangar.registry import registries_conf
from hangar.registry.registries_conf import credential_helpers


@pytest.fixture
def user_dir(isolated_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("CONTAINERS_REGISTRIES_CONF", raising=False)
    system = tmp_path / "etc"
    monkeypatch.setattr(registries_conf, "SYSTEM_FILE", system / "registries.conf")
    monkeypatch.setattr(registries_conf, "SYSTEM_DROP_INS", system / "registries.conf.d")
    (system / "registries.conf.d").mkdir(parents=True)
    directory = isolated_home / ".config" / "containers"
    (directory / "registries.conf.d").mkdir(parents=True)
    return directory


def test_default_is_the_auth_files(user_dir: Path) -> None:
    assert credential_helpers() == (["containers-auth.json"], "the default")


def test_system_file_then_drop_ins_in_name_order_last_wins(user_dir: Path) -> None:
    registries_conf.SYSTEM_FILE.write_text('credential-helpers = ["sys"]\n')
    assert credential_helpers()[0] == ["sys"]
    drop_ins = registries_conf.SYSTEM_DROP_INS
    (drop_ins / "10-a.conf").write_text('credential-helpers = ["a"]\n')
    (drop_ins / "20-b.conf").write_text('credential-helpers = ["b", "containers-auth.json"]\n')
    (drop_ins / "30-empty.conf").write_text("credential-helpers = []\n")  # changes nothing
    (drop_ins / "99-ignored.txt").write_text('credential-helpers = ["no"]\n')
    assert credential_helpers() == (["b", "containers-auth.json"], str(drop_ins / "20-b.conf"))
    (user_dir / "registries.conf.d" / "00-user.conf").write_text('credential-helpers = ["u"]\n')
    assert credential_helpers()[0] == ["u"]  # the user's drop-ins come after the system's


def test_user_file_replaces_system_file_and_drop_ins(user_dir: Path) -> None:
    registries_conf.SYSTEM_FILE.write_text('credential-helpers = ["sys"]\n')
    (registries_conf.SYSTEM_DROP_INS / "a.conf").write_text('credential-helpers = ["sysdrop"]\n')
    (user_dir / "registries.conf").write_text('unqualified-search-registries = ["docker.io"]\n')
    assert credential_helpers()[0] == ["containers-auth.json"]


def test_explicit_file_must_exist_and_parse(
    user_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(tmp_path / "missing.conf"))
    with pytest.raises(HangarError, match="CONTAINERS_REGISTRIES_CONF names"):
        credential_helpers()
    bad = tmp_path / "bad.conf"
    bad.write_text("credential-helpers = secretservice\n")
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(bad))
    with pytest.raises(HangarError, match="not valid TOML"):
        credential_helpers()
    bad.write_text("credential-helpers = [1]\n")
    with pytest.raises(HangarError, match="must be a list of helper names"):
        credential_helpers()
