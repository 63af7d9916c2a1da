"""Reading back what `hangar sign --signature-format bundle|both` wrote, with code other than
hangar's: the test bed's HTTP client, the models generated from sigstore's protobuf-specs
(PyPI sigstore-protobuf-specs) for the bundle, and securesystemslib's DSSE (its own PAE and
ECDSA verification) for the signature."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import betterproto
from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import Signature, SSlibKey
from sigstore_protobuf_specs.dev.sigstore.bundle.v1 import Bundle

from tests.support import http
from tests.support.registry import RegistryServer

BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
COSIGN_SIGN = "https://sigstore.dev/cosign/sign/v1"
IN_TOTO = "application/vnd.in-toto+json"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def referrers_tag(digest: str) -> str:
    return digest.replace(":", "-", 1)


def read_referrers(server: RegistryServer, repo: str, digest: str) -> list[dict]:
    """The descriptors of the referrers tag schema's index of `digest` ([] without one)."""
    if http.head_manifest(server, repo, referrers_tag(digest)) is None:
        return []
    data, content_type, _ = http.get_manifest(server, repo, referrers_tag(digest))
    index = json.loads(data)
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == content_type == OCI_INDEX
    return list(index["manifests"])


def read_bundle(server: RegistryServer, repo: str, entry: dict) -> bytes:
    artifact = json.loads(http.get_manifest(server, repo, entry["digest"])[0])
    (layer,) = artifact["layers"]
    data = http.get_blob(server, repo, layer["digest"])
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"]
    return data


def dsse_verifies(envelope: dict, public_key_pem: Path) -> bool:
    """securesystemslib's DSSE verification of the envelope with the key."""
    public = serialization.load_pem_public_key(public_key_pem.read_bytes())
    key = SSlibKey.from_crypto(public)  # type: ignore[arg-type]
    (signature,) = envelope["signatures"]
    assert "keyid" not in signature  # cosign v3 writes none; a foreign one makes cosign skip it
    sig = base64.b64decode(signature["sig"], validate=True).hex()
    theirs = Envelope(
        base64.b64decode(envelope["payload"], validate=True),
        envelope["payloadType"],
        {key.keyid: Signature(key.keyid, sig)},
    )
    try:
        theirs.verify([key], 1)
    except VerificationError:
        return False
    return True


def check_bundle(
    server: RegistryServer,
    repo: str,
    digest: str,
    entry: dict,
    public_key_pem: Path,
    *,
    must_verify: bool = True,
) -> bool:
    """Check the bundle an index entry lists, field by field as cosign v3 writes it for a key
    pair with no log; True when its DSSE signature verifies with the key."""
    data = read_bundle(server, repo, entry)
    document = json.loads(data)
    model = Bundle.from_dict(document)  # the protobuf-specs model: fields and types
    # Every field is one the model knows, spelled as protojson writes it, nothing else.
    assert model.to_dict() == document
    assert model.media_type == BUNDLE_V03
    material = model.verification_material
    assert betterproto.which_one_of(material, "content")[0] == "public_key"
    assert not material.tlog_entries
    assert betterproto.which_one_of(model, "content")[0] == "dsse_envelope"
    envelope = model.dsse_envelope
    assert envelope.payload_type == IN_TOTO
    assert len(envelope.signatures) == 1 and not envelope.signatures[0].keyid
    statement = json.loads(envelope.payload)
    assert statement == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha256": digest.split(":", 1)[1]}, "annotations": {}}],
        "predicateType": COSIGN_SIGN,
        "predicate": {},
    }
    assert list(statement) == ["_type", "subject", "predicateType", "predicate"]
    verified = dsse_verifies(json.loads(data)["dsseEnvelope"], public_key_pem)
    if verified:
        spki = serialization.load_pem_public_key(public_key_pem.read_bytes()).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert material.public_key.hint == base64.b64encode(hashlib.sha256(spki).digest()).decode()
    if must_verify:
        assert verified, f"the bundle of {digest} does not verify with {public_key_pem.name}"
    return verified
