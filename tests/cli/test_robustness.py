"""The CLI never destroys a file, never hangs, never shows a traceback.

Every test runs the installed `hangar` against a real registry (a fault proxy in front of it
where requests must hang), with real signals, pipes and devices. Device tests use a character
device made with mknod in the test's own directory (the same device numbers as /dev/null), so
that a regression cannot take the machine's /dev/null with it; one test also uses the real one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import (
    HANGAR,
    KEY1,
    KEY1_PUB,
    StderrWatch,
    check_hangar_attachment,
    failed_lines,
    hangar_env,
    run_hangar,
    sign_args,
)
from tests.support.errors_doc import documented
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.images import push_image
from tests.support.registry import RegistryServer
from tests.support.terminal import run_in_pty

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")

SIGN_HEADER = "# failed lines of hangar sign; retry them with: hangar sign -f {} ..."


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


def write_list(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def pushed(server: RegistryServer, kind: str = "oci-index") -> str:
    repo = f"robust/app-{uuid.uuid4().hex[:8]}"
    push_image(server, repo, "v1", kind=kind)
    return f"{server.host}/{repo}:v1"


def char_device(path: Path) -> Path:
    """A node with /dev/null's device numbers, in the test's own directory."""
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return path


def is_char_device(path: Path) -> bool:
    return stat.S_ISCHR(path.lstat().st_mode)


def no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


HOLD = Rule(method="GET", path_regex=r"/manifests/", action="delay", delay=60)


@pytest.fixture
def hanging(registry_http: RegistryServer) -> Iterator[FaultProxy]:
    """A proxy in front of the real registry that holds every manifest GET for a minute."""
    with FaultProxy.in_front_of(registry_http) as proxy:
        proxy.add_rule(HOLD)
        yield proxy


def hanging_list(tmp_path: Path, proxy: FaultProxy, count: int = 40) -> Path:
    return write_list(tmp_path / "list", *(f"{proxy.host}/held/app:v{i}" for i in range(count)))


def start(args: list[str], home: Path, cwd: Path, **kwargs) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [HANGAR, *args],
        cwd=cwd,
        env=hangar_env(home),
        text=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def wait_for(proxy: FaultProxy, rule: Rule, count: int, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proxy.seen(rule) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("hangar never reached the registry")


def _wait_until(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _has_open(process: subprocess.Popen[str], path: Path) -> bool:
    """Does the process hold `path` open (it reads it, its signal handlers are in place)?"""
    fds = Path(f"/proc/{process.pid}/fd")
    try:
        return any(os.readlink(fd) == str(path) for fd in fds.iterdir())
    except FileNotFoundError:  # the process is gone, or an fd closed under us
        return False


# -- 1. output paths: devices, symlinks, directories ---------------------------------------


@pytest.mark.parametrize("fails", [False, True])
def test_failed_file_on_a_device_is_written_through_never_removed(
    registry_http: RegistryServer, home: Path, tmp_path: Path, fails: bool
) -> None:
    lines = [pushed(registry_http)] + ([f"{registry_http.host}/robust/missing:v1"] * fails)
    device = char_device(tmp_path / "null")
    list_file = write_list(tmp_path / "list", *lines)
    result = run_hangar(sign_args(list_file, registry_http, "-o", str(device)), home, cwd=tmp_path)
    assert result.returncode == int(fails), result.stderr
    assert is_char_device(device)
    assert no_temp_files(tmp_path)


def test_the_real_dev_null_and_dev_full(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    ok = write_list(tmp_path / "ok", pushed(registry_http))
    result = run_hangar(sign_args(ok, registry_http, "-o", "/dev/null"), home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert is_char_device(Path("/dev/null"))
    # /dev/full refuses every write (ENOSPC): the run ends with one clear line, never hangs.
    bad = write_list(
        tmp_path / "bad", *[f"{registry_http.host}/robust/missing:v{i}" for i in range(30)]
    )
    result = run_hangar(
        sign_args(bad, registry_http, "-o", "/dev/full", "-j", "4"), home, cwd=tmp_path
    )
    assert result.returncode == 1
    line = "[ERRO] the run stopped: OSError: [Errno 28] No space left on device"
    assert line in result.stderr.splitlines()
    documented("output-device-full", 1, line, {})
    assert "Traceback" not in result.stderr
    assert is_char_device(Path("/dev/full"))


def test_failed_file_to_dev_stdout(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    missing = f"{registry_http.host}/robust/missing:v1"
    list_file = write_list(tmp_path / "list", missing, pushed(registry_http))
    args = sign_args(list_file, registry_http, "-o", "/dev/stdout", "--report", "/dev/stderr")
    result = run_hangar(args, home, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == missing + "\n"  # the failed lines, nothing else
    report = result.stderr[result.stderr.index("{\n") :]
    assert '"status": "failed"' in report and '"status": "signed"' in report
    assert Path("/dev/stdout").is_symlink() and is_char_device(Path("/dev/null"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "list"]


def test_failed_file_through_a_symlink_writes_the_target(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    missing = f"{registry_http.host}/robust/missing:v1"
    list_file = write_list(tmp_path / "list", missing)
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "failed.txt"
    link = tmp_path / "failed-link.txt"
    link.symlink_to(target)
    result = run_hangar(sign_args(list_file, registry_http, "-o", str(link)), home, cwd=tmp_path)
    assert result.returncode == 1
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert failed_lines(target) == [missing]
    # Nothing fails next time: the link stays, its target holds an empty failed list.
    write_list(list_file, pushed(registry_http))
    result = run_hangar(sign_args(list_file, registry_http, "-o", str(link)), home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    assert failed_lines(target) == []


def test_failed_file_into_a_fifo(registry_http: RegistryServer, home: Path, tmp_path: Path) -> None:
    missing = f"{registry_http.host}/robust/missing:v1"
    list_file = write_list(tmp_path / "list", missing)
    fifo = tmp_path / "failed.fifo"
    os.mkfifo(fifo)
    # No reader: refused before any work instead of blocking forever.
    result = run_hangar(sign_args(list_file, registry_http, "-o", str(fifo)), home, cwd=tmp_path)
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line == (
        f"[ERRO] cannot write {fifo}: no process is reading this FIFO "
        "(start its reader first, or pass a file path)"
    )
    documented("output-fifo-without-reader", 2, line, {str(tmp_path): "TMP"})
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        result = run_hangar(
            sign_args(list_file, registry_http, "-o", str(fifo)), home, cwd=tmp_path
        )
        assert result.returncode == 1
        assert os.read(reader, 4096).decode() == missing + "\n"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


OUTPUT_CASES = {
    "-o DIR": "output-failed-is-a-directory",
    "--report DIR": "output-report-is-a-directory",
    "-o /nonexistent/f.txt": "output-failed-in-missing-directory",
    "--report /nonexistent/r.json": "output-report-in-missing-directory",
    "--report LIST": "output-report-is-the-list",
    "-o LIST": "output-failed-is-the-list",
    "-o KEY": "output-failed-is-the-key",
    "-o DIR/r.json --report DIR/r.json": "output-report-is-the-failed-file",
}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["-o", "DIR"],
            "[ERRO] -o DIR is a directory (pass a file path, for example -o DIR/sign-failed.txt)",
        ),
        (
            ["--report", "DIR"],
            "[ERRO] --report DIR is a directory "
            "(pass a file path, for example --report DIR/report.json)",
        ),
        (
            ["-o", "/nonexistent/f.txt"],
            "[ERRO] cannot write -o /nonexistent/f.txt: directory /nonexistent does not exist "
            "(pass -o a path in a directory you can write to)",
        ),
        (
            ["--report", "/nonexistent/r.json"],
            "[ERRO] cannot write --report /nonexistent/r.json: directory /nonexistent does not "
            "exist (pass --report a path in a directory you can write to)",
        ),
        (
            ["--report", "LIST"],
            "[ERRO] --report LIST is the image list itself (pass --report another file)",
        ),
        (
            ["-o", "LIST"],
            "[ERRO] -o LIST is the image list itself: the failed lines would replace it "
            "(pass -o another file)",
        ),
        (
            ["-o", "KEY"],
            "[ERRO] -o KEY is the same file as KEY, which this command reads "
            "(pass -o another file)",
        ),
        (
            ["-o", "DIR/r.json", "--report", "DIR/r.json"],
            "[ERRO] --report DIR/r.json and -o DIR/r.json are the same file "
            "(give each its own file)",
        ),
    ],
)
def test_unusable_output_paths_are_usage_errors_before_any_work(
    home: Path, tmp_path: Path, flags: list[str], message: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    list_file = write_list(work / "list.txt", "127.0.0.1:9/never/contacted:v1")
    original = list_file.read_bytes()
    key = work / "k.key"
    key.write_bytes(KEY1.read_bytes())
    key.chmod(0o600)
    names = {"DIR": str(work), "LIST": str(list_file), "KEY": str(key)}
    args = [next((names[k] + f[len(k) :] for k in names if f.startswith(k)), f) for f in flags]
    result = run_hangar(
        ["sign", "-f", str(list_file), "-k", str(key), "--tls-verify=false", *args], home, cwd=work
    )
    expected = message
    for name, value in names.items():
        expected = expected.replace(name, value)
    assert result.returncode == 2
    assert result.stderr.strip() == expected
    documented(OUTPUT_CASES[" ".join(flags)], 2, expected, {str(work): "DIR"})
    assert list_file.read_bytes() == original
    assert sorted(p.name for p in work.iterdir()) == ["k.key", "list.txt"]


# -- 2. one command never loses the other's failed list -------------------------------------


def test_validate_leaves_the_failed_list_of_sign_alone(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    good = pushed(registry_http)
    missing = f"{registry_http.host}/robust/missing:v1"
    list_file = write_list(tmp_path / "list", good, missing)
    assert run_hangar(sign_args(list_file, registry_http), home, cwd=tmp_path).returncode == 1
    failed = tmp_path / "sign-failed.txt"
    before = failed.read_bytes()
    assert before.decode().splitlines() == [SIGN_HEADER.format("sign-failed.txt"), missing]
    # Both commands default to sign-failed.txt: validate writes beside sign's list.
    validate = ["sign", "validate", "-f", str(list_file), "-p", str(KEY1_PUB), "--tls-verify=false"]
    result = run_hangar(validate, home, cwd=tmp_path)
    assert result.returncode == 3  # the missing image could not be checked
    warning = next(line for line in result.stderr.splitlines() if "left as it is" in line)
    assert warning == (
        "[WARN] sign-failed.txt holds the failed lines of `hangar sign`: it is left as it is, "
        "and this run's failed lines go to sign-failed.validate.txt"
    )
    documented("output-failed-list-of-another-command", 1, warning, {})
    assert failed.read_bytes() == before
    assert failed_lines(tmp_path / "sign-failed.validate.txt") == [missing]
    assert "their lines are in sign-failed.validate.txt" in result.stderr
    # A later success of validate removes only its own list.
    ok_list = write_list(tmp_path / "ok", good)
    result = run_hangar([*validate[:3], str(ok_list), *validate[4:]], home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert failed.read_bytes() == before
    assert not (tmp_path / "sign-failed.validate.txt").exists()
    # Feeding validate's list to sign is a retry: read, then replaced by sign's own.
    result = run_hangar(validate, home, cwd=tmp_path)
    validated = tmp_path / "sign-failed.validate.txt"
    result = run_hangar(
        sign_args(validated, registry_http, "-o", str(validated)), home, cwd=tmp_path
    )
    assert result.returncode == 1
    assert validated.read_text().splitlines()[0].startswith("# failed lines of hangar sign;")
    assert failed_lines(validated) == [missing]
    assert failed.read_bytes() == before


def test_a_file_hangar_did_not_write_is_never_replaced(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes, not a failed list\n")
    list_file = write_list(tmp_path / "list", f"{registry_http.host}/robust/missing:v1")
    result = run_hangar(sign_args(list_file, registry_http, "-o", str(notes)), home, cwd=tmp_path)
    assert result.returncode == 2
    assert "is not a failed list written by hangar" in result.stderr
    documented("output-not-written-by-hangar", 2, result.stderr.strip(), {str(tmp_path): "TMP"})
    assert notes.read_text() == "my notes, not a failed list\n"


# -- 3, 4, 8. hangs, signals, closed pipes ---------------------------------------------------


def test_closed_pipe_ends_the_run_and_keeps_the_failed_file(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    image = pushed(registry_http, kind="oci-manifest")
    lines = [image] * 2000  # more log than a pipe buffer holds
    list_file = write_list(tmp_path / "list", *lines)
    args = " ".join(sign_args(list_file, registry_http, "-j", "4", "--report", "r.json"))
    # `2>&1 | head -2`: the log's reader goes away after two lines.
    result = subprocess.run(
        ["bash", "-c", f"{HANGAR} {args} 2>&1 | head -2; echo rc=${{PIPESTATUS[0]}} >&2"],
        cwd=tmp_path,
        env=hangar_env(home),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stderr.strip() == "rc=141", result.stdout
    assert len(result.stdout.splitlines()) == 2
    report = json.loads((tmp_path / "r.json").read_text())["results"]
    done = [r for r in report if r["status"] in ("signed", "already-signed")]
    assert len(done) < len(lines)
    assert len(failed_lines(tmp_path / "sign-failed.txt")) == len(lines) - len(done)
    assert no_temp_files(tmp_path)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_second_signal_abandons_in_flight_images_at_once(
    hanging: FaultProxy, home: Path, tmp_path: Path, signum: int, code: int
) -> None:
    list_file = hanging_list(tmp_path, hanging)
    process = start(
        [
            "sign",
            "-f",
            str(list_file),
            "-k",
            str(KEY1),
            "--sigstore-passphrase-file",
            str(KEY1.with_name("key1.passphrase")),
            "--tls-verify=false",
            "--skip-login",
            "-j",
            "4",
            "--report",
            "r.json",
        ],
        home,
        tmp_path,
    )
    watch = StderrWatch(process)
    try:
        wait_for(hanging, HOLD, 4)
        process.send_signal(signum)
        # Handled before the next is sent: two signals pending together are merged into one.
        watch.wait_for("no new images start")
        assert process.poll() is None  # the first one waits for the images in flight
        process.send_signal(signum)
        process.wait(timeout=30)  # the proxy holds them 60 s: abandoned, not waited for
        stderr = watch.close()
    finally:
        process.kill()
    assert process.returncode == code, stderr
    assert stderr.count("abandoned: interrupted") == 4
    assert "Traceback" not in stderr
    assert (
        "Summary: 40 images: 0 signed, 0 already signed, 0 skipped for platform, "
        "4 failed, 36 not started" in stderr
    )
    assert len(failed_lines(tmp_path / "sign-failed.txt")) == 40
    document = json.loads((tmp_path / "r.json").read_text())
    report = document["results"]
    assert [r["status"] for r in report].count("not-started") == 36
    assert document["summary"]["not-started"] == 36 and document["summary"]["interrupted"]
    assert no_temp_files(tmp_path)


def test_sigterm_drains_like_ctrl_c(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    image = pushed(registry_http, kind="oci-manifest")
    list_file = write_list(tmp_path / "list", *[image] * 3000)
    process = start(sign_args(list_file, registry_http, "--report", "r.json"), home, tmp_path)
    watch = StderrWatch(process)
    try:
        watch.wait_for("Signed [")  # under way: some images done, most not
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        stderr = watch.close()
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    assert "interrupted (SIGTERM): no new images start" in stderr
    assert "[INFO] Summary: 3000 images:" in stderr
    report = json.loads((tmp_path / "r.json").read_text())["results"]
    assert len(report) == 3000
    not_done = [r["image"] for r in report if r["status"] in ("failed", "not-started")]
    assert failed_lines(tmp_path / "sign-failed.txt") == not_done
    assert 0 < len(not_done) < 3000


def test_a_signal_during_the_login_check_still_writes_the_failed_file(
    hanging: FaultProxy, registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    list_file = hanging_list(tmp_path, hanging, count=2)
    # The login check (a GET of /v2/) is held too: SIGTERM lands before any image starts.
    probe = hanging.add_rule(Rule(method="GET", path_regex=r"^/v2/$", action="delay", delay=60))
    args = [*sign_args(list_file, registry_http), "--report", "r.json"]  # the proxy is http too
    process = start(args, home, tmp_path)
    try:
        wait_for(hanging, probe, 1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    assert (
        "Summary: 2 images: 0 signed, 0 already signed, 0 skipped for platform, 0 failed, "
        "2 not started" in stderr
    )
    assert len(failed_lines(tmp_path / "sign-failed.txt")) == 2
    assert [r["status"] for r in json.loads((tmp_path / "r.json").read_text())["results"]] == [
        "not-started",
        "not-started",
    ]
    assert no_temp_files(tmp_path)


def test_sigterm_before_the_run_leaves_no_file_at_all(home: Path, tmp_path: Path) -> None:
    """A list from a FIFO whose writer never finishes: hangar waits to read it; SIGTERM then
    unwinds before any output is opened."""
    fifo = tmp_path / "list.fifo"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # keeps the FIFO open for writing, writes nothing
    process = start(
        ["sign", "-f", str(fifo), "-k", str(KEY1), "--report", "r.json"], home, tmp_path
    )
    try:
        _wait_until(lambda: _has_open(process, fifo), "hangar to open the list")
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        os.close(writer)
    assert process.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == "[ERRO] terminated (SIGTERM)"
    documented("terminated-before-the-run", 143, "[ERRO] terminated (SIGTERM)", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "list.fifo"]


# -- 6. lists from a stream -----------------------------------------------------------------


@pytest.mark.parametrize("how", ["-", "/dev/stdin", "pipe"])
def test_list_from_a_stream(
    registry_http: RegistryServer, home: Path, tmp_path: Path, how: str
) -> None:
    repo = f"robust/app-{uuid.uuid4().hex[:8]}"
    pushed_image = push_image(registry_http, repo, "v1")
    image = f"{registry_http.host}/{repo}:v1"
    data = f"# a comment\n{image}\n".encode()
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    path = f"/dev/fd/{read_end}" if how == "pipe" else how
    try:
        result = subprocess.run(
            [HANGAR, *sign_args(Path(path), registry_http)],
            cwd=tmp_path,
            env=hangar_env(home),
            stdin=read_end if how != "pipe" else subprocess.DEVNULL,
            pass_fds=(read_end,),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(read_end)
    assert result.returncode == 0, result.stderr
    assert "Summary: 1 image: 1 signed" in result.stderr
    name = "standard input" if how == "-" else path
    assert f"[INFO] Signing images of {name} with 1 worker(s)" in result.stderr
    check_hangar_attachment(registry_http, repo, pushed_image.digest, image, KEY1_PUB)


# -- 7. platforms ---------------------------------------------------------------------------


def test_platform_spellings_are_normalized(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    list_file = write_list(tmp_path / "list", pushed(registry_http))
    args = sign_args(list_file, registry_http, "--os", "Linux", "--arch", "x86_64,aarch64,armhf")
    result = run_hangar(args, home, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for note in (
        "--os Linux is read as linux",
        "--arch x86_64 is read as amd64",
        "--arch aarch64 is read as arm64",
        "--arch armhf is read as arm/v7",
    ):
        assert f"[INFO] {note}, as containers/image names it" in result.stderr
    assert "(linux/amd64)" in result.stderr and "(linux/arm/v7)" in result.stderr
    assert "Summary: 1 image: 1 signed" in result.stderr


def test_nothing_matching_the_platform_is_a_failure_naming_what_there_is(
    registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    lines = [pushed(registry_http), pushed(registry_http, kind="oci-manifest"), "a b c"]
    list_file = write_list(tmp_path / "list", *lines)
    result = run_hangar(sign_args(list_file, registry_http, "--arch", "s390x"), home, cwd=tmp_path)
    assert result.returncode == 1
    documented("platform-none-matches", 1, result.stderr.splitlines()[-1], {})
    assert result.stderr.splitlines()[-1] == (
        "[ERRO] nothing was signed: no image of the list has a platform matching --os/--arch; "
        "the images have: linux/amd64, linux/arm/v7, linux/arm64, windows/amd64 "
        "(pass --os/--arch for the platforms to use)"
    )
    assert "2 skipped for platform, 0 failed, 1 mirror-format line(s) skipped" in (result.stderr)


def test_two_ctrl_c_typed_at_a_terminal(
    hanging: FaultProxy, registry_http: RegistryServer, home: Path, tmp_path: Path
) -> None:
    """With the progress bar on, as a person sees it: ^C typed twice on the terminal."""
    list_file = hanging_list(tmp_path, hanging)
    argv = [HANGAR, *sign_args(list_file, registry_http, "-j", "4", "--skip-login")]
    answers = [(b"Signing", b"\x03"), (b"(Ctrl-C again to abandon them)", b"\x03")]
    code, output = run_in_pty(argv, answers, env=hangar_env(home), cwd=tmp_path, timeout=60)
    text = ANSI.sub(b"", output).decode()
    assert code == 130, text
    assert text.count("abandoned: interrupted") == 4
    assert "4 failed, 36 not started" in text
    assert "Traceback" not in text
    assert len(failed_lines(tmp_path / "sign-failed.txt")) == 40


@pytest.mark.parametrize("debug", [False, True])
def test_a_bug_is_one_line_and_its_traceback_only_with_debug(
    home: Path, tmp_path: Path, debug: bool
) -> None:
    """A bug is simulated by a sitecustomize that breaks a function hangar calls early."""
    (tmp_path / "sitecustomize.py").write_text(
        "import hangar.manifest\n"
        "def broken(text):\n"
        "    raise RuntimeError('simulated bug')\n"
        "hangar.manifest.normalize_arch = broken\n"
    )
    list_file = write_list(tmp_path / "list", "127.0.0.1:9/never/contacted:v1")
    args = ["--debug"] if debug else []
    result = run_hangar(
        [*args, "sign", "-f", str(list_file), "-k", str(KEY1)],
        home,
        cwd=tmp_path,
        PYTHONPATH=str(tmp_path),
    )
    assert result.returncode == 1
    line = (
        "[ERRO] unexpected error: RuntimeError: simulated bug (this is a bug in hangar: run "
        "again with --debug for the traceback, and report it)"
    )
    assert line in result.stderr.splitlines()
    documented("unexpected-error", 1, line, {})
    assert ("Traceback (most recent call last)" in result.stderr) == debug
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "list", "sitecustomize.py"]
