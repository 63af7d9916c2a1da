"""`hangar sign policy`: print the consumer configuration that accepts hangar's signatures."""

from __future__ import annotations

import click


@click.command(
    "policy",
    context_settings={"help_option_names": ["-h", "--help"]},
    short_help="Print the policy.json, registries.d and cosign command that accept the signatures",
)
@click.option(
    "-p",
    "--sigstore-pubkey",
    "pubkey",
    metavar="FILE",
    required=True,
    help="the sigstore public key of the signing key pair (a file or pkcs11: URI)",
)
@click.option(
    "--registry",
    metavar="HOST[/NS]",
    required=True,
    help="the registry, or registry/namespace, whose images must carry the signature",
)
@click.option(
    "--signed-identity",
    type=click.Choice(["tag", "digest", "repository"]),
    default="tag",
    show_default=True,
    help="the --signed-identity the images were signed with (picks the signedIdentity rule)",
)
def policy(pubkey: str, registry: str, signed_identity: str) -> None:
    """Print a policy.json, a registries.d file and a `cosign verify` command line with which
    podman, CRI-O and cosign accept images signed by hangar under --registry.

    Check the result on the real images with
    `hangar sign validate --policy FILE --registries-d DIR -f LIST`.
    """
    from hangar.keys.backends import describe, open_public_key
    from hangar.policy.consumer import checked_scope, consumer_config, render
    from hangar.policy.kubernetes import render_kubernetes

    scope = checked_scope(registry)
    key = open_public_key(pubkey)
    click.echo(render(consumer_config(scope, key, describe(pubkey), signed_identity)), nl=False)
    click.echo("\n" + render_kubernetes(scope, key), nl=False)
