"""TokenSigningKey in this process, on the session's SoftHSM2 token: DER signatures that the
public key pkcs11-tool reads out verifies, made from many threads at once (as the worker
threads of a -j 8 run call it)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from hangar.keys import backends
from tests.support.hsm import SESSION_TOKEN, TOOL_KEY, SoftHsm


@pytest.fixture
def token_uri(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SOFTHSM2_CONF", str(softhsm.conf))
    return softhsm.uri(SESSION_TOKEN, TOOL_KEY, pin_file=softhsm.pin_file())


def test_signatures_from_eight_threads_all_verify(
    softhsm: SoftHsm, token_uri: str, tmp_path: Path
) -> None:
    key = backends.open_signing_key(token_uri, None)
    try:
        payloads = [f"payload {n}".encode() for n in range(200)]
        with ThreadPoolExecutor(8) as pool:
            signatures = list(pool.map(key.sign, payloads))
    finally:
        backends.close(key)
    pem = softhsm.public_key_pem(SESSION_TOKEN, TOOL_KEY, tmp_path / "tool.pub").read_bytes()
    public = serialization.load_pem_public_key(pem)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert key.public_key().pem() == pem
    for payload, signature in zip(payloads, signatures, strict=True):
        decode_dss_signature(signature)  # ASN.1 DER, or this raises
        public.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
