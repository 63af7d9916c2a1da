"""The .sig attachment: parse, append (byte for byte as c/image), merge, idempotency."""

from __future__ import annotations

import base64
import json

import pytest

from hangar.errors import HangarError
from hangar.manifest import OCI_CONFIG, OCI_MANIFEST
from hangar.manifest import sha256_digest as sha256
from hangar.sigstore.attachment import (
    MAX_LAYERS,
    SIGNATURE_ANNOTATION,
    SIMPLESIGNING_MEDIA_TYPE,
    Attachment,
    NewSignature,
    append_signatures,
    missing_layers,
    parse_attachment,
    signature_tag,
)
from hangar.sigstore.payload import build_payload
from hangar.sigstore.verify import has_signature
from tests.sigstore.cimage_dir import TestKey
from tests.support import paths

VECTORS = paths.VECTORS / "cimage-attachment"
SIG_MANIFEST = (VECTORS / "sig-manifest.json").read_bytes()
SIG_CONFIG = (VECTORS / "sig-config.json").read_bytes()
PAYLOADS = [(VECTORS / f"payload-{n}.json").read_bytes() for n in (1, 2)]
IMAGE_DIGEST = sha256((VECTORS / "image-manifest.json").read_bytes())
REPO = "127.0.0.1:5000/vectors/app"


def vector_signatures() -> list[NewSignature]:
    document = json.loads(SIG_MANIFEST)
    return [
        NewSignature(payload, base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION]))
        for payload, layer in zip(PAYLOADS, document["layers"], strict=True)
    ]


def manifest_with(layers: list[dict], **extra: object) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(b"{}"), "size": 2},
        "layers": layers,
        **extra,
    }
    return json.dumps(document).encode()


# --- signature_tag ---------------------------------------------------------------------------


def test_signature_tag() -> None:
    assert signature_tag(IMAGE_DIGEST) == IMAGE_DIGEST.replace("sha256:", "sha256-") + ".sig"


@pytest.mark.parametrize(
    "digest",
    ["", "sha256:abc", "sha256:" + "A" * 64, "sha512:" + "a" * 128, "a" * 64, "sha256-" + "a" * 64],
)
def test_signature_tag_refuses_bad_digests(digest: str) -> None:
    with pytest.raises(HangarError, match="not a sha256 digest"):
        signature_tag(digest)


# --- parse -----------------------------------------------------------------------------------


def test_parse_cimage_vector() -> None:
    attachment = parse_attachment(SIG_MANIFEST)
    assert attachment.raw == SIG_MANIFEST
    assert attachment.config["digest"] == sha256(SIG_CONFIG)
    assert [layer.digest for layer in attachment.layers] == [sha256(p) for p in PAYLOADS]
    assert [layer.size for layer in attachment.layers] == [len(p) for p in PAYLOADS]
    for layer, signature in zip(attachment.layers, vector_signatures(), strict=True):
        assert layer.media_type == SIMPLESIGNING_MEDIA_TYPE
        assert layer.signature == signature.signature
        assert layer.raw == {
            "mediaType": SIMPLESIGNING_MEDIA_TYPE,
            "digest": layer.digest,
            "size": layer.size,
            "annotations": layer.annotations,
        }


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (None, None),
        ("not base64!", None),
        ("QUJD", b"ABC"),
        ("QUJ=", b"AB"),  # non-zero padding bits: Go's StdEncoding takes them too
        ("QUJ", None),  # padding missing, which StdEncoding requires
        ("QUJD=", None),  # padding where none belongs
        ("QU\nJD\r\n", b"ABC"),  # Go's StdEncoding skips CR and LF
        (5, None),  # not a string: dropped from annotations
    ],
)
def test_signature_annotation_decoding(annotation: object, expected: bytes | None) -> None:
    layer: dict = {"mediaType": SIMPLESIGNING_MEDIA_TYPE, "digest": sha256(b"x"), "size": 1}
    if annotation is not None:
        layer["annotations"] = {SIGNATURE_ANNOTATION: annotation}
    parsed = parse_attachment(manifest_with([layer])).layers[0]
    assert parsed.signature == expected
    assert parsed.raw == layer


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"config":{"digest":"sha256:x"},"layers":[],"size":NaN}', "not valid JSON"),
        (
            b'{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}',
            "not an OCI image manifest",
        ),
        (
            b'{"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
            b'"config":{"digest":"sha256:x"},"layers":[]}',
            "not an OCI image manifest",
        ),
        (b'{"manifests":[],"config":{"digest":"sha256:x"},"layers":[]}', "not an OCI image"),
        (b'{"layers":[]}', "no config descriptor"),
        (b'{"config":{"digest":"sha256:x"},"layers":{}}', "not a list of descriptors"),
        (b'{"config":{"digest":"sha256:x"},"layers":["x"]}', "not a list of descriptors"),
    ],
)
def test_parse_refuses(raw: bytes, message: str) -> None:
    with pytest.raises(HangarError, match=message):
        parse_attachment(raw)


