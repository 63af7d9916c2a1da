"""`hangar login` and `hangar logout`: the same auth.json podman and skopeo use.

Credentials are checked against the registry before they are stored, so a typo is reported at
once and never written. Secrets are read from a no-echo prompt or stdin; `-p` works too, with
podman's warning that a command line is visible to other users.
"""

from __future__ import annotations

import asyncio
import sys

import click

from hangar import output
from hangar.cli._args import tls_verify_option
from hangar.cli._help import GoCommand
from hangar.errors import HangarError
from hangar.reference import normalize_registry

CONTEXT = {"help_option_names": ["-h", "--help"]}
_SCHEMES = ("https://", "http://")


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
    from hangar.registry.logins import store_credentials

    host, key = login_target(registry)
    username, password = _read_credentials(host, username, password, password_stdin)
    asyncio.run(_check(host, username, password, tls_verify=tls_verify))
    path = store_credentials(key, username, password, authfile=authfile)
    output.debug(f"credentials for {key} stored in {path}")
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
    from hangar.registry.logins import remove_all_credentials, remove_credentials

    if all_ and registry:
        raise click.UsageError("give a REGISTRY or --all, not both")
    if all_:
        remove_all_credentials(authfile=authfile)
        click.echo("Removed login credentials for all registries")
        return
    if not registry:
        raise click.UsageError("missing REGISTRY (or --all to log out of every registry)")
    _host, key = login_target(registry)
    if not remove_credentials(key, authfile=authfile):
        raise HangarError(
            f"not logged into {key}",
            hint="`hangar logout --all` removes every stored login",
        )
    click.echo(f"Removed login credentials for {key}")


def login_target(text: str) -> tuple[str, str]:
    """(registry host to contact, auth.json key).

    `https://r.example/ns/` -> ("r.example", "r.example/ns"); Docker Hub is spelled docker.io.
    """
    value = text.strip()
    for scheme in _SCHEMES:
        if value.lower().startswith(scheme):
            value = value[len(scheme) :]
            break
    value = value.rstrip("/")
    host, slash, namespace = value.partition("/")
    if not host or any(char.isspace() for char in value):
        raise HangarError(
            f'"{text}" is not a registry',
            hint="use a host[:port], optionally with a namespace: registry.example.com/team",
        )
    host = normalize_registry(host)
    return host, f"{host}/{namespace}" if slash and namespace else host


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


async def _check(host: str, username: str, password: str, *, tls_verify: bool) -> None:
    from hangar.registry.client import RegistryClient

    async with RegistryClient(tls_verify=tls_verify, max_connections=2, retries=2) as client:
        await client.check_credentials(host, username, password)
