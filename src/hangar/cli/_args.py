"""Go-style command line conventions that users of the seed's tool already type.

click does not parse `--tls-verify=false` for a boolean flag, nor global flags after the
subcommand, so argv is normalized before click sees it. Durations follow Go's
time.ParseDuration because the seed documents `--timeout 10m0s` (hangar.api.config reads them).
"""

from __future__ import annotations

import click

from hangar.api.config import parse_duration

GLOBAL_FLAGS = ("--debug", "--insecure-policy")

# Boolean flags that accept Go's `--flag=VALUE`. Each is declared in click as `--x/--no-x`.
GO_BOOL_FLAGS = frozenset(
    {
        "tls-verify",
        "sign-index",
        "skip-login",
        "force",
        "debug",
        "insecure-policy",
        "auto-yes",
        "raw",
        "config",
        "require-tag-identity",
        "require-index-signature",
        "accept-repository-identity",
        "all",
        "password-stdin",
        "exact-repository-only",
        "quiet",
    }
)

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def normalize_argv(argv: list[str]) -> list[str]:
    """Rewrite `--flag=bool` into click's spelling and hoist global flags to the front."""
    hoisted: list[str] = []
    rest: list[str] = []
    for index, arg in enumerate(argv):
        if arg == "--":
            rest.extend(argv[index:])
            break
        _refuse_spaced_bool(arg, argv[index + 1 : index + 2])
        arg = _rewrite_bool(arg)
        if arg in GLOBAL_FLAGS or arg in ("--no-debug", "--no-insecure-policy"):
            hoisted.append(arg)
        else:
            rest.append(arg)
    return hoisted + rest


# Words that, after a boolean flag, almost surely were meant as its value.
_SPACED_VALUES = {"true", "false", "True", "False", "TRUE", "FALSE"}


def _refuse_spaced_bool(arg: str, following: list[str]) -> None:
    """`--tls-verify false` means `--tls-verify` plus a stray `false` in Go and in click alike
    (cobra then fails on the word): say how to write it instead of a puzzling error."""
    if not arg.startswith("--") or "=" in arg or not following:
        return
    name = arg[2:]
    if name in GO_BOOL_FLAGS and following[0] in _SPACED_VALUES:
        value = following[0].lower()
        raise click.UsageError(
            f'"{arg} {following[0]}": a boolean flag takes its value after "=": write {arg}={value}'
        )


def _rewrite_bool(arg: str) -> str:
    if not arg.startswith("--") or "=" not in arg:
        return arg
    name, value = arg[2:].split("=", 1)
    if name not in GO_BOOL_FLAGS:
        return arg
    if value in _TRUE:
        return f"--{name}"
    if value in _FALSE:
        return f"--no-{name}"
    raise click.UsageError(
        f'invalid argument "{value}" for "--{name}": use true or false (for example --{name}=false)'
    )


class Duration(click.ParamType):
    """A positive Go duration, converted to seconds."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, float | int):
            return float(value)
        try:
            seconds = parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if seconds <= 0:
            self.fail(f'duration "{value}" must be positive (for example 10m0s)', param, ctx)
        return seconds


class Jobs(click.ParamType):
    """A worker count. Out of range is the caller's business (the seed warns and uses 1);
    not a number is a usage error that says what is expected."""

    name = "integer"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None):
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            self.fail(
                f"{value!r} is not a valid integer: give the number of workers, 1 to 20",
                param,
                ctx,
            )


def tls_verify_option(func):
    # The seed's words; --tls-verify=false (plain HTTP, no certificate check) is in the README.
    return click.option(
        "--tls-verify/--no-tls-verify",
        default=True,
        help="require HTTPS and verify certificates",
    )(func)


def list_options(*, verb: str):
    """Flags `sign` and `sign validate` share, spelled as in the seed (its `sign` wording is
    kept word for word; `validate` says what it does)."""
    noun = "sign" if verb == "sign" else verb
    doing = "sign images parallelly" if verb == "sign" else f"{verb} images parallelly"
    timeout = (
        "timeout when sign each images" if verb == "sign" else f"timeout when {verb} each image"
    )

    def apply(func):
        decorators = [
            click.option("-f", "--file", "file", metavar="FILE", help="image list file"),
            click.option(
                "-a",
                "--arch",
                "arch",
                multiple=True,
                default=("amd64,arm64",),
                help="architecture list of images",
            ),
            click.option(
                "--os", "os_", multiple=True, default=("linux",), help="OS list of images"
            ),
            click.option("--registry", help="override all image registry URL in image list"),
            click.option("--project", help="override all image projects in image list"),
            click.option(
                "--all-tags/--no-all-tags",
                default=False,
                help="a line without a tag means every tag of its repository (signature and "
                "attestation tags excepted)",
            ),
            click.option(
                "-j",
                "--jobs",
                type=Jobs(),
                default=1,
                help=f"worker number, {doing} (1-20)",
            ),
            click.option(
                "-o",
                "--failed",
                "failed",
                default="sign-failed.txt",
                help=f"file name of the {noun} failed image list",
            ),
            click.option(
                "--timeout",
                type=Duration(),
                default="10m0s",
                help=timeout,
            ),
            tls_verify_option,
            click.option(
                "--authfile",
                metavar="FILE",
                # Checked up front: a registry that asks for no credentials never reads it, so
                # a typo would otherwise go unnoticed.
                type=click.Path(exists=True, dir_okay=False),
                help="auth.json to read credentials from",
            ),
            click.option(
                "-q",
                "--quiet/--no-quiet",
                default=False,
                help="print only warnings, errors and the summary",
            ),
            click.option(
                "--report",
                metavar="FILE",
                help="write a JSON report of the run (- for stdout; its schema is "
                "docs/report.schema.json)",
            ),
        ]
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply
