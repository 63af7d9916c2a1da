"""Help, version and completion as users of hangar v1.8 (cobra) know them.

The help of each command is compared with a checked-in layout under tests/cli/expected/; the
seed's `hangar sign --help` (expected/seed-hangar-sign.txt) must be contained in ours line for
line. After a deliberate change, HANGAR_HELP_RECORD=1 rewrites the expected files.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hangar import __version__
from tests.support.cli import HANGAR
from tests.support.errors_doc import documented, error_lines

EXPECTED = Path(__file__).parent / "expected"
COMMANDS = [[], ["sign"], ["sign", "validate"], ["inspect"], ["completion"], ["login"]]


def hangar(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HANGAR, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(["hangar", *c]))
def test_help_matches_the_checked_in_layout(command: list[str]) -> None:
    result = hangar(*command, "--help")
    assert result.returncode == 0 and result.stderr == ""
    expected = EXPECTED / ("-".join(["hangar", *command]) + ".txt")
    if os.environ.get("HANGAR_HELP_RECORD"):
        expected.write_text(result.stdout)
    assert result.stdout == expected.read_text()


def test_sign_help_holds_every_line_of_the_seeds() -> None:
    ours = hangar("sign", "--help").stdout.splitlines()
    seed = (EXPECTED / "seed-hangar-sign.txt").read_text().splitlines()
    # hangar verifies TLS unless told otherwise, and says so where the seed was silent.
    seed = [
        line + " (default true)" if line.lstrip().startswith("--tls-verify") else line
        for line in seed
    ]
    missing = [line for line in seed if line not in ours]
    assert missing == []
    # and in the seed's order: sections, then flags sorted by name
    positions = [ours.index(line) for line in seed if line]
    assert positions == sorted(positions)


def test_validate_help_speaks_of_validating() -> None:
    text = hangar("sign", "validate", "--help").stdout
    assert "validate images parallelly (1-20)" in text
    assert "file name of the validate failed image list" in text
    assert "timeout when validate each image" in text
    assert "sign images" not in text and "sign failed" not in text and "sign each" not in text


def test_bare_hangar_prints_the_help_and_succeeds() -> None:
    bare = hangar()
    assert bare.returncode == 0 and bare.stderr == ""
    assert bare.stdout == hangar("--help").stdout
    assert bare.stdout.startswith("hangar signs container images")
    assert "Available Commands:" in bare.stdout


@pytest.mark.parametrize("value", ["false", "true", "FALSE"])
def test_spaced_boolean_value_gets_a_hint(tmp_path: Path, value: str) -> None:
    result = hangar("sign", "-f", "list.txt", "--tls-verify", value)
    assert result.returncode == 2
    assert error_lines(result.stderr) == result.stderr.splitlines()
    line = result.stderr.strip()
    assert f"write --tls-verify={value.lower()}" in line
    if value == "false":
        documented("tls-verify-spaced-value", 2, line, {})


@pytest.mark.parametrize("args", [["version"], ["--version"], ["-v"]])
def test_version(args: list[str]) -> None:
    result = hangar(*args)
    assert result.returncode == 0
    assert result.stdout == f"hangar version {__version__}\n"


def test_bash_completion_completes_commands_and_flags(tmp_path: Path) -> None:
    script = hangar("completion", "bash")
    assert script.returncode == 0
    (tmp_path / "hangar.bash").write_text(script.stdout)
    probe = (
        "source hangar.bash; "
        'COMP_WORDS=(hangar si); COMP_CWORD=1; _hangar_completion hangar; echo "${COMPREPLY[@]}"; '
        "COMPREPLY=(); COMP_WORDS=(hangar sign --sigstore-p); COMP_CWORD=2; "
        '_hangar_completion hangar; echo "${COMPREPLY[@]}"'
    )
    env = {**os.environ, "PATH": f"{Path(HANGAR).parent}:{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    lines = result.stdout.splitlines()
    assert lines == ["sign", "--sigstore-passphrase-file"], result


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_completion_scripts_call_hangar_back(shell: str) -> None:
    script = hangar("completion", shell)
    assert script.returncode == 0
    assert f"_HANGAR_COMPLETE={shell}_complete" in script.stdout
    # what the script asks hangar for: the candidates for `hangar sign --sk`
    env = {
        **os.environ,
        "_HANGAR_COMPLETE": f"{shell}_complete",
        "COMP_WORDS": "hangar sign --sk",
        # zsh passes the index of the word being completed, fish the word itself
        "COMP_CWORD": "2" if shell == "zsh" else "--sk",
    }
    answer = hangar(env=env)
    assert answer.returncode == 0
    assert "--skip-login" in answer.stdout


def test_completion_of_an_unknown_shell_is_a_usage_error() -> None:
    result = hangar("completion", "powershell")
    assert result.returncode == 2
    assert error_lines(result.stderr) == result.stderr.splitlines()
    assert "bash" in result.stderr and "zsh" in result.stderr and "fish" in result.stderr
