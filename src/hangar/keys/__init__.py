"""Key handling outside the pure formats of hangar.sigstore: key files on disk and the
passphrase policy."""
