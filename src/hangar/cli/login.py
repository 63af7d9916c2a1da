"""`hangar login` and `hangar logout`: the same auth.json podman and skopeo use.

Credentials are checked against the registry before they are stored, so a typo is reported at
once and never written. Secrets are read from a no-echo prompt or stdin; `-p` works too, with
podman's warning that a command line is visible to other users.
"""

from __future__ import annotations

import sys

import click

from hangar import output
from hangar.cli._args import tls_verify_option
from hangar.cli._help import GoCommand
from hangar.errors import HangarError

CONTEXT = {"help_option_names": ["-h", "--help"]}


@click.command(cls=GoCommand, context_settings=CONTEXT)
@click.argument("registry")
@click.option("-u", "--username", help="username for the registry")
@click.option(
    "-p",
    "--password",
    help="password for the registry (visible to other users of this machine: prefer the "
    "prompt or --password-stdin)",
)
@click.option(
    "--password-stdin/--no-password-stdin",
    default=False,
    help="read the password (or token) from stdin",
)
@click.option("--authfile", metavar="FILE", help="auth.json to write (default: podman's)")
@tls_verify_option
def login(
    registry: str,
    username: str | None,
    password: str | None,
    password_stdin: bool,
    authfile: str | None,
    tls_verify: bool,
) -> None:
    """Log in to a registry: check the credentials, then store them in auth.json.

    \b
    Examples:
      hangar login registry.example.com
      hangar login -u admin --password-stdin 127.0.0.1:5000 < password.txt
    """
    from hangar.api.login import log_in, login_target

    host, _key = login_target(registry)
    username, password = _read_credentials(host, username, password, password_stdin)
    log_in(registry, username, password, authfile=authfile, tls_verify=tls_verify)
    click.echo("Login Succeeded!")


@click.command(cls=GoCommand, context_settings=CONTEXT)
@click.argument("registry", required=False)
@click.option("-a", "--all/--no-all", "all_", default=False, help="remove every stored login")
@click.option("--authfile", metavar="FILE", help="auth.json to change (default: podman's)")
def logout(registry: str | None, all_: bool, authfile: str | None) -> None:
    """Log out of a registry: remove its credentials from auth.json.

    \b
    Examples:
      hangar logout registry.example.com
      hangar logout --all
    """
    from hangar.api.login import log_out

    if all_ and registry:
        raise click.UsageError("give a REGISTRY or --all, not both")
    if not all_ and not registry:
        raise click.UsageError("missing REGISTRY (or --all to log out of every registry)")
    key = log_out(None if all_ else registry, authfile=authfile)
    click.echo(f"Removed login credentials for {key or 'all registries'}")


def _read_credentials(
    host: str, username: str | None, password: str | None, password_stdin: bool
) -> tuple[str, str]:
    if password_stdin and password is not None:
        raise click.UsageError("--password and --password-stdin cannot be used together")
    if password_stdin:
        if not username:
            raise click.UsageError("--password-stdin needs --username")
        # One trailing newline is the end of the line, not part of the password (as podman).
        password = sys.stdin.read().removesuffix("\n").removesuffix("\r")
    elif password is not None:
        output.warn(
            "a password given with --password is visible to other users of this machine "
            "(ps, shell history); prefer the prompt or --password-stdin"
        )
    interactive = sys.stdin.isatty() and not password_stdin
    if not username:
        username = _prompt(host, "Username", interactive, hide=False)
    if password is None:
        password = _prompt(host, "Password", interactive, hide=True)
    if not username or not password:
        raise HangarError(f"login to {host}: the username and the password must not be empty")
    return username, password


def _prompt(host: str, label: str, interactive: bool, *, hide: bool) -> str:
    if not interactive:
        flag = "--password or --password-stdin" if hide else "--username"
        raise HangarError(
            f"login to {host}: no {label.lower()} given and stdin is not a terminal to ask for one",
            hint=f"pass {flag}",
        )
    return click.prompt(label, hide_input=hide, err=True)
