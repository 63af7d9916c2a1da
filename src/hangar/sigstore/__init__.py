"""Sigstore signatures as containers/image and cosign write them: keys, payload, attachment,
verification. Pure functions over bytes; nothing here talks to a registry."""
