"""Bad input to `hangar sign` and `hangar sign validate`, run as the real command.

Exit codes: 2 for a usage error (a flag missing, a value that does not parse: click's
convention; a file a flag names that does not exist or cannot be read), 1 for everything found
at run time, 130 for Ctrl-C. Three kinds of failure:
- usage errors: one `[ERRO]` line naming the flag and pointing at `--help`; nothing is read;
- whole-run errors (the list file, the key, the passphrase): one `[ERRO]` line naming the
  file and what to do, before any network traffic; there is no failed file; exit 2 when the
  file is missing or unreadable, 1 when what it holds is wrong;
- per-line errors (a bad reference, a missing image, a registry that refuses or cannot be
  reached): `[ERRO] [IMG:n] LINE: message (hint)`, the line goes to the failed file and the
  other lines proceed.

Each observed message is checked against its row in docs/errors.md (`documented`), so the
table there stays what hangar prints. After a deliberate change of a message, run these tests
with HANGAR_ERRORS_DOC_RECORD=FILE: the rows are appended to FILE instead of checked, ready to
paste into the table.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hangar.sigstore.encrypted_key import encrypt_private_key
from tests.support.cli import (
    HANGAR,
    KEY1,
    KEY1_PASS,
    KEY1_PUB,
    closed_port,
    failed_lines,
    hangar_env,
    run_hangar,
    sig_tag,
    sign_args,
    signed_tags,
    write_list,
)
from tests.support.errors_doc import documented, error_lines, log_line
from tests.support.images import push_image
from tests.support.paths import VECTORS
from tests.support.registry import RegistryServer, write_auth_json

FAILED_NAME = "sign-failed.txt"  # the default --failed, relative to the working directory


# --- running -----------------------------------------------------------------------------------


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    failed: list[str] | None  # the failed file's lines; None when there is none


def run(args: list[str], home: Path, cwd: Path, **env: str) -> Run:
    """Run hangar in `cwd`; collect and remove the default failed file it left there."""
    result = run_hangar(args, home, cwd=cwd, **env)
    assert "Traceback" not in result.stderr, result.stderr
    failed_path = cwd / FAILED_NAME
    failed = None
    if failed_path.exists():
        failed = failed_lines(failed_path)
        failed_path.unlink()
    return Run(result.returncode, result.stdout, result.stderr, failed)


_libc = ctypes.CDLL(None, use_errno=True)  # loaded here: a preexec_fn must not load libraries
_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


def _drop_file_override() -> None:
    """Root reads a mode-000 file anyway: without these two capabilities it cannot."""
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if _libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_without_root_reads(args: list[str], home: Path, cwd: Path) -> Run:
    """run_hangar, in a child that cannot read past file permissions even as root."""
    result = subprocess.run(
        [HANGAR, *args],
        env=hangar_env(home),
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        preexec_fn=_drop_file_override if os.geteuid() == 0 else None,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return Run(result.returncode, result.stdout, result.stderr, None)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def home(isolated_home: Path) -> Path:
    return isolated_home


@pytest.fixture
def subs(tmp_path: Path) -> dict[str, str]:
    """Substitutions for `documented`; tests add their registries and repositories."""
    return {str(tmp_path): "TMP", str(VECTORS): "VECTORS"}


@pytest.fixture
def good(registry_http: RegistryServer, subs: dict[str, str]) -> str:
    """A pushed image on the plain-HTTP registry: the line that must still succeed."""
    repository = f"good/app-{uuid.uuid4().hex[:8]}"
    push_image(registry_http, repository, "v1", kind="oci-manifest")
    subs[registry_http.host] = "HTTP_REGISTRY"
    subs[repository] = "good/app"
    return f"{registry_http.host}/{repository}:v1"


def secret_file(path: Path, data: bytes) -> Path:
    """A key or passphrase file as it should be kept (0600: no permission warning)."""
    path.write_bytes(data)
    path.chmod(0o600)
    return path


def validate_args(list_file: Path, *extra: str, pubkey: Path = KEY1_PUB) -> list[str]:
    return ["sign", "validate", "-f", str(list_file), "-p", str(pubkey), *extra]


# --- usage errors: exit 2 ----------------------------------------------------------------------

USAGE_CASES = [
    ("usage-jobs-not-a-number", ["--jobs", "abc"], "not a valid integer"),
    ("usage-timeout-without-unit", ["--timeout", "10"], "missing unit"),
    ("usage-timeout-negative", ["--timeout", "-1s"], "must be positive"),
    ("usage-timeout-zero", ["--timeout", "0s"], "must be positive"),
    ("usage-timeout-not-a-duration", ["--timeout", "soon"], "invalid duration"),
    ("usage-bool-not-true-or-false", ["--tls-verify=maybe"], "use true or false"),
    ("usage-unknown-flag", ["--sigstore-keys", "x"], "No such option"),
]


@pytest.mark.parametrize(("case", "extra", "needle"), USAGE_CASES, ids=[c[0] for c in USAGE_CASES])
def test_usage_errors_are_one_line_and_exit_2(
    home: Path, tmp_path: Path, subs: dict[str, str], case: str, extra: list[str], needle: str
) -> None:
    list_file = write_list(tmp_path / "list", "127.0.0.1:1/ns/app:v1")
    result = run(["sign", "-f", str(list_file), "-k", str(KEY1), *extra], home, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("[ERRO]"), result.stderr
    assert needle in lines[0] and lines[0].endswith("--help`)")
    assert result.failed is None and result.stdout == ""
    documented(case, 2, lines[0], subs)


@pytest.mark.parametrize(
    ("case", "args", "needle"),
    [
        ("usage-no-list", ["sign", "-k", "KEY"], "-f/--file is required"),
        ("usage-no-key", ["sign", "-f", "LIST"], "-k/--sigstore-key is required"),
        ("usage-no-public-key", ["sign", "validate", "-f", "LIST"], "-p/--sigstore-pubkey"),
        ("usage-flag-without-value", ["sign", "-f", "LIST", "-k"], "requires an argument"),
        (
            "usage-authfile-missing",
            ["sign", "-f", "LIST", "-k", "KEY", "--authfile", "AUTHFILE"],
            "does not exist",
        ),
        (
            "usage-authfile-missing-validate",
            ["sign", "validate", "-f", "LIST", "-p", "PUB", "--authfile", "AUTHFILE"],
            "does not exist",
        ),
    ],
)
def test_missing_flags_and_bad_paths_are_usage_errors(
    home: Path, tmp_path: Path, subs: dict[str, str], case: str, args: list[str], needle: str
) -> None:
    list_file = write_list(tmp_path / "list", "127.0.0.1:1/ns/app:v1")
    named = {
        "KEY": str(KEY1),
        "PUB": str(KEY1_PUB),
        "LIST": str(list_file),
        "AUTHFILE": str(tmp_path / "auth.json"),
    }
    result = run([named.get(arg, arg) for arg in args], home, tmp_path)
    assert result.returncode == 2
    assert error_lines(result.stderr) == result.stderr.splitlines()
    line = log_line(result.stderr, needle, "--help`)")
    documented(case, 2, line, subs)


@pytest.mark.parametrize(("jobs", "used"), [("0", 1), ("21", 20), ("32", 20), ("-3", 1)])
def test_jobs_out_of_range_warns_and_clamps(
    registry_http: RegistryServer,
    home: Path,
    tmp_path: Path,
    subs: dict[str, str],
    good: str,
    jobs: str,
    used: int,
) -> None:
    list_file = write_list(tmp_path / "list", good)
    result = run(sign_args(list_file, registry_http, "--jobs", jobs), home, tmp_path)
    assert result.returncode == 0, result.stderr
    warning = log_line(result.stderr, f"--jobs {jobs} is outside 1-20", level="[WARN]")
    assert warning.endswith(f"using {used} worker(s)")
    assert f"with {used} worker(s)" in result.stderr
    documented(f"jobs-out-of-range-{jobs}", 0, warning, subs)


# --- the list file: whole-run errors, exit 2 (missing, unreadable) or 1 (its content) ----------

# A file that is not there or cannot be read is a usage error, like a missing flag.
USAGE_FILE_CASES = {
    "list-missing",
    "list-directory",
    "list-unreadable",
    "key-missing",
    "key-directory",
    "passphrase-file-missing",
    "passphrase-file-directory",
    "passphrase-file-unreadable",
    "public-key-missing",
}


def expected_code(case: str) -> int:
    return 2 if case in USAGE_FILE_CASES else 1


LIST_FILE_CASES: list[tuple[str, Callable[[Path], Path], str]] = [
    ("list-missing", lambda d: d / "nope.txt", "does not exist"),
    ("list-empty", lambda d: write_bytes(d / "list", b""), "the file is empty"),
    ("list-only-comments", lambda d: write_bytes(d / "list", b"# a\n\n// b\n"), "only blank"),
    ("list-directory", lambda d: d, "is a directory"),
    ("list-binary", lambda d: write_bytes(d / "list", b"\x7fELF\x02\x01\x00\x00"), "NUL"),
    ("list-not-utf8", lambda d: write_bytes(d / "list", b"nginx\n\xff\xfe\n"), "not UTF-8"),
    ("list-only-mirror-lines", lambda d: write_bytes(d / "list", b"a b v1\n"), "mirror list"),
]


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("case", "make", "needle"), LIST_FILE_CASES, ids=[c[0] for c in LIST_FILE_CASES]
)
def test_list_file_problems_stop_the_run(
    home: Path,
    tmp_path: Path,
    subs: dict[str, str],
    case: str,
    make: Callable[[Path], Path],
    needle: str,
) -> None:
    directory = tmp_path / "lists"
    directory.mkdir()
    list_file = make(directory)
    for args in (
        ["sign", "-f", str(list_file), "-k", str(KEY1)],
        validate_args(list_file),
    ):
        result = run(args, home, tmp_path)
        assert result.returncode == expected_code(case)
        errors = error_lines(result.stderr)
        assert len(errors) == 1 and needle in errors[0] and str(list_file) in errors[0]
        assert "(" in errors[0], "no hint"
        assert result.failed is None
    documented(case, expected_code(case), errors[0], subs)


def test_unreadable_list_and_passphrase_files(
    home: Path, tmp_path: Path, subs: dict[str, str]
) -> None:
    """Mode 000 files; as root the command runs without the capabilities that bypass that."""
    directory = Path(tempfile.mkdtemp(prefix="hangar-perm-"))
    subs[str(directory)] = "DIR"
    list_file = write_list(directory / "list", "127.0.0.1:1/ns/app:v1")
    passphrase = secret_file(directory / "passphrase", KEY1_PASS.read_bytes())
    key = secret_file(directory / "key", KEY1.read_bytes())
    try:
        list_file.chmod(0o000)
        args = ["sign", "-f", str(list_file), "-k", str(key)]
        result = run_without_root_reads(args, home, tmp_path)
        assert result.returncode == 2
        line = log_line(result.stderr, f"cannot read image list file {list_file}")
        assert "permission denied" in line
        documented("list-unreadable", 2, line, subs)
        list_file.chmod(0o600)
        passphrase.chmod(0o000)
        result = run_without_root_reads(
            [*args, "--sigstore-passphrase-file", str(passphrase)], home, tmp_path
        )
        assert result.returncode == 2
        line = log_line(result.stderr, f"passphrase file {passphrase}", "Permission denied")
        documented("passphrase-file-unreadable", 2, line, subs)
    finally:
        for path in (list_file, passphrase, key):
            path.unlink(missing_ok=True)
        directory.rmdir()


# --- bad lines: each fails alone ---------------------------------------------------------------


@dataclass(frozen=True)
class LineCase:
    case: str
    line: str
    needle: str  # in the line's [ERRO] message


def test_bad_lines_fail_alone_and_land_in_the_failed_file(
    registry_http: RegistryServer, home: Path, tmp_path: Path, subs: dict[str, str], good: str
) -> None:
    host = registry_http.host
    repository = good.removeprefix(f"{host}/").removesuffix(":v1")
    cases = [
        LineCase("line-uppercase-repository", f"{host}/Team/App:v1", "must be lowercase"),
        LineCase("line-white-space", f"{good} latest", "white space inside the line"),
        LineCase("line-digest-too-short", "nginx@sha256:abc", "it has 3 characters"),
        LineCase("line-digest-too-long", "nginx@sha256:" + "a" * 65, "it has 65 characters"),
        LineCase("line-bad-characters", "nginx!:v1", "not a valid repository path component"),
        LineCase("line-empty-tag", "nginx:", "the tag after ':' is empty"),
        LineCase("image-tag-not-found", f"{host}/{repository}:nope", "not found"),
        LineCase("image-repository-not-found", f"{host}/no/such-repo:v1", "not found"),
        LineCase("image-digest-not-found", f"{host}/{repository}@sha256:{'0' * 64}", "not found"),
    ]
    long_line = "x" * 70_000
    mirror_line = f"{good} {host}/mirror/app v1"
    lines = [good, *(c.line for c in cases), long_line, mirror_line, good, cases[-1].line]
    list_file = write_list(tmp_path / "list", *lines)
    expected_failed = [c.line for c in cases] + [
        f"# line {len(cases) + 2}: line is longer than 65536 bytes (not copied)",
        cases[-1].line,
    ]
    signed = run(sign_args(list_file, registry_http), home, tmp_path)
    validated = run([*validate_args(list_file), "--tls-verify=false"], home, tmp_path)
    for result, done in ((signed, "Already signed ["), (validated, "PASS: [")):
        assert result.returncode == 1
        assert result.failed == expected_failed
        assert result.stderr.count(done) >= 1  # the repeated good line: idempotent
    mirror = "1 mirror-format line(s) skipped"
    assert f"1 signed, 1 already signed, 0 skipped for platform, 11 failed, {mirror}" in (
        signed.stderr
    )
    assert f"2 passed, 0 skipped for platform, 11 failed, {mirror}" in validated.stderr
    assert signed_tags(registry_http, repository) == {sig_tag(_digest_of(signed.stderr))}
    for case in cases:
        line = log_line(signed.stderr, f" {case.line}: ", case.needle)
        if case.case.startswith("image-"):
            assert line.count(host) >= 2  # the line, and the registry in the message
        assert log_line(validated.stderr, f" {case.line}: ", case.needle)
        documented(case.case, 1, line, subs)
    long_error = log_line(signed.stderr, "line is longer than 65536 bytes")
    documented("line-too-long", 1, long_error, subs)
    warning = log_line(signed.stderr, "mirror list format", level="[WARN]")
    documented("line-mirror-format", 0, warning, subs)


def _digest_of(stderr: str) -> str:
    match = re.search(r"Signed \[[^@\]]+@(sha256:[0-9a-f]{64})\]", stderr)
    assert match, stderr
    return match.group(1)


# --- keys and passphrases: whole-run errors, before any network --------------------------------


def _key_files(directory: Path) -> dict[str, Path]:
    """Broken or unsuitable key files, each 0600 so only the error under test is printed."""
    pem = KEY1.read_bytes()
    body_start = pem.index(b"\n") + 1
    # secp256k1: a curve cosign and containers/image do not verify
    other_curve = ec.generate_private_key(ec.SECP256K1())
    pkcs8 = other_curve.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    unencrypted = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_other_curve = other_curve.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    contents = {
        "garbage.key": b"this is not a key\n",
        "empty.key": b"",
        "truncated.key": pem[:200],
        "corrupt.key": pem[:body_start] + b"!!!!" + pem[body_start + 4 :],
        "unencrypted.key": unencrypted,
        "secp256k1.key": encrypt_private_key(pkcs8, KEY1_PASS.read_bytes().strip()),
        "secp256k1.pub": public_other_curve,
        "empty.pub": b"",
        "empty.passphrase": b"",
        "blank.passphrase": b" \n",
        "wrong.passphrase": b"not the passphrase\n",
    }
    return {name: secret_file(directory / name, data) for name, data in contents.items()}


KEY_CASES = [
    # (case, what is given, needle)
    ("key-public-given-to-sign", ["-k", "VECTOR:key1.pub"], "this is a public key"),
    ("key-missing", ["-k", "KEYS:missing.key"], "the file does not exist"),
    ("key-directory", ["-k", "KEYS:"], "is a directory"),
    ("key-empty", ["-k", "KEYS:empty.key"], "the file is empty"),
    ("key-not-pem", ["-k", "KEYS:garbage.key"], "not a PEM file"),
    ("key-truncated", ["-k", "KEYS:truncated.key"], "truncated"),
    ("key-corrupt", ["-k", "KEYS:corrupt.key"], "the file is damaged"),
    ("key-unencrypted", ["-k", "KEYS:unencrypted.key"], "cosign import-key-pair"),
    ("key-unsupported-curve", ["-k", "KEYS:secp256k1.key"], "unsupported ECDSA curve secp256k1"),
    ("passphrase-empty", ["--sigstore-passphrase-file", "KEYS:empty.passphrase"], "is empty"),
    ("passphrase-blank", ["--sigstore-passphrase-file", "KEYS:blank.passphrase"], "white space"),
    ("passphrase-wrong", ["--sigstore-passphrase-file", "KEYS:wrong.passphrase"], "wrong"),
    ("passphrase-file-missing", ["--sigstore-passphrase-file", "KEYS:nope"], "does not exist"),
    ("passphrase-file-directory", ["--sigstore-passphrase-file", "KEYS:"], "is a directory"),
]


def _resolve(value: str, keys: Path) -> str:
    if value.startswith("VECTOR:"):
        return str(KEY1.parent / value.removeprefix("VECTOR:"))
    if value.startswith("KEYS:"):
        return str(keys / value.removeprefix("KEYS:"))
    return value


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    directory.mkdir()
    _key_files(directory)
    return directory


@pytest.fixture
def unreached_list(tmp_path: Path) -> Path:
    """A valid list on a port nobody listens on: key errors must come before any request."""
    return write_list(tmp_path / "list", f"127.0.0.1:{closed_port()}/ns/app:v1")


def test_key_and_passphrase_problems_stop_the_run(
    home: Path, tmp_path: Path, subs: dict[str, str], key_dir: Path, unreached_list: Path
) -> None:
    for case, given, needle in KEY_CASES:
        args = {"-k": str(KEY1), "--sigstore-passphrase-file": str(KEY1_PASS)}
        args[given[0]] = _resolve(given[1], key_dir)
        flat = [item for pair in args.items() for item in pair]
        result = run(["sign", "-f", str(unreached_list), *flat], home, tmp_path)
        assert result.returncode == expected_code(case), case
        errors = error_lines(result.stderr)
        assert len(errors) == 1 and needle in errors[0], (case, result.stderr)
        assert args[given[0]] in errors[0], case
        assert "Signing images" not in result.stderr and result.failed is None, case
        if case == "key-public-given-to-sign":  # the mistake, not a permissions lecture
            assert result.stderr.splitlines() == errors, result.stderr
            assert "-k takes the private key" in errors[0]
        documented(case, expected_code(case), errors[0], subs)


def test_no_passphrase_source(
    home: Path, tmp_path: Path, subs: dict[str, str], unreached_list: Path
) -> None:
    key = secret_file(tmp_path / "key", KEY1.read_bytes())
    result = run(["sign", "-f", str(unreached_list), "-k", str(key)], home, tmp_path)
    assert result.returncode == 1
    line = log_line(result.stderr, "no passphrase for private key", "stdin is not a terminal")
    assert "--sigstore-passphrase-file FILE or set COSIGN_PASSWORD" in line
    documented("passphrase-none", 1, line, subs)
    empty = run(
        ["sign", "-f", str(unreached_list), "-k", str(key)], home, tmp_path, COSIGN_PASSWORD=""
    )
    assert empty.returncode == 1
    line = log_line(empty.stderr, "wrong passphrase (read from $COSIGN_PASSWORD)")
    documented("passphrase-env-empty", 1, line, subs)


def test_malformed_auth_file_stops_sign(
    home: Path, tmp_path: Path, subs: dict[str, str], unreached_list: Path
) -> None:
    """Read by the login check before any image: every line would fail on it anyway."""
    auth_file = secret_file(tmp_path / "auth.json", b"{not json")
    args = ["sign", "-f", str(unreached_list), "-k", str(KEY1), "--authfile", str(auth_file)]
    result = run([*args, "--sigstore-passphrase-file", str(KEY1_PASS)], home, tmp_path)
    assert result.returncode == 1 and result.failed is None
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and f"credentials file {auth_file} is malformed" in errors[0]
    documented("authfile-malformed", 1, errors[0], subs)


PUBLIC_KEY_CASES = [
    ("public-key-is-the-private-key", "VECTOR:key1.private", "this is a private key"),
    ("public-key-missing", "KEYS:missing.pub", "the file does not exist"),
    ("public-key-empty", "KEYS:empty.pub", "the file is empty"),
    ("public-key-not-pem", "KEYS:garbage.key", "not a PEM file"),
    ("public-key-unsupported-curve", "KEYS:secp256k1.pub", "unsupported ECDSA curve"),
]


def test_public_key_problems_stop_validate(
    home: Path, tmp_path: Path, subs: dict[str, str], key_dir: Path, unreached_list: Path
) -> None:
    for case, given, needle in PUBLIC_KEY_CASES:
        path = _resolve(given, key_dir)
        result = run(validate_args(unreached_list, pubkey=Path(path)), home, tmp_path)
        assert result.returncode == expected_code(case), case
        errors = error_lines(result.stderr)
        assert len(errors) == 1 and needle in errors[0] and path in errors[0], result.stderr
        assert "Validating images" not in result.stderr and result.failed is None
        documented(case, expected_code(case), errors[0], subs)


# --- registries that fail: per-line errors -----------------------------------------------------


# A line the registry refused or never answered: `sign` failed it (1); `sign validate` could
# not check it (3: no image was found not accepted).
COULD_NOT_CHECK = {"sign": 1, "sign-skip-login": 1, "validate": 3}


def _check_one_failed(result: Run, failing: str, *, ok: str, code: int = 1) -> str:
    """The failing line alone is in the failed file, the other one succeeded; its error line."""
    assert result.returncode == code, result.stderr
    assert result.failed == [failing], result.stderr
    assert ok in result.stderr, result.stderr
    return log_line(result.stderr, f" {failing}: ")


def test_unreachable_registry(
    registry_http: RegistryServer, home: Path, tmp_path: Path, subs: dict[str, str], good: str
) -> None:
    port = closed_port()
    subs[f"127.0.0.1:{port}"] = "127.0.0.1:CLOSED"
    failing = f"127.0.0.1:{port}/ns/app:v1"
    list_file = write_list(tmp_path / "list", failing, good)
    runs = {
        "sign": run(sign_args(list_file, registry_http), home, tmp_path),
        "sign-skip-login": run(sign_args(list_file, registry_http, "--skip-login"), home, tmp_path),
        "validate": run([*validate_args(list_file), "--tls-verify=false"], home, tmp_path),
    }
    for name, result in runs.items():
        ok = "PASS: [" if name == "validate" else "igned ["
        code = COULD_NOT_CHECK[name]
        line = _check_one_failed(result, failing, ok=ok, code=code)
        assert f"cannot reach registry 127.0.0.1:{port}: connection refused" in line
        documented(f"registry-unreachable-{name}", code, line, subs)


def test_tls_errors(
    registry_https: RegistryServer,
    registry_http: RegistryServer,
    make_registry: Callable[..., RegistryServer],
    home: Path,
    tmp_path: Path,
    subs: dict[str, str],
) -> None:
    """Verification on: an untrusted certificate and a plain-HTTP registry fail their lines;
    a registry whose CA is in certs.d still gets signed."""
    trusted = make_registry("https")
    trusted.install_ca(home)
    names = {}
    for label, server in (("untrusted", registry_https), ("trusted", trusted)):
        repository = f"tls/app-{uuid.uuid4().hex[:8]}"
        push_image(server, repository, "v1", kind="oci-manifest")
        names[label] = f"{server.host}/{repository}:v1"
        subs[server.host] = f"{label.upper()}_REGISTRY"
        subs[repository] = "tls/app"
    plain_repository = f"plain/app-{uuid.uuid4().hex[:8]}"
    push_image(registry_http, plain_repository, "v1", kind="oci-manifest")
    names["plain"] = f"{registry_http.host}/{plain_repository}:v1"
    subs[registry_http.host] = "HTTP_REGISTRY"
    subs[plain_repository] = "plain/app"
    list_file = write_list(tmp_path / "list", names["untrusted"], names["plain"], names["trusted"])
    signing = ["sign", "-f", str(list_file), "-k", str(KEY1)]
    runs = {
        "sign": run([*signing, "--sigstore-passphrase-file", str(KEY1_PASS)], home, tmp_path),
        "validate": run(validate_args(list_file), home, tmp_path),
    }
    for name, result in runs.items():
        code = COULD_NOT_CHECK[name]
        assert result.returncode == code
        assert result.failed == [names["untrusted"], names["plain"]], result.stderr
        done = "PASS: [" if name == "validate" else "Signed ["
        assert done + names["trusted"].removesuffix(":v1") in result.stderr
        untrusted = log_line(result.stderr, f" {names['untrusted']}: ", "is not trusted")
        assert f"certs.d/{registry_https.host}/ca.crt" in untrusted
        plain = log_line(result.stderr, f" {names['plain']}: ", "does not speak HTTPS")
        assert "--tls-verify=false" in plain
        documented(f"registry-tls-untrusted-{name}", code, untrusted, subs)
        documented(f"registry-plain-http-with-tls-verify-{name}", code, plain, subs)


def test_registry_requires_credentials(
    registry_basic: RegistryServer,
    registry_http: RegistryServer,
    home: Path,
    tmp_path: Path,
    subs: dict[str, str],
    good: str,
) -> None:
    repository = f"auth/app-{uuid.uuid4().hex[:8]}"
    push_image(registry_basic, repository, "v1", kind="oci-manifest")
    subs[registry_basic.host] = "BASIC_REGISTRY"
    subs[repository] = "auth/app"
    failing = f"{registry_basic.host}/{repository}:v1"
    list_file = write_list(tmp_path / "list", failing, good)
    runs = {
        "sign": run(sign_args(list_file, registry_http), home, tmp_path),
        "sign-skip-login": run(sign_args(list_file, registry_http, "--skip-login"), home, tmp_path),
        "validate": run([*validate_args(list_file), "--tls-verify=false"], home, tmp_path),
    }
    for name, result in runs.items():
        ok = "PASS: [" if name == "validate" else "igned ["
        code = COULD_NOT_CHECK[name]
        line = _check_one_failed(result, failing, ok=ok, code=code)
        assert "requires authentication" in line
        assert f"(log in with: hangar login {registry_basic.host})" in line
        documented(f"registry-401-no-credentials-{name}", code, line, subs)
    warning = log_line(runs["sign"].stderr, "requires credentials", level="[WARN]")
    documented("registry-401-login-check", 1, warning, subs)
    assert "requires credentials" not in runs["sign-skip-login"].stderr


def test_registry_refuses_push(
    make_registry: Callable[..., RegistryServer],
    registry_http: RegistryServer,
    home: Path,
    tmp_path: Path,
    subs: dict[str, str],
    good: str,
) -> None:
    """Valid credentials whose token grants pull only: signing that image fails, alone."""
    server = make_registry("token")
    repository = f"denied/app-{uuid.uuid4().hex[:8]}"
    push_image(server, repository, "v1", kind="oci-manifest")
    assert server.token_server is not None and server.username and server.password
    server.token_server.push_allowed = False
    subs[server.host] = "TOKEN_REGISTRY"
    subs[repository] = "denied/app"
    write_auth_json(
        home / ".config/containers/auth.json", server.host, server.username, server.password
    )
    failing = f"{server.host}/{repository}:v1"
    list_file = write_list(tmp_path / "list", failing, good)
    result = run(sign_args(list_file, registry_http), home, tmp_path)
    line = _check_one_failed(result, failing, ok="igned [")
    assert f"not allowed to push to {server.host}/{repository}" in line
    assert f"hangar login {server.host}" in line
    documented("registry-push-denied-sign", 1, line, subs)
    assert signed_tags(server, repository) == set()
    # Reading is allowed: validate gets as far as the missing signature.
    checked = run([*validate_args(list_file), "--tls-verify=false"], home, tmp_path)
    assert checked.failed == [failing]
    fail_line = log_line(checked.stderr, f"FAIL: [{failing}]", "no signature")
    documented("validate-not-signed", 1, fail_line, subs)
