"""The command line conventions of the seed's tool: Go bools, Go durations, global flags
anywhere, and a --help that does not pay for the heavy imports."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest

from hangar.cli._args import format_duration, normalize_argv, parse_duration, split_list
from tests.support.cli import HANGAR


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10m0s", 600),
        ("90s", 90),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("500ms", 0.5),
        ("0", 0),
        ("2m3.5s", 123.5),
        ("1h0m0s", 3600),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10", "missing unit"),
        ("abc", "invalid duration"),
        ("", "invalid duration"),
        ("10x", "invalid duration"),
        ("1h 30m", "invalid duration"),
    ],
)
def test_bad_durations(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(text)


def test_negative_duration_parses_negative() -> None:
    assert parse_duration("-1s") == -1


def test_format_duration_matches_go() -> None:
    assert format_duration(600) == "10m0s"
    assert format_duration(5400) == "1h30m0s"
    assert format_duration(1.5) == "1.5s"


def test_go_bool_spellings_and_global_flags_are_normalized() -> None:
    argv = [
        "sign",
        "--tls-verify=false",
        "-f",
        "x",
        "--debug",
        "--sign-index=1",
        "--insecure-policy",
        "--skip-login=F",
    ]
    assert normalize_argv(argv) == [
        "--debug",
        "--insecure-policy",
        "sign",
        "--no-tls-verify",
        "-f",
        "x",
        "--sign-index",
        "--no-skip-login",
    ]


def test_values_after_double_dash_are_left_alone() -> None:
    assert normalize_argv(["sign", "--", "--debug"]) == ["sign", "--", "--debug"]


def test_unknown_bool_value_is_a_usage_error() -> None:
    with pytest.raises(click.UsageError, match='invalid argument "maybe" for "--tls-verify"'):
        normalize_argv(["--tls-verify=maybe"])


def test_list_options_split_on_commas_and_repeat() -> None:
    assert split_list(("amd64,arm64", " arm/v7 ", "")) == ["amd64", "arm64", "arm/v7"]


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from hangar.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('aiohttp', 'cryptography', 'nacl', 'rich') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines()[-1] == "HEAVY="


def test_version_and_help() -> None:
    version = subprocess.run([HANGAR, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("hangar version ")
    helptext = subprocess.run([HANGAR, "--help"], capture_output=True, text=True).stdout
    for command in ("sign", "inspect", "login", "logout", "generate-sigstore-key"):
        assert command in helptext
    sign_help = subprocess.run([HANGAR, "sign", "--help"], capture_output=True, text=True).stdout
    for flag in (
        "-f, --file",
        "-k, --sigstore-key",
        "--sigstore-passphrase-file",
        "-a, --arch",
        "--os",
        "--registry",
        "--project",
        "-j, --jobs",
        "-o, --failed",
        "--timeout",
        "--tls-verify",
        "--skip-login",
        "validate",
    ):
        assert flag in sign_help, flag
    validate_help = subprocess.run(
        [HANGAR, "sign", "validate", "--help"], capture_output=True, text=True
    ).stdout
    for flag in (
        "-p, --sigstore-pubkey",
        "--exact-repository",
        "--require-tag-identity",
        "--require-index-signature",
        "--accept-repository-identity",
        "--report",
    ):
        assert flag in validate_help, flag
