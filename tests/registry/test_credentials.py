"""Credentials: the auth file chain, keys, credential helpers, and login/logout writes."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from hangar.errors import HangarError
from hangar.registry.authfiles import AuthFile, auth_file_chain, default_auth_file
from hangar.registry.credentials import Credentials, lookup_credentials
from hangar.registry.logins import remove_all_credentials, remove_credentials, store_credentials

HELPER_SCRIPT = """#!/bin/sh
# A docker credential helper for tests: logs each call, answers as $HELPER_MODE says.
action="$1"
input=$(cat)
printf '%s %s\\n' "$action" "$input" >> "$HELPER_LOG"
case "$HELPER_MODE" in
  ok) printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper-pass"}\\n' "$input" ;;
  token) printf '{"ServerURL":"%s","Username":"<token>","Secret":"refresh-token"}\\n' "$input" ;;
  empty) printf '{"ServerURL":"%s","Username":"","Secret":""}\\n' "$input" ;;
  notfound) echo "credentials not found in native keychain"; exit 1 ;;
  fail) echo "keychain is locked"; exit 1 ;;
  garbage) echo "this is not json" ;;
esac
"""


def auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def write_json(path: Path, document) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def auths_file(path: Path, entries: dict[str, str], **extra) -> Path:
    return write_json(path, {"auths": {k: {"auth": v} for k, v in entries.items()}, **extra})


@pytest.fixture
def env(isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """HOME, XDG_RUNTIME_DIR and a PATH with docker-credential-test, all under tmp_path."""
    runtime = tmp_path / "run"
    runtime.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-test"
    helper.write_text(HELPER_SCRIPT)
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("HELPER_LOG", str(tmp_path / "helper.log"))
    monkeypatch.setenv("HELPER_MODE", "ok")

    class Env:
        home = isolated_home
        run = runtime
        log = tmp_path / "helper.log"

        @property
        def runtime_auth(self) -> Path:
            return runtime / "containers" / "auth.json"

        @property
        def config_auth(self) -> Path:
            return isolated_home / ".config" / "containers" / "auth.json"

        @property
        def docker_config(self) -> Path:
            return isolated_home / ".docker" / "config.json"

        @property
        def dockercfg(self) -> Path:
            return isolated_home / ".dockercfg"

        def calls(self) -> list[str]:
            return self.log.read_text().splitlines() if self.log.exists() else []

    return Env()


def creds(username, password, token=None) -> Credentials:
    return Credentials(username, password, token)


# --- the chain ----------------------------------------------------------------------------------


def test_chain_order(env):
    assert auth_file_chain() == [
        AuthFile(env.runtime_auth),
        AuthFile(env.config_auth),
        AuthFile(env.docker_config),
        AuthFile(env.dockercfg, legacy=True),
    ]


def test_chain_without_xdg_runtime_dir_uses_run_containers(env, monkeypatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert auth_file_chain()[0] == AuthFile(Path(f"/run/containers/{os.getuid()}/auth.json"))


def test_chain_skips_a_missing_xdg_runtime_dir(env, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "gone"))
    assert auth_file_chain()[0] == AuthFile(env.config_auth)


def test_chain_honours_xdg_config_home_and_docker_config(env, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "dockerdir"))
    assert auth_file_chain()[1:3] == [
        AuthFile(tmp_path / "xdg" / "containers" / "auth.json"),
        AuthFile(tmp_path / "dockerdir" / "config.json"),
    ]


def test_registry_auth_file_is_used_alone(env, monkeypatch, tmp_path):
    auths_file(env.config_auth, {"reg.io": auth("config", "c")})
    alone = auths_file(tmp_path / "alone.json", {"other.io": auth("alone", "a")})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(alone))
    assert auth_file_chain() == [AuthFile(alone)]
    assert lookup_credentials("reg.io") is None
    assert lookup_credentials("other.io") == creds("alone", "a")


def test_explicit_authfile_is_used_alone(env, monkeypatch, tmp_path):
    auths_file(env.config_auth, {"reg.io": auth("config", "c")})
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "env.json"))
    given = auths_file(tmp_path / "given.json", {"other.io": auth("given", "g")})
    assert lookup_credentials("reg.io", authfile=str(given)) is None
    assert lookup_credentials("other.io", authfile=str(given)) == creds("given", "g")


def test_explicit_authfile_must_exist(env, tmp_path):
    with pytest.raises(HangarError, match="does not exist"):
        lookup_credentials("reg.io", authfile=str(tmp_path / "missing.json"))


def test_missing_registry_auth_file_means_no_credentials(env, monkeypatch, tmp_path):
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "missing.json"))
    assert lookup_credentials("reg.io") is None


def test_each_file_in_order(env):
    env.dockercfg.write_text(json.dumps({"https://reg.io/v1/": {"auth": auth("legacy", "5")}}))
    assert lookup_credentials("reg.io") == creds("legacy", "5")
    auths_file(env.docker_config, {"reg.io": auth("docker", "4")})
    assert lookup_credentials("reg.io") == creds("docker", "4")
    auths_file(env.config_auth, {"reg.io": auth("config", "3")})
    assert lookup_credentials("reg.io") == creds("config", "3")
    auths_file(env.runtime_auth, {"reg.io": auth("runtime", "2")})
    found = lookup_credentials("reg.io")
    assert found == creds("runtime", "2")
    assert found.source == str(env.runtime_auth)


def test_files_without_the_registry_are_passed_over(env):
    auths_file(env.runtime_auth, {"other.io": auth("runtime", "r")})
    auths_file(env.docker_config, {"reg.io": auth("docker", "d")})
    assert lookup_credentials("reg.io") == creds("docker", "d")
    assert lookup_credentials("other.io") == creds("runtime", "r")
    assert lookup_credentials("nothing.io") is None


def test_no_files_at_all(env):
    assert lookup_credentials("reg.io", "ns/app") is None


# --- keys -------------------------------------------------------------------------------------


def test_most_specific_key_wins(env):
    auths_file(
        env.config_auth,
        {
            "reg.io": auth("host", "h"),
            "reg.io/team": auth("team", "t"),
            "reg.io/team/app": auth("app", "a"),
        },
    )
    assert lookup_credentials("reg.io", "team/app") == creds("app", "a")
    assert lookup_credentials("reg.io", "team/other") == creds("team", "t")
    assert lookup_credentials("reg.io", "team/sub/app") == creds("team", "t")
    assert lookup_credentials("reg.io", "else/app") == creds("host", "h")
    assert lookup_credentials("reg.io") == creds("host", "h")


def test_legacy_keys_are_reduced_to_their_host(env):
    # c/image normalizeAuthFileKey(legacy=true): ~/.dockercfg keys are hosts, a path is dropped.
    env.dockercfg.write_text(json.dumps({"reg.io/team": {"auth": auth("team", "t")}}))
    assert lookup_credentials("reg.io", "else/app") == creds("team", "t")


def test_url_keys_are_normalized(env):
    auths_file(env.docker_config, {"https://reg.io/v2/": auth("url", "u")})
    assert lookup_credentials("reg.io", "ns/app") == creds("url", "u")
    auths_file(env.docker_config, {"http://other.io:5000": auth("http", "h")})
    assert lookup_credentials("other.io:5000") == creds("http", "h")


def test_exact_key_beats_normalized_key(env):
    auths_file(
        env.docker_config, {"https://reg.io/v1/": auth("url", "u"), "reg.io": auth("x", "y")}
    )
    assert lookup_credentials("reg.io") == creds("x", "y")


@pytest.mark.parametrize("stored", ["docker.io", "index.docker.io", "registry-1.docker.io",
                                    "https://index.docker.io/v1/"])  # fmt: skip
@pytest.mark.parametrize("asked", ["docker.io", "index.docker.io", "registry-1.docker.io"])
def test_docker_hub_aliases(env, stored, asked):
    auths_file(env.docker_config, {stored: auth("hub", "h")})
    assert lookup_credentials(asked, "library/nginx") == creds("hub", "h")


def test_docker_hub_namespaced_key(env):
    auths_file(env.config_auth, {"docker.io/myorg": auth("org", "o"), "docker.io": auth("a", "b")})
    assert lookup_credentials("registry-1.docker.io", "myorg/app") == creds("org", "o")


def test_registry_with_scheme_is_looked_up_by_host(env):
    auths_file(env.config_auth, {"reg.io:5000": auth("u", "p")})
    assert lookup_credentials("https://reg.io:5000") == creds("u", "p")


# --- entries ------------------------------------------------------------------------------------


def test_password_with_colons_and_nuls(env):
    auths_file(env.config_auth, {"reg.io": auth("user", "pa:ss:\x00")})
    assert lookup_credentials("reg.io") == creds("user", "pa:ss:")


def test_identity_token(env):
    write_json(
        env.docker_config,
        {"auths": {"reg.io": {"auth": auth("user", ""), "identitytoken": "id-token"}}},
    )
    found = lookup_credentials("reg.io")
    assert found == Credentials("user", "", "id-token")


def test_entry_without_colon_is_skipped_for_the_next_file(env, capsys):
    auths_file(env.runtime_auth, {"reg.io": base64.b64encode(b"nocolon").decode()})
    auths_file(env.config_auth, {"reg.io": auth("next", "n")})
    assert lookup_credentials("reg.io") == creds("next", "n")
    err = capsys.readouterr().err
    assert "has no" in err and "nocolon" not in err  # never print what might be a secret


def test_empty_entry_is_a_helper_marker(env, capsys):
    write_json(env.docker_config, {"auths": {"reg.io": {}}})
    assert lookup_credentials("reg.io") is None
    assert "[WARN]" not in capsys.readouterr().err


def test_empty_file_means_no_credentials(env):
    env.config_auth.parent.mkdir(parents=True)
    env.config_auth.write_text("")
    assert lookup_credentials("reg.io") is None


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "top level is not a JSON object"),
        ('{"auths": []}', '"auths" is not an object'),
        ('{"auths": {"reg.io": "x"}}', 'entry "reg.io" is not an object'),
        ('{"auths": {"reg.io": {"auth": 5}}}', "must be strings"),
        ('{"auths": {"reg.io": {"auth": "%%%"}}}', "not base64"),
        ('{"credHelpers": {"reg.io": 1}}', '"credHelpers" is not an object of strings'),
    ],
)
def test_malformed_file_names_the_file(env, content, reason):
    env.config_auth.parent.mkdir(parents=True)
    env.config_auth.write_text(content)
    with pytest.raises(HangarError) as info:
        lookup_credentials("reg.io")
    assert str(env.config_auth) in info.value.message
    assert reason in info.value.message
    assert info.value.hint


def test_field_names_match_case_insensitively_like_go(env):
    write_json(env.config_auth, {"Auths": {"reg.io": {"Auth": auth("u", "p")}}})
    assert lookup_credentials("reg.io") == creds("u", "p")


def test_unreadable_path_is_an_error(env):
    env.config_auth.mkdir(parents=True)
    with pytest.raises(HangarError, match="is a directory"):
        lookup_credentials("reg.io")


def test_repr_masks_secrets():
    found = Credentials("user", "s3cret-pass", "s3cret-token", source="/x/auth.json")
    for text in (repr(found), str(found), f"{found}", f"{[found]}"):
        assert "s3cret" not in text
        assert "user" in text
    assert "password=None" in repr(Credentials("u", None, None))


# --- credential helpers --------------------------------------------------------------------------


def test_cred_helper_is_asked_first_with_the_host(env):
    write_json(
        env.config_auth,
        {
            "credHelpers": {"reg.io:5000": "test"},
            "auths": {"reg.io:5000": {"auth": auth("a", "b")}},
        },
    )
    found = lookup_credentials("reg.io:5000", "ns/app")
    assert found == creds("helper-user", "helper-pass")
    assert found.source == f"docker-credential-test ({env.config_auth})"
    assert env.calls() == ["get reg.io:5000"]


def test_cred_helper_token_username_means_identity_token(env, monkeypatch):
    monkeypatch.setenv("HELPER_MODE", "token")
    write_json(env.docker_config, {"credHelpers": {"reg.io": "test"}})
    assert lookup_credentials("reg.io") == Credentials(None, None, "refresh-token")


@pytest.mark.parametrize("mode", ["notfound", "empty"])
def test_cred_helper_without_credentials_falls_through_to_the_next_file(env, monkeypatch, mode):
    monkeypatch.setenv("HELPER_MODE", mode)
    write_json(env.config_auth, {"credHelpers": {"reg.io": "test"}})
    auths_file(env.docker_config, {"reg.io": auth("docker", "d")})
    assert lookup_credentials("reg.io") == creds("docker", "d")
    assert env.calls() == ["get reg.io"]


def test_cred_helper_not_found_and_no_other_file(env, monkeypatch):
    monkeypatch.setenv("HELPER_MODE", "notfound")
    write_json(env.config_auth, {"credHelpers": {"reg.io": "test"}})
    assert lookup_credentials("reg.io") is None


def test_cred_helper_failure_is_an_error(env, monkeypatch):
    monkeypatch.setenv("HELPER_MODE", "fail")
    write_json(env.config_auth, {"credHelpers": {"reg.io": "test"}})
    auths_file(env.docker_config, {"reg.io": auth("docker", "d")})
    with pytest.raises(HangarError) as info:
        lookup_credentials("reg.io")
    assert info.value.message == (
        "credential helper docker-credential-test failed to get for reg.io: keychain is locked"
    )


def test_cred_helper_garbage_answer(env, monkeypatch):
    monkeypatch.setenv("HELPER_MODE", "garbage")
    write_json(env.config_auth, {"credHelpers": {"reg.io": "test"}})
    with pytest.raises(HangarError, match="returned an answer that is not"):
        lookup_credentials("reg.io")


def test_missing_cred_helper_is_an_error(env):
    write_json(env.config_auth, {"credHelpers": {"reg.io": "absent"}})
    with pytest.raises(HangarError) as info:
        lookup_credentials("reg.io")
    assert "docker-credential-absent" in info.value.message
    assert "not installed or not on PATH" in info.value.message
    assert str(env.config_auth) in info.value.message


def test_cred_helper_for_another_registry_is_not_run(env):
    write_json(env.config_auth, {"credHelpers": {"other.io": "absent"}})
    auths_file(env.docker_config, {"reg.io": auth("d", "d")})
    assert lookup_credentials("reg.io") == creds("d", "d")


def test_cred_helper_for_docker_hub_under_another_spelling(env):
    write_json(env.docker_config, {"credHelpers": {"index.docker.io": "test"}})
    assert lookup_credentials("docker.io", "library/nginx") == creds("helper-user", "helper-pass")
    assert env.calls() == ["get docker.io"]


# --- store / remove -----------------------------------------------------------------------------


def test_default_auth_file(env, monkeypatch, tmp_path):
    assert default_auth_file() == env.runtime_auth
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_auth_file() == env.config_auth
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert default_auth_file() == tmp_path / "xdg" / "containers" / "auth.json"
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "explicit.json"))
    assert default_auth_file() == tmp_path / "explicit.json"


def test_store_creates_the_file_private(env):
    path = store_credentials("reg.io:5000", "user", "pa:ss")
    assert path == env.runtime_auth
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {
        "auths": {"reg.io:5000": {"auth": auth("user", "pa:ss")}}
    }
    assert lookup_credentials("reg.io:5000", "ns/app") == creds("user", "pa:ss")
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_store_keeps_everything_else(env):
    original = {
        "auths": {
            "other.io": {"auth": auth("o", "o"), "identitytoken": "keep"},
            "reg.io": {"auth": auth("old", "old"), "identitytoken": "dropped"},
        },
        "credHelpers": {"helped.io": "test"},
        "psFormat": "table {{.ID}}",
        "proxies": {"default": {"httpProxy": "http://proxy:3128"}},
    }
    path = write_json(env.config_auth, original)
    path.chmod(0o644)
    assert store_credentials("reg.io", "new", "secret", authfile=str(path)) == path
    document = json.loads(path.read_text())
    assert document["auths"]["reg.io"] == {"auth": auth("new", "secret")}
    assert document["auths"]["other.io"] == original["auths"]["other.io"]
    for key in ("credHelpers", "psFormat", "proxies"):
        assert document[key] == original[key]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_store_normalizes_the_key(env):
    store_credentials("https://index.docker.io/", "u", "p")
    store_credentials("http://reg.io:5000/", "u", "p")
    store_credentials("reg.io/team", "t", "t")
    keys = set(json.loads(env.runtime_auth.read_text())["auths"])
    assert keys == {"docker.io", "reg.io:5000", "reg.io/team"}


@pytest.mark.parametrize("registry", ["", "reg.io/ns:tag", "reg.io@sha256:x", "a b"])
def test_store_refuses_bad_keys(env, registry):
    with pytest.raises(HangarError, match="is not a registry"):
        store_credentials(registry, "u", "p")


def test_store_refuses_colon_in_username(env):
    with pytest.raises(HangarError, match="must not contain ':'"):
        store_credentials("reg.io", "a:b", "p")
    assert not env.runtime_auth.exists()


def test_store_into_a_malformed_file_fails_and_keeps_it(env):
    env.runtime_auth.parent.mkdir(parents=True)
    env.runtime_auth.write_text("{broken")
    with pytest.raises(HangarError, match="malformed"):
        store_credentials("reg.io", "u", "p")
    assert env.runtime_auth.read_text() == "{broken"


def test_store_through_the_cred_helper(env):
    write_json(env.runtime_auth, {"credHelpers": {"reg.io": "test"}})
    store_credentials("reg.io", "user", "pw")
    [call] = env.calls()
    action, payload = call.split(" ", 1)
    assert action == "store"
    assert json.loads(payload) == {"ServerURL": "reg.io", "Username": "user", "Secret": "pw"}
    assert "auths" not in json.loads(env.runtime_auth.read_text())


def test_store_is_atomic_for_readers(env):
    """Rewrites go through a temporary file and a rename: a reader sees a whole file always."""
    path = store_credentials("reg.io", "user", "p" * 5000)
    # Held open, the first file's inode cannot be freed and handed to a later file.
    original = path.open()
    seen: list[str] = []
    errors: list[Exception] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                text = path.read_text()
                json.loads(text)  # raises if a reader ever sees half a file
            except Exception as exc:  # reported by the test, not lost in the thread
                errors.append(exc)
                return
            seen.append(text[:1])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for number in range(200):
            store_credentials(f"reg{number}.io", "user", "p" * 5000)
    finally:
        stop.set()
        reader.join(timeout=30)
    assert errors == []
    assert seen
    assert path.stat().st_ino != os.fstat(original.fileno()).st_ino  # replaced, not rewritten
    original.close()
    assert len(json.loads(path.read_text())["auths"]) == 201
    assert list(path.parent.iterdir()) == [path]


def test_remove_credentials(env):
    path = auths_file(
        env.runtime_auth,
        {
            "reg.io": auth("a", "a"),
            "https://reg.io/v1/": auth("b", "b"),
            "reg.io/team": auth("c", "c"),
            "other.io": auth("d", "d"),
        },
        credHelpers={"x.io": "test"},
    )
    assert remove_credentials("reg.io") is True
    document = json.loads(path.read_text())
    assert set(document["auths"]) == {"reg.io/team", "other.io"}
    assert document["credHelpers"] == {"x.io": "test"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert remove_credentials("reg.io") is False
    assert remove_credentials("reg.io/team") is True
    assert set(json.loads(path.read_text())["auths"]) == {"other.io"}


def test_remove_docker_hub_under_every_spelling(env):
    path = auths_file(
        env.runtime_auth,
        {"docker.io": "x", "https://index.docker.io/v1/": "y", "registry-1.docker.io": "z"},
    )
    assert remove_credentials("index.docker.io") is True
    assert json.loads(path.read_text())["auths"] == {}


def test_remove_without_a_file(env):
    assert remove_credentials("reg.io") is False
    assert not env.runtime_auth.exists()
    assert remove_all_credentials() == []
    assert not env.runtime_auth.exists()


def test_remove_through_the_cred_helper(env, monkeypatch):
    write_json(env.runtime_auth, {"credHelpers": {"reg.io": "test"}})
    assert remove_credentials("reg.io") is True
    assert env.calls() == ["erase reg.io"]
    monkeypatch.setenv("HELPER_MODE", "notfound")
    assert remove_credentials("reg.io") is False


def test_remove_uses_the_given_authfile_only(env, tmp_path):
    auths_file(env.runtime_auth, {"reg.io": auth("a", "a")})
    given = auths_file(tmp_path / "given.json", {"reg.io": auth("b", "b")})
    assert remove_credentials("reg.io", authfile=str(given)) is True
    assert json.loads(given.read_text())["auths"] == {}
    assert lookup_credentials("reg.io") == creds("a", "a")


def test_remove_all_credentials(env):
    path = auths_file(
        env.runtime_auth,
        {"reg.io": auth("a", "a"), "other.io": auth("b", "b")},
        credHelpers={"helped.io": "test"},
        psFormat="keep",
    )
    assert remove_all_credentials() == ["reg.io", "other.io", "helped.io"]
    document = json.loads(path.read_text())
    assert document == {"auths": {}, "credHelpers": {"helped.io": "test"}, "psFormat": "keep"}
    assert env.calls() == ["erase helped.io"]
    assert lookup_credentials("reg.io") is None


def test_remove_all_reports_a_failing_helper_after_clearing_the_file(env, monkeypatch):
    monkeypatch.setenv("HELPER_MODE", "fail")
    path = auths_file(env.runtime_auth, {"reg.io": auth("a", "a")}, credHelpers={"h.io": "test"})
    with pytest.raises(HangarError, match="keychain is locked"):
        remove_all_credentials()
    assert json.loads(path.read_text())["auths"] == {}
