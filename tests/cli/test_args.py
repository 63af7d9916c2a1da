"""The command line conventions of the seed's tool: Go bools, Go durations, global flags
anywhere, and a --help that does not pay for the heavy imports."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys

import click
import pytest

from hangar.api.config import split_list
from hangar.cli._args import normalize_argv, parse_duration
from hangar.runner.progress import Summary
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


# -- the checked config a list command builds from its flags ---------------------------------


def _flags(command: click.Command, *argv: str) -> dict:
    """The flag dict click hands to `command`'s callback for `argv`."""
    ctx = command.make_context(command.name or "", list(argv))
    return dict(ctx.params)


def test_validate_config_is_frozen_and_typed() -> None:
    from hangar.cli._config import validate_config
    from hangar.cli.validate import validate

    flags = _flags(validate, "-f", "list", "-p", "a.pub", "-p", "b.pub", "-a", "x86_64,arm64")
    config = validate_config(flags)
    assert config.pubkeys == ("a.pub", "b.pub") and config.timeout == 600.0
    assert config.arches == ["amd64", "arm64"] and config.oses == ["linux"]
    assert config.inputs() == ["a.pub", "b.pub"] and not config.uses_policy
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.file = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "-f/--file is required"),
        (("-f", "l"), "-p/--sigstore-pubkey is required"),
        (("-f", "l", "--policy", "p", "--system-policy"), "exclude each other"),
        (("-f", "l", "--policy", "p", "-p", "k"), "-p/--sigstore-pubkey is not used with"),
        (("-f", "l", "--registries-d", "d"), "--registries-d needs --policy"),
    ],
)
def test_validate_usage_errors_come_from_the_config(argv: tuple[str, ...], message: str) -> None:
    from hangar.cli._config import validate_config
    from hangar.cli.validate import validate

    with pytest.raises(click.UsageError, match=message):
        validate_config(_flags(validate, *argv))


def test_sign_config_needs_no_key_for_a_dry_run() -> None:
    from hangar.cli._config import sign_config
    from hangar.cli.sign import sign

    with pytest.raises(click.UsageError, match="-k/--sigstore-key is required"):
        sign_config(_flags(sign, "-f", "l"))
    config = sign_config(_flags(sign, "-f", "l", "--dry-run", "-j", "50"))
    assert config.key is None and config.jobs == 20 and config.jobs_given == 50


def test_remove_config_says_what_to_remove() -> None:
    from hangar.cli._config import remove_config
    from hangar.cli.remove import remove

    with pytest.raises(click.UsageError, match="say what to remove"):
        remove_config(_flags(remove, "-f", "l"))
    with pytest.raises(click.UsageError, match="--all removes every signature"):
        remove_config(_flags(remove, "-f", "l", "--all", "-p", "k"))
    flags = _flags(remove, "-f", "l", "--unverified", "--keep-pubkey", "k")
    config = remove_config(flags)
    assert config.inputs() == ["k"] and config.unverified and not config.everything


# -- exit codes (docs/errors.md) -------------------------------------------------------------


def _summary(**counts: int) -> Summary:
    summary = Summary()
    for status, count in counts.items():
        summary.counts[status.replace("_", "-")] = count
    return summary


@pytest.mark.parametrize(
    ("counts", "unchecked", "code"),
    [
        ({"passed": 2}, 0, 0),
        ({"passed": 1, "failed": 1}, None, 1),  # sign, sign remove: any failed line
        ({"passed": 1, "failed": 2}, 2, 3),  # validate: every failed line unchecked
        ({"passed": 1, "failed": 2}, 1, 1),  # validate: one was not accepted
        ({"skipped": 2}, 0, 1),  # nothing matched --os/--arch
    ],
)
def test_exit_code(counts: dict[str, int], unchecked: int | None, code: int) -> None:
    from hangar.api.run import exit_code

    assert exit_code(_summary(**counts), unchecked=unchecked) == code


def test_exit_code_of_a_stopped_or_interrupted_run_is_not_3() -> None:
    from hangar.api.run import exit_code

    fatal = _summary(failed=1)
    fatal.fatal = "cannot write output"
    assert exit_code(fatal, unchecked=1) == 1
    interrupted = _summary(failed=1, not_started=3)
    interrupted.interrupted_by = signal.SIGINT
    assert exit_code(interrupted, unchecked=1) == 130


def test_hangar_error_diagnostics() -> None:
    from hangar.errors import HangarError, UnexpectedError, UsageProblem

    error = HangarError("cannot read x", hint="check y")
    assert error.diagnostics() == str(error) == "cannot read x (check y)"
    assert HangarError("plain").diagnostics() == "plain" and error.exit_code == 1
    assert UsageProblem("bad -o").exit_code == 2
    bug = UnexpectedError(KeyError("k"))
    assert bug.diagnostics() == (
        "unexpected error: KeyError: 'k' (this is a bug in hangar: run again with --debug for "
        "the traceback, and report it)"
    )
