"""The `hangar` command: thin click commands over the library.

Subcommands are imported only when run, so `hangar --help` stays fast.
"""

from __future__ import annotations

import importlib
import signal
import sys

import click

from hangar import __version__, output
from hangar.cli._args import normalize_argv
from hangar.cli._help import GoGroup
from hangar.errors import HangarError, UnexpectedError

# name -> (module, attribute, short help). Imported lazily.
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "sign": ("hangar.cli.sign", "sign", "Sign multiple container images with sigstore private key"),
    "inspect": ("hangar.cli.inspect", "inspect", "Inspect an image manifest or its config"),
    "login": ("hangar.cli.login", "login", "Log in to a registry (shares podman's auth.json)"),
    "logout": ("hangar.cli.login", "logout", "Log out of a registry"),
    "generate-sigstore-key": (
        "hangar.cli.keys",
        "generate_sigstore_key",
        "Generate a sigstore key pair (PREFIX.key, PREFIX.pub)",
    ),
    "public-key": (
        "hangar.cli.public_key",
        "public_key",
        "Print the public key of a key file or PKCS#11 URI",
    ),
    "import-key-pair": (
        "hangar.cli.import_key",
        "import_key_pair",
        "Import a PEM private key as a sigstore key pair (PREFIX.key, PREFIX.pub)",
    ),
    "pkcs11": (
        "hangar.cli.pkcs11",
        "pkcs11",
        "List PKCS#11 tokens and keys (HSMs, smart cards, SoftHSM2)",
    ),
    "completion": (
        "hangar.cli.completion",
        "completion",
        "Generate the autocompletion script for the specified shell",
    ),
    "version": ("hangar.cli.completion", "version", "Show version"),
}


class LazyGroup(GoGroup):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = _COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module = importlib.import_module(spec[0])
        return getattr(module, spec[1])

    def get_short_help(self, name: str) -> str:
        return _COMMANDS[name][2]

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # click suggests a near name ("Did you mean 'sign'?") from `self.commands`, which a
        # lazy group leaves empty: give it the names, as for flags and sign's subcommands.
        name = args[0] if args else ""
        if args and not name.startswith("-") and self.get_command(ctx, name) is None:
            raise click.exceptions.NoSuchCommand(name, possibilities=list(_COMMANDS), ctx=ctx)
        return super().resolve_command(ctx, args)


VERSION_MESSAGE = "hangar version %(version)s"


@click.group(
    cls=LazyGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    usage_lines=["[command]"],
)
@click.version_option(
    __version__,
    "-v",
    "--version",
    prog_name="hangar",
    message=VERSION_MESSAGE,
    help="version for hangar",
)
@click.option("--debug/--no-debug", default=False, help="enable debug output")
@click.option(
    "--insecure-policy/--no-insecure-policy",
    default=False,
    help="run Hangar without policy check",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, insecure_policy: bool) -> None:
    """hangar signs container images in bulk with a sigstore key pair and validates them,
    so that podman, skopeo, CRI-O and cosign accept them."""
    output.set_debug(debug)
    ctx.obj = {"debug": debug, "insecure_policy": insecure_policy}
    if ctx.invoked_subcommand is None:
        # Bare `hangar` is a question, not a mistake: answer with the help, exit 0.
        click.echo(ctx.get_help())


class Terminated(BaseException):
    """SIGTERM outside a run (a run handles it itself): unwind, so that no temp file stays."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


def _hide_pins(args: list[str]) -> None:
    """A pin-value typed on the command line is visible to every user in `ps` (the warning
    says so): show the process as `... pin-value=*** ...` from now on."""
    if not any("pin-value=" in arg.lower() for arg in args):
        return
    import setproctitle

    from hangar.keys.uri import redact_arguments

    setproctitle.setproctitle(" ".join(["hangar", *redact_arguments(args)]))


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    _hide_pins(args)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli.main(args=normalize_argv(args), prog_name="hangar", standalone_mode=False)
    except BrokenPipeError:
        # stdout's reader went away (`hangar inspect --raw ... | head -1`): stop quietly.
        output.silence(sys.stdout)
        sys.exit(output.CLOSED_EXIT_CODE)
    except (KeyboardInterrupt, Terminated, Exception) as exc:
        sys.exit(_fail(exc, args))


def _fail(exc: BaseException, args: list[str]) -> int:
    """The one place that prints the error that ended a command (one `[ERRO]` line, and an
    unexpected error's traceback under --debug), and picks the exit code."""
    error = _diagnosis(exc, args)
    output.error(error.diagnostics())
    if isinstance(error, UnexpectedError) and output.debug_enabled():
        import traceback

        output.debug("".join(traceback.format_exception(error.cause)).rstrip())
    return error.exit_code


class _Ended(HangarError):
    """How the CLI words an end that is not hangar's own error (a usage error click found,
    Ctrl-C, SIGTERM), with its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _diagnosis(exc: BaseException, args: list[str]) -> HangarError:
    if isinstance(exc, HangarError):
        return exc  # its own exit code: 2 for a usage problem or a policy podman would refuse
    if isinstance(exc, click.exceptions.Abort):
        return _Ended("aborted", 130)
    if isinstance(exc, click.ClickException):
        return _Ended(_click_error_line(exc, args), exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        return _Ended("interrupted", 130)
    if isinstance(exc, Terminated):
        return _Ended("terminated (SIGTERM)", 143)
    return UnexpectedError(exc)  # a bug: one line by default, the traceback with --debug


def _click_error_line(exc: click.ClickException, args: list[str]) -> str:
    """A usage error as one line, like every other error (click would print the usage block):
    what is wrong, and where the flags are described. The exit code stays click's 2."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    if not isinstance(exc, click.UsageError):
        return message
    command = exc.ctx.command_path if exc.ctx is not None else _command_path(args)
    return f"{message} (see `{command} --help`)"


def _command_path(args: list[str]) -> str:
    """`hangar sign validate` from argv, for the errors click raises without a context
    (a flag without its value, a Go-style boolean that is neither true nor false)."""
    words = [arg for arg in args if not arg.startswith("-")][:2]
    path = ["hangar"]
    if words and words[0] in _COMMANDS:
        path.append(words[0])
        if words[0] == "sign" and words[1:] in (["validate"], ["policy"]):
            path.append(words[1])
    return " ".join(path)
