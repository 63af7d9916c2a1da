"""drop_layers: the attachment without some layers, everything else as it was read."""

from __future__ import annotations

import json

import pytest

from hangar.errors import HangarError
from hangar.sigstore.attachment import drop_layers, parse_attachment
from tests.support import paths

VECTOR = paths.VECTORS / "cimage-attachment"


def layer(n: int) -> dict:
    return {"mediaType": "text/plain", "digest": f"sha256:{n:064x}", "size": n}


def attachment(config: dict, count: int = 3) -> tuple:
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "x"},
        "layers": [layer(n) for n in range(1, count + 1)],
        "annotations": {"keep": "me"},
    }
    raw = json.dumps(manifest).encode()
    return parse_attachment(raw), json.dumps(config).encode()


def test_history_loses_the_entries_of_dropped_layers_only() -> None:
    history = [
        {"created": "a"},
        {"created": "empty", "empty_layer": True},
        {"created": "b"},
        {"created": "c"},
    ]
    diff_ids = [layer(n)["digest"] for n in (1, 2, 3)]
    sig, config = attachment(
        {"rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history}
    )
    result = drop_layers(sig, config, {1})
    assert result is not None
    manifest, new_config = (json.loads(part) for part in result)
    assert [entry["size"] for entry in manifest["layers"]] == [1, 3]
    assert manifest["annotations"] == {"keep": "me"}
    assert new_config["rootfs"]["diff_ids"] == [diff_ids[0], diff_ids[2]]
    assert [entry["created"] for entry in new_config["history"]] == ["a", "empty", "c"]


def test_a_history_that_does_not_pair_with_the_layers_is_left_alone() -> None:
    diff_ids = [layer(n)["digest"] for n in (1, 2, 3)]
    history = [{"created": "only one"}]
    sig, config = attachment({"rootfs": {"diff_ids": diff_ids}, "history": history})
    result = drop_layers(sig, config, {0})
    assert result is not None
    assert json.loads(result[1])["history"] == history


def test_diff_ids_that_do_not_pair_with_the_layers_are_refused() -> None:
    sig, config = attachment({"rootfs": {"diff_ids": ["sha256:" + "0" * 64]}})
    with pytest.raises(HangarError, match="one diff_id per layer"):
        drop_layers(sig, config, {0})


def test_dropping_every_layer_means_delete_and_the_c_image_vector_re_encodes_exactly() -> None:
    raw = (VECTOR / "sig-manifest.json").read_bytes()
    config = (VECTOR / "sig-config.json").read_bytes()
    sig = parse_attachment(raw)
    assert drop_layers(sig, config, {0, 1}) is None
    result = drop_layers(sig, config, set())
    assert result == (raw, config)  # nothing dropped: the same bytes
