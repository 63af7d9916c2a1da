"""hangar: sign container images in bulk with a sigstore key pair, and validate them."""

__version__ = "0.1.0"
