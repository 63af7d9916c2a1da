"""containers/image's policy.json, evaluated as podman/CRI-O evaluate it (pure, no network)."""
