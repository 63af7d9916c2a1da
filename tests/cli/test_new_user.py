"""What a new user trips over (issue 22): hints that say what to do next, dry runs that say
what a real run would do, and warnings for values that can never match. Each runs the real
command against the real registry."""

from __future__ import annotations

import shlex
import uuid
from pathlib import Path

from tests.support.cli import (
    KEY1,
    KEY1_PASS,
    KEY1_PUB,
    closed_port,
    failed_lines,
    run_hangar,
    sig_tag,
    sign_args,
    signed_tags,
    write_list,
)
from tests.support.errors_doc import documented, log_line
from tests.support.images import push_image
from tests.support.registry import RegistryServer


def repo_name(prefix: str) -> str:
    return f"{prefix}/app-{uuid.uuid4().hex[:8]}"


def validate_args(list_file: Path, *extra: str) -> list[str]:
    return ["sign", "validate", "-f", str(list_file), "-p", str(KEY1_PUB), *extra]


def summary_hint(stderr: str) -> str:
    return log_line(stderr, "not done; their lines are in")


# --- validate: the hint fits the exit code ----------------------------------------------------


def test_validate_that_could_not_check_gives_an_access_hint_not_re_sign(
    isolated_home: Path, tmp_path: Path
) -> None:
    """Exit 3: nothing was found unsigned, so re-signing is the wrong advice."""
    unreachable = f"127.0.0.1:{closed_port()}/ns/app:v1"
    list_file = write_list(tmp_path / "list", unreachable)
    result = run_hangar(validate_args(list_file, "--tls-verify=false"), isolated_home, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    hint = summary_hint(result.stderr)
    assert "re-sign" not in hint
    assert "could not be checked, not found unsigned" in hint
    assert "hangar login REGISTRY" in hint
    assert "`hangar sign validate -f sign-failed.txt ... --tls-verify=false`" in hint
    documented("validate-could-not-check-hint", 3, hint, {})


def test_validate_that_found_unsigned_images_still_says_re_sign(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo = repo_name("newuser-unsigned")
    push_image(registry_http, repo, "v1", kind="oci-manifest")
    list_file = write_list(tmp_path / "list", f"{registry_http.host}/{repo}:v1")
    result = run_hangar(validate_args(list_file, "--tls-verify=false"), isolated_home, cwd=tmp_path)
    assert result.returncode == 1
    assert "re-sign them with `hangar sign -f sign-failed.txt -k KEY" in summary_hint(result.stderr)


def test_all_instances_retry_hint_keeps_what_it_needs_and_works(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    """validate --all-instances checks every instance, whatever --os/--arch, attestations
    included: the re-sign command it suggests must sign all of them."""
    repo = repo_name("newuser-all")
    push_image(registry_http, repo, "v1", kind="oci-index-attestations")
    list_file = write_list(tmp_path / "list", f"{registry_http.host}/{repo}:v1")
    # signed for the default platforms only: the others and the attestations are not
    assert run_hangar(sign_args(list_file, registry_http), isolated_home).returncode == 0
    check = validate_args(list_file, "--tls-verify=false", "--all-instances")
    result = run_hangar(check, isolated_home, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    command = summary_hint(result.stderr).split("`")[1]
    assert command == (
        "hangar sign -f sign-failed.txt -k KEY --os '' --arch '' --sign-attestations "
        "--tls-verify=false"
    )
    words = shlex.split(command)[1:]
    words[words.index("KEY")] = str(KEY1)
    words += ["--sigstore-passphrase-file", str(KEY1_PASS)]
    resign = run_hangar(words, isolated_home, cwd=tmp_path)
    assert resign.returncode == 0, resign.stderr
    again = run_hangar(check, isolated_home, cwd=tmp_path)
    assert again.returncode == 0, again.stderr


# --- dry runs say what the real run would ----------------------------------------------------


def test_remove_dry_run_says_would_remove(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo = repo_name("newuser-rm")
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    list_file = write_list(tmp_path / "list", f"{registry_http.host}/{repo}:v1")
    assert run_hangar(sign_args(list_file, registry_http), isolated_home).returncode == 0
    args = ["sign", "remove", "-f", str(list_file), "-p", str(KEY1_PUB), "--tls-verify=false"]
    result = run_hangar([*args, "--dry-run"], isolated_home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    line = log_line(result.stderr, "Summary:", level="[INFO]")
    assert "1 image: 1 would remove, 0 nothing to remove" in line
    assert "1 signatures would be removed (dry run: nothing was removed)" in line
    assert " removed," not in line.replace("would be removed", "")
    assert signed_tags(registry_http, repo) == {sig_tag(image.digest)}  # nothing removed
    real = run_hangar(args, isolated_home, cwd=tmp_path)
    assert "1 image: 1 removed, 0 nothing to remove" in real.stderr
    assert "1 signatures removed in" in real.stderr


def test_sign_dry_run_resolves_each_line_as_a_real_run_would(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    host = registry_http.host
    repo = repo_name("newuser-dry")
    push_image(registry_http, repo, "multi", kind="oci-index")  # 4 platforms
    push_image(registry_http, repo, "s390x", kind="oci-manifest", platforms=["linux/s390x"])
    lines = [
        f"{host}/{repo}:multi",
        f"{host}/{repo}:missing",
        f"{host}/{repo}:s390x",
        f"{host}/no/such-repo:v1",
    ]
    list_file = write_list(tmp_path / "list", *lines)
    dry = ["sign", "-f", str(list_file), "--dry-run", "--tls-verify=false"]
    result = run_hangar(dry, isolated_home, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [lines[0]]  # only what would be signed
    for number in (2, 4):
        line = log_line(result.stderr, f"{lines[number - 1]}: line {number}: image ", "not found")
        assert "check the tag or digest" in line and "{" not in line
    skipped = log_line(result.stderr, f"{lines[2]}: line 3: no matching platform", level="[INFO]")
    assert skipped.endswith("(it has linux/s390x), would be skipped")
    assert (
        "Dry run: 1 image(s) would be signed (3 digest(s)), 1 skipped for platform, "
        "2 line(s) would fail; nothing was signed or written"
    ) in result.stderr  # linux/amd64, linux/arm64 and the index
    assert signed_tags(registry_http, repo) == set()
    assert not (tmp_path / "sign-failed.txt").exists()
    # the real run agrees: the same two lines fail, the same one is skipped
    real = run_hangar(sign_args(list_file, registry_http), isolated_home, cwd=tmp_path)
    assert real.returncode == 1
    assert failed_lines(tmp_path / "sign-failed.txt") == [lines[1], lines[3]]
    assert "1 signed, 0 already signed, 1 skipped for platform, 2 failed" in real.stderr


def test_dry_run_of_a_list_with_no_matching_platform_exits_1(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo = repo_name("newuser-dry-skip")
    push_image(registry_http, repo, "v1", kind="oci-manifest", platforms=["linux/s390x"])
    list_file = write_list(tmp_path / "list", f"{registry_http.host}/{repo}:v1")
    dry = ["sign", "-f", str(list_file), "--dry-run", "--tls-verify=false"]
    result = run_hangar(dry, isolated_home, cwd=tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert "0 image(s) would be signed (0 digest(s)), 1 skipped for platform" in result.stderr


# --- values that can never match --------------------------------------------------------------


def test_an_impossible_arch_or_os_is_named_with_the_known_spellings(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo = repo_name("newuser-arch")
    push_image(registry_http, repo, "v1", kind="oci-manifest")
    list_file = write_list(tmp_path / "list", f"{registry_http.host}/{repo}:v1")
    args = sign_args(list_file, registry_http, "--arch", "amd63,arm64,foo", "--os", "linux")
    result = run_hangar(args, isolated_home, cwd=tmp_path)
    amd63 = log_line(result.stderr, "--arch amd63", level="[WARN]")
    assert "did you mean amd64?" in amd63 and "known spellings: amd64, arm64" in amd63
    foo = log_line(result.stderr, "--arch foo", level="[WARN]")
    assert "did you mean" not in foo and "known spellings" in foo
    assert "--arch arm64" not in result.stderr  # a real architecture: no warning
    documented("arch-impossible", 0, amd63, {})
    dry = ["sign", "-f", str(list_file), "--dry-run", "--os", "linx", "--tls-verify=false"]
    linx = log_line(
        run_hangar(dry, isolated_home, cwd=tmp_path).stderr, "--os linx", level="[WARN]"
    )
    assert "did you mean linux?" in linx
    documented("os-impossible", 1, linx, {})


def test_x86_64_is_not_called_impossible(isolated_home: Path, tmp_path: Path) -> None:
    list_file = write_list(tmp_path / "list", f"127.0.0.1:{closed_port()}/ns/app:v1")
    args = ["sign", "-f", str(list_file), "--dry-run", "--arch", "x86_64,arm/v7,arm64/v8"]
    result = run_hangar(args, isolated_home, cwd=tmp_path)
    assert "[WARN]" not in result.stderr, result.stderr
    assert "--arch x86_64 is read as amd64" in result.stderr


# --- commands, numbering, order ---------------------------------------------------------------


def test_a_mistyped_command_gets_a_suggestion(isolated_home: Path) -> None:
    for typed, meant, path in (
        (["sing"], "sign", "hangar"),
        (["inspet", "x"], "inspect", "hangar"),
        (["sign", "valdate"], "validate", "hangar sign"),
    ):
        result = run_hangar(typed, isolated_home)
        assert result.returncode == 2
        assert result.stderr.splitlines() == [
            f"[ERRO] No such command '{typed[-1] if typed[0] == 'sign' else typed[0]}'. "
            f"Did you mean '{meant}'? (see `{path} --help`)"
        ]
    documented("command-mistyped", 2, run_hangar(["sing"], isolated_home).stderr.strip(), {})


def test_one_numbering_and_the_failed_file_in_the_list_order(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    """Comments and blank lines do not shift [IMG:n] away from the file's line n (the number
    a line's own errors give); with 4 workers the failed file still follows the list."""
    host = registry_http.host
    repo = repo_name("newuser-order")
    push_image(registry_http, repo, "v1", kind="oci-manifest")
    good = f"{host}/{repo}:v1"
    missing = [f"{host}/{repo}:gone{n}" for n in range(6)]
    lines = ["# images", good, "", missing[0], "nginx:", *missing[1:], "// end", good]
    list_file = write_list(tmp_path / "list", *lines)
    result = run_hangar(sign_args(list_file, registry_http, "-j", "4"), isolated_home, cwd=tmp_path)
    assert result.returncode == 1
    assert log_line(result.stderr, "nginx:: line 5:").startswith("[ERRO] [IMG:5] nginx:: line 5:")
    for number, text in enumerate(lines, start=1):
        if text.startswith(f"{host}/{repo}:gone"):
            assert log_line(result.stderr, f"{text}: image").startswith(f"[ERRO] [IMG:{number}] ")
    assert failed_lines(tmp_path / "sign-failed.txt") == [missing[0], "nginx:", *missing[1:]]


def test_inspect_of_a_sig_tag_shows_no_empty_platform(
    registry_http: RegistryServer, isolated_home: Path, tmp_path: Path
) -> None:
    repo = repo_name("newuser-inspect")
    image = push_image(registry_http, repo, "v1", kind="oci-manifest")
    list_file = write_list(tmp_path / "list", f"{registry_http.host}/{repo}:v1")
    assert run_hangar(sign_args(list_file, registry_http), isolated_home).returncode == 0
    sig = f"{registry_http.host}/{repo}:{sig_tag(image.digest)}"
    result = run_hangar(["inspect", "--tls-verify=false", sig], isolated_home)
    assert result.returncode == 0, result.stderr
    platform = [line for line in result.stdout.splitlines() if line.startswith("Platform:")]
    assert platform == ["Platform:   (none: not a runnable image)"]
    plain = run_hangar(
        ["inspect", "--tls-verify=false", f"{registry_http.host}/{repo}:v1"], isolated_home
    )
    assert "Platform:   linux/amd64" in plain.stdout
