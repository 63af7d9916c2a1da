"""Run a command on a real pseudo-terminal and answer its prompts (no-echo passphrases,
login prompts, the progress bar): what a person at a terminal sees."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import time
from pathlib import Path

_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(output: bytes) -> bytes:
    """What a terminal shows as text: colours ([ERRO] is red) and cursor moves removed."""
    return _ANSI.sub(b"", output)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "COSIGN_PASSWORD"}
    env.update(extra)
    return env


def run_in_pty(
    argv: list[str],
    answers: list[tuple[bytes, bytes]],
    *,
    env: dict[str, str],
    cwd: Path,
    timeout: float = 60.0,
) -> tuple[int, bytes]:
    """Run argv with a new pty as its controlling terminal and stdin/stdout/stderr. Each time
    the output shows the next expected prompt, type its answer. Returns (exit code, output)."""
    pid, master = pty.fork()
    if pid == 0:  # child: exec at once, never return into pytest
        try:
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    output = b""
    seen = 0
    pending = list(answers)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if pending and pending[0][0] in output[seen:]:
                prompt, answer = pending.pop(0)
                seen = output.index(prompt, seen) + len(prompt)
                os.write(master, answer)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"timed out; output so far: {output!r}")
            ready, _, _ = select.select([master], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(master)
        _, status = os.waitpid(pid, 0)
    assert not pending, f"prompts never shown: {pending!r}; output: {output!r}"
    return os.waitstatus_to_exitcode(status), output