def test_parse_refuses_more_than_max_layers() -> None:
    layer = {"mediaType": SIMPLESIGNING_MEDIA_TYPE, "digest": sha256(b"x"), "size": 1}
    assert len(parse_attachment(manifest_with([layer] * MAX_LAYERS)).layers) == MAX_LAYERS
    with pytest.raises(HangarError, match=f"1001 layers, more than {MAX_LAYERS}"):
        parse_attachment(manifest_with([layer] * (MAX_LAYERS + 1)))


# --- append ----------------------------------------------------------------------------------


def test_append_rebuilds_cimage_vector_byte_for_byte() -> None:
    first, second = vector_signatures()
    manifest_1, config_1 = append_signatures(None, None, [first])
    assert json.loads(config_1) == {
        "architecture": "",
        "os": "",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(PAYLOADS[0])]},
    }
    manifest_2, config_2 = append_signatures(parse_attachment(manifest_1), config_1, [second])
    assert config_2 == SIG_CONFIG
    assert manifest_2 == SIG_MANIFEST


def test_append_both_at_once_gives_the_vector() -> None:
    assert append_signatures(None, None, vector_signatures()) == (SIG_MANIFEST, SIG_CONFIG)


def test_append_nothing_reencodes_go_written_documents_unchanged() -> None:
    assert append_signatures(parse_attachment(SIG_MANIFEST), SIG_CONFIG, []) == (
        SIG_MANIFEST,
        SIG_CONFIG,
    )


def test_append_skips_a_signature_already_there() -> None:
    attachment = parse_attachment(SIG_MANIFEST)
    assert append_signatures(attachment, SIG_CONFIG, vector_signatures()) == (
        SIG_MANIFEST,
        SIG_CONFIG,
    )


def test_append_keeps_every_field_layer_and_config_field() -> None:
    keyless_layer = (
        '{"mediaType":"application/vnd.dev.cosign.simplesigning.v1+json","size":300,'
        '"digest":"sha256:1111","annotations":{'
        '"dev.sigstore.cosign/bundle":"{\\"SignedEntryTimestamp\\":\\"x<y>\\"}",'
        '"dev.sigstore.cosign/certificate":"-----BEGIN CERTIFICATE-----\\n...",'
        '"dev.cosignproject.cosign/signature":"QUJD"},"x-extra":[1.50,2e3,-0]}'
    )
    other_layer = '{"mediaType":"application/vnd.in-toto+json","digest":"sha256:2222","size":7}'
    manifest_template = """{ "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:3333", "size": 9, "annotations": {"k": "v"}},
        "layers": [KEYLESS, OTHER],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": "SUBJECT", "size": 418},
        "annotations": {"org.x": "y"} }
    """
    manifest = (
        manifest_template.replace("KEYLESS", keyless_layer)
        .replace("OTHER", other_layer)
        .replace("SUBJECT", IMAGE_DIGEST)
        .encode()
    )
    config = (
        b'{"architecture":"","created":"2023-02-17T09:25:33Z","history":[{"created":'
        b'"0001-01-01T00:00:00Z"},{"created":"0001-01-01T00:00:00Z"}],"os":"",'
        b'"rootfs":{"type":"layers","diff_ids":["sha256:1111","sha256:2222"]},'
        b'"config":{},"x-field":{"nested":true}}'
    )
    new = vector_signatures()[0]
    attachment = parse_attachment(manifest)
    document_before = json.loads(json.dumps(attachment.document))
    out_manifest, out_config = append_signatures(attachment, config, [new])

    assert attachment.document == document_before  # the input is not changed
    result = json.loads(out_manifest)
    original = json.loads(manifest)
    assert list(result) == list(original)
    for key in ("schemaVersion", "mediaType", "artifactType", "subject", "annotations"):
        assert result[key] == original[key]
    assert result["config"] == {
        "mediaType": OCI_CONFIG,
        "digest": sha256(out_config),
        "size": len(out_config),
        "annotations": {"k": "v"},
    }
    # Existing descriptors: same keys, order, values and number text, compact.
    assert out_manifest.count(keyless_layer.encode().replace(b"x<y>", b"x\\u003cy\\u003e")) == 1
    assert other_layer.encode() in out_manifest
    assert result["layers"][2] == {
        "mediaType": SIMPLESIGNING_MEDIA_TYPE,
        "digest": sha256(new.payload),
        "size": len(new.payload),
        "annotations": {SIGNATURE_ANNOTATION: base64.b64encode(new.signature).decode()},
    }
    config_out = json.loads(out_config)
    config_in = json.loads(config)
    assert config_out["rootfs"]["diff_ids"] == [*config_in["rootfs"]["diff_ids"], new.digest]
    assert config_out["history"] == [*config_in["history"], {"created": "0001-01-01T00:00:00Z"}]
    for key in ("architecture", "created", "os", "config", "x-field"):
        assert config_out[key] == config_in[key]
    assert list(config_out) == list(config_in)


