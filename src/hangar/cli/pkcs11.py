"""`hangar pkcs11 list-tokens` and `hangar pkcs11 list-keys`: find the token and the key URI
to give `-k` (as `cosign pkcs11-tool`)."""

from __future__ import annotations

import click

from hangar.cli._help import GoCommand, GoGroup

MODULE_HELP = "the PKCS#11 module (.so) of the token; default $COSIGN_PKCS11_MODULE_PATH"


@click.group(
    "pkcs11",
    cls=GoGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="List the tokens of a PKCS#11 module and the keys in a token",
    short_help="List PKCS#11 tokens and keys (HSMs, smart cards, SoftHSM2)",
    usage_lines=["[command]"],
)
def pkcs11() -> None:
    pass


@pkcs11.command(
    "list-tokens", cls=GoCommand, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("--module-path", metavar="FILE", help=MODULE_HELP)
def list_tokens(module_path: str | None) -> None:
    """Print the initialized tokens of the module: label, serial, slot id, maker and model."""
    from hangar.keys.hsm.admin import list_tokens as tokens_of

    path, tokens = tokens_of(module_path)
    if not tokens:
        click.echo(f"no initialized token in {path}", err=True)
        return
    for token in tokens:
        login = "login required" if token.login_required else "no login"
        click.echo(
            f"token={token.label}\tserial={token.serial}\tslot-id={token.slot_id}\t"
            f"{token.manufacturer} {token.model} ({login})"
        )


@pkcs11.command(
    "list-keys", cls=GoCommand, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option("--module-path", metavar="FILE", help=MODULE_HELP)
@click.option("--token", "token", required=True, metavar="LABEL", help="the token's label")
@click.option(
    "--pin-source",
    metavar="file:PATH",
    help="read the user PIN from a file; otherwise $COSIGN_PKCS11_PIN, else asked on the terminal",
)
def list_keys(module_path: str | None, token: str, pin_source: str | None) -> None:
    """Print a ready-to-use `pkcs11:` URI for each private key in the token (never with the
    PIN: add pin-source=file:PATH, or set $COSIGN_PKCS11_PIN, when signing)."""
    from hangar.keys.hsm.admin import list_keys as keys_of
    from hangar.keys.hsm.admin import selection_uri

    found = keys_of(selection_uri(token, module_path, pin_source))
    if not found.keys:
        click.echo(f"no private key in token {found.token.describe()}", err=True)
        return
    for key, uri in zip(found.keys, found.uris(), strict=True):
        notes = [key.key_type]
        if not key.can_sign:
            notes.append("cannot sign")
        if not key.has_public:
            notes.append("no public key object")
        click.echo(f"{uri}\t# {', '.join(notes)}")
