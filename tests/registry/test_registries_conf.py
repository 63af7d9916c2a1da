"""registries.conf `credential-helpers`: which files, in which order, as containers/image."""

from __future__ import annotations

import re
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


# --- [[registry]]: insecure and blocked, as sysregistriesv2 reads and matches them ---------


def parse(text: str) -> registries_conf.ConfFile:
    return registries_conf.parse_registries_conf(text, "TEST.conf")


@pytest.mark.parametrize(
    ("name", "prefix", "matched"),
    [
        ("example.com", "example.com", 11),
        ("example.com/ns/app", "example.com", 11),
        ("example.com/ns/app", "example.com/ns", 14),
        ("example.com/nsx/app", "example.com/ns", -1),  # a path component, not a string prefix
        ("example.com:5000/app", "example.com", 11),  # c/image's documented quirk, kept
        ("example.community/app", "example.com", -1),
        ("a.example.com/app", "*.example.com", 13),
        ("a.b.example.com", "*.example.com", 15),
        ("example.com/app", "*.example.com", -1),  # the wildcard needs a subdomain
        ("evil.com/a.example.com", "*.example.com", -1),  # only the host may match
        ("a.example.com.evil/x", "*.example.com", -1),
    ],
)
def test_prefixes_match_as_containers_image_matches_them(
    name: str, prefix: str, matched: int
) -> None:
    assert registries_conf.match_prefix(name, prefix) == matched


def test_the_longest_prefix_wins_and_location_is_the_default_prefix() -> None:
    conf = registries_conf.RegistriesConf(
        registries=parse(
            """
[[registry]]
location = "example.com"
insecure = true

[[registry]]
prefix = "example.com/private"
location = "mirror.example.com/private"
blocked = true
"""
        ).registries
    )
    assert conf.insecure("example.com")
    assert not conf.insecure("other.example.com")
    conf.check_allowed("example.com", "public/app")
    with pytest.raises(registries_conf.BlockedError) as caught:
        conf.check_allowed("example.com", "private/app")
    assert str(caught.value) == (
        "registry example.com/private is blocked in TEST.conf (blocked = true), so hangar does "
        "not contact it for example.com/private/app (remove `blocked = true` from that "
        "[[registry]] entry if hangar may use this registry; podman and skopeo refuse it too)"
    )


def test_the_v1_lists_are_read_too() -> None:
    entries = parse(
        """
[registries.search]
registries = ["docker.io"]
[registries.insecure]
registries = ["a.example:5000", "b.example"]
[registries.block]
registries = ["b.example"]
"""
    ).registries
    assert {(e.prefix, e.insecure, e.blocked) for e in entries} == {
        ("a.example:5000", True, False),
        ("b.example", True, True),
    }


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('[[registry]]\nlocation = "x"\ninsecure = "yes"\n', "insecure must be true or false"),
        ('[[registry]]\nlocation = "x"\nblocked = 1\n', "blocked must be true or false"),
        ('[[registry]]\nlocation = "http://x"\n', "URI schemes are not supported"),
        ("[[registry]]\ninsecure = true\n", "needs a location or a prefix"),
        ('registry = "x"\n', "[[registry]] must be a list of tables"),
        (
            '[[registry]]\nlocation = "x"\n[[registry]]\nlocation = "x"\ninsecure = true\n',
            "defined more than once",
        ),
        (
            '[registries.insecure]\nregistries = ["a"]\n[[registry]]\nlocation = "b"\n',
            "mixing the v1",
        ),
        ('[registries.block]\nregistries = "a"\n', "must be a list of names"),
    ],
)
def test_entries_podman_would_refuse_are_refused(text: str, why: str) -> None:
    with pytest.raises(registries_conf.RegistriesConfError, match=re.escape(why)):
        parse(text)


def test_a_drop_in_replaces_the_entry_of_the_same_prefix_and_keeps_the_others(
    user_dir: Path,
) -> None:
    registries_conf.SYSTEM_FILE.write_text(
        '[[registry]]\nlocation = "a.example"\ninsecure = true\n'
        '[[registry]]\nlocation = "b.example"\nblocked = true\n'
    )
    drop_in = registries_conf.SYSTEM_DROP_INS / "50-a.conf"
    drop_in.write_text('[[registry]]\nlocation = "a.example"\nblocked = true\n')
    conf = registries_conf.load_registries_conf()
    a = conf.find("a.example/app")
    assert a is not None and (a.insecure, a.blocked, a.source) == (False, True, str(drop_in))
    b = conf.find("b.example")
    assert b is not None and b.blocked and b.source == str(registries_conf.SYSTEM_FILE)


def test_containers_registries_conf_names_the_main_file(
    user_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (user_dir / "registries.conf").write_text('[[registry]]\nlocation = "u.example"\n')
    explicit = tmp_path / "explicit.conf"
    explicit.write_text('[[registry]]\nlocation = "e.example"\ninsecure = true\n')
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(explicit))
    conf = registries_conf.load_registries_conf()
    assert conf.insecure("e.example") and conf.find("u.example") is None