def test_append_adds_no_history_when_the_config_has_none() -> None:
    _, config = append_signatures(parse_attachment(SIG_MANIFEST), SIG_CONFIG, [new_signature()])
    assert "history" not in json.loads(config)


def test_append_without_a_readable_config_keeps_existing_diff_ids() -> None:
    new = new_signature()
    _, config = append_signatures(parse_attachment(SIG_MANIFEST), None, [new])
    assert json.loads(config)["rootfs"]["diff_ids"] == [*map(sha256, PAYLOADS), new.digest]


def test_append_refuses_to_go_over_max_layers() -> None:
    layer = {"mediaType": SIMPLESIGNING_MEDIA_TYPE, "digest": sha256(b"x"), "size": 1}
    full = parse_attachment(manifest_with([layer] * MAX_LAYERS))
    with pytest.raises(HangarError, match="would hold 1001 layers"):
        append_signatures(full, None, [new_signature()])


def test_append_refuses_a_config_that_is_not_json() -> None:
    with pytest.raises(HangarError, match="config is not valid JSON"):
        append_signatures(parse_attachment(SIG_MANIFEST), b"{", [new_signature()])


# --- merge and idempotency -------------------------------------------------------------------


def new_signature(key: TestKey | None = None, identity: str = f"{REPO}:v1") -> NewSignature:
    payload = build_payload(identity, IMAGE_DIGEST, creator="hangar test", timestamp=1)
    return NewSignature(payload, (key or TestKey()).sign(payload))


def test_missing_layers() -> None:
    current = parse_attachment(SIG_MANIFEST)
    ours = [signature.layer() for signature in vector_signatures()]
    mine = new_signature().layer()
    assert missing_layers(current, ours) == []
    assert missing_layers(current, [ours[0], mine, mine]) == [mine]
    assert missing_layers(None, [mine, ours[1]]) == [mine, ours[1]]
    # Same payload, another signature (ECDSA is randomized): a different layer.
    resigned = NewSignature(PAYLOADS[0], b"other signature").layer()
    assert missing_layers(current, [resigned]) == [resigned]


def test_new_signature_layer_is_the_descriptor_appended() -> None:
    new = new_signature()
    manifest, _ = append_signatures(None, None, [new])
    assert parse_attachment(manifest).layers == [new.layer()]


def pairs(attachment: Attachment, payloads: dict[str, bytes]) -> list[tuple]:
    return [(layer, payloads.get(layer.digest)) for layer in attachment.layers]


def test_has_signature() -> None:
    key, other_key = TestKey(), TestKey()
    by_tag = new_signature(key, f"{REPO}:v1")
    manifest, _ = append_signatures(parse_attachment(SIG_MANIFEST), SIG_CONFIG, [by_tag])
    attachment = parse_attachment(manifest)
    payloads = {sha256(p): p for p in [*PAYLOADS, by_tag.payload]}

    def check(identity: str, verifier: object, blobs: dict[str, bytes] = payloads) -> bool:
        return has_signature(
            pairs(attachment, blobs), digest=IMAGE_DIGEST, identity=identity, key=verifier
        )

    assert check(f"{REPO}:v1", key.public)
    assert not check(f"{REPO}:v2", key.public)
    assert not check(f"{REPO}@{IMAGE_DIGEST}", key.public)  # only the vector's key1 signed that
    assert not check(f"{REPO}:v1", other_key.public)
    assert not check(f"{REPO}:v1", key.public, {})  # payloads not fetched
    tampered = {digest: blob.replace(b"v1", b"v2") for digest, blob in payloads.items()}
    assert not check(f"{REPO}:v1", key.public, tampered)
    assert not has_signature(
        pairs(attachment, payloads),
        digest="sha256:" + "0" * 64,
        identity=f"{REPO}:v1",
        key=key.public,
    )
