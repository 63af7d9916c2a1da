"""certs.d lookup and the SSL contexts built from it, proven against a real TLS server."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hangar.errors import HangarError
from hangar.registry import tls
from hangar.registry.tls import certs_dir, clear_cache, ssl_context

# --- certificates -------------------------------------------------------------------------------


@dataclass
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self, passphrase: bytes | None = None) -> bytes:
        encryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(common_name: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return Issued(cert, key)


def issue(ca: Issued, common_name: str, *, server: bool) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usage = (
        x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
        if server
        else (x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH)
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


@dataclass(frozen=True)
class PKI:
    server_ca: Issued
    server: Issued
    client_ca: Issued
    client: Issued


@pytest.fixture(scope="module")
def pki() -> PKI:
    server_ca = make_ca("hangar test server CA")
    client_ca = make_ca("hangar test client CA")
    return PKI(
        server_ca,
        issue(server_ca, "127.0.0.1", server=True),
        client_ca,
        issue(client_ca, "hangar-client", server=False),
    )


# --- a TLS server on 127.0.0.1 -------------------------------------------------------------------


@dataclass
class TLSServer:
    """Accepts connections, completes the handshake, answers with the client's CN (or "anon")."""

    context: ssl.SSLContext
    sock: socket.socket = field(init=False)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(10)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls_conn:
                    peer = tls_conn.getpeercert()
                    subject = dict(item[0] for item in peer["subject"]) if peer else {}
                    tls_conn.sendall(subject.get("commonName", "anon").encode())
            except (ssl.SSLError, OSError) as exc:
                self.errors.append(type(exc).__name__ + ": " + str(exc))
            finally:
                conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        self.sock.close()


def server_context(pki: PKI, *, require_client_cert: bool, tmp: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    (tmp / "server.pem").write_bytes(pki.server.cert_pem)
    (tmp / "server.key").write_bytes(pki.server.key_pem())
    context.load_cert_chain(tmp / "server.pem", tmp / "server.key")
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=pki.client_ca.cert_pem.decode())
    return context


@pytest.fixture
def home(isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary HOME, system certs.d directories under tmp_path, and a fresh cache."""
    monkeypatch.setattr(
        tls, "SYSTEM_CERTS_DIRS", (tmp_path / "etc-containers", tmp_path / "etc-docker")
    )
    clear_cache()
    yield isolated_home
    clear_cache()


@pytest.fixture
def server(pki: PKI, tmp_path: Path) -> Iterator[TLSServer]:
    running = TLSServer(server_context(pki, require_client_cert=False, tmp=tmp_path))
    yield running
    running.close()


@pytest.fixture
def mtls_server(pki: PKI, tmp_path: Path) -> Iterator[TLSServer]:
    running = TLSServer(server_context(pki, require_client_cert=True, tmp=tmp_path))
    yield running
    running.close()


def talk(context: ssl.SSLContext, host: str) -> bytes:
    address, port = host.rsplit(":", 1)
    with (
        socket.create_connection((address, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=address) as conn,
    ):
        return conn.recv(100)


def user_certs_dir(home: Path, host: str) -> Path:
    directory = home / ".config" / "containers" / "certs.d" / host
    directory.mkdir(parents=True)
    return directory


# --- certs_dir ----------------------------------------------------------------------------------


def test_certs_dir_order(home, tmp_path):
    host = "reg.example:5000"
    assert certs_dir(host) is None
    docker = tmp_path / "etc-docker" / host
    docker.mkdir(parents=True)
    assert certs_dir(host) == docker
    containers = tmp_path / "etc-containers" / host
    containers.mkdir(parents=True)
    assert certs_dir(host) == containers
    user = user_certs_dir(home, host)
    assert certs_dir(host) == user
    assert certs_dir("reg.example") is None  # the port is part of the name


def test_default_system_dirs():
    assert (
        Path("/etc/containers/certs.d"),
        Path("/etc/docker/certs.d"),
    ) == tls.SYSTEM_CERTS_DIRS


@pytest.mark.parametrize("host", ["", "..", "a/b", "../etc"])
def test_certs_dir_refuses_paths(home, host):
    with pytest.raises(HangarError, match="is not a registry host"):
        certs_dir(host)


# --- verification -------------------------------------------------------------------------------


def test_certs_d_ca_makes_verification_pass(home, pki, server):
    (user_certs_dir(home, server.host) / "ca.crt").write_bytes(pki.server_ca.cert_pem)
    context = ssl_context(server.host, verify=True)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert talk(context, server.host) == b"anon"


def test_without_the_ca_verification_fails(home, pki, server):
    with pytest.raises(ssl.SSLCertVerificationError):
        talk(ssl_context(server.host, verify=True), server.host)


def test_a_ca_for_another_host_does_not_help(home, pki, server):
    (user_certs_dir(home, "127.0.0.1:1") / "ca.crt").write_bytes(pki.server_ca.cert_pem)
    with pytest.raises(ssl.SSLCertVerificationError):
        talk(ssl_context(server.host, verify=True), server.host)


def test_system_certs_d_is_read(home, pki, server, tmp_path):
    directory = tmp_path / "etc-docker" / server.host
    directory.mkdir(parents=True)
    (directory / "registry.crt").write_bytes(pki.server_ca.cert_pem)
    assert talk(ssl_context(server.host, verify=True), server.host) == b"anon"


def test_only_the_first_existing_dir_is_used(home, pki, server, tmp_path):
    user_certs_dir(home, server.host)  # exists, empty: hides the system one, as in c/image
    directory = tmp_path / "etc-containers" / server.host
    directory.mkdir(parents=True)
    (directory / "ca.crt").write_bytes(pki.server_ca.cert_pem)
    with pytest.raises(ssl.SSLCertVerificationError):
        talk(ssl_context(server.host, verify=True), server.host)


def test_verify_false_skips_verification(home, server):
    context = ssl_context(server.host, verify=False)
    assert context.verify_mode == ssl.CERT_NONE
    assert context.check_hostname is False
    assert talk(context, server.host) == b"anon"


def test_a_crt_without_a_certificate_is_ignored_with_a_warning(home, pki, server, capsys):
    directory = user_certs_dir(home, server.host)
    (directory / "a-junk.crt").write_text("not a certificate\n")
    (directory / "b-ca.crt").write_bytes(pki.server_ca.cert_pem)
    assert talk(ssl_context(server.host, verify=True), server.host) == b"anon"
    assert "a-junk.crt holds no PEM certificate" in capsys.readouterr().err


# --- client certificates ------------------------------------------------------------------------


def test_client_certificate_pair_is_presented(home, pki, mtls_server):
    directory = user_certs_dir(home, mtls_server.host)
    (directory / "ca.crt").write_bytes(pki.server_ca.cert_pem)
    (directory / "client.cert").write_bytes(pki.client.cert_pem)
    (directory / "client.key").write_bytes(pki.client.key_pem())
    assert talk(ssl_context(mtls_server.host, verify=True), mtls_server.host) == b"hangar-client"
    assert mtls_server.errors == []


def test_client_certificate_is_presented_without_verification_too(home, pki, mtls_server):
    directory = user_certs_dir(home, mtls_server.host)
    (directory / "client.cert").write_bytes(pki.client.cert_pem)
    (directory / "client.key").write_bytes(pki.client.key_pem())
    assert talk(ssl_context(mtls_server.host, verify=False), mtls_server.host) == b"hangar-client"


def test_without_a_client_certificate_the_server_refuses(home, pki, mtls_server):
    (user_certs_dir(home, mtls_server.host) / "ca.crt").write_bytes(pki.server_ca.cert_pem)
    context = ssl_context(mtls_server.host, verify=True)
    try:
        answer = talk(context, mtls_server.host)
    except (ssl.SSLError, OSError):
        answer = b""
    assert answer == b""
    # The server thread records its side of the failed handshake just after the client's.
    deadline = time.monotonic() + 30  # a wait, not a bound: long for a loaded machine
    while not mtls_server.errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert mtls_server.errors  # the server rejected the handshake


def test_cert_without_key_is_an_error(home, pki):
    directory = user_certs_dir(home, "reg.example:5000")
    (directory / "client.cert").write_bytes(pki.client.cert_pem)
    with pytest.raises(HangarError) as info:
        ssl_context("reg.example:5000", verify=True)
    assert "missing key client.key for client certificate" in info.value.message
    assert ".crt" in info.value.hint


def test_key_without_cert_is_an_error(home, pki):
    directory = user_certs_dir(home, "reg.example:5000")
    (directory / "client.key").write_bytes(pki.client.key_pem())
    with pytest.raises(HangarError, match=r"missing client certificate client\.cert for key"):
        ssl_context("reg.example:5000", verify=False)


def test_mismatched_pair_is_an_error(home, pki):
    directory = user_certs_dir(home, "reg.example:5000")
    (directory / "client.cert").write_bytes(pki.client.cert_pem)
    (directory / "client.key").write_bytes(pki.server.key_pem())
    with pytest.raises(HangarError, match="cannot load client certificate"):
        ssl_context("reg.example:5000", verify=True)


def test_encrypted_key_is_an_error_not_a_prompt(home, pki):
    directory = user_certs_dir(home, "reg.example:5000")
    (directory / "client.cert").write_bytes(pki.client.cert_pem)
    (directory / "client.key").write_bytes(pki.client.key_pem(b"passphrase"))
    with pytest.raises(HangarError, match="is encrypted"):
        ssl_context("reg.example:5000", verify=True)


def test_certs_d_entry_that_is_a_file(home):
    base = home / ".config" / "containers" / "certs.d"
    base.mkdir(parents=True)
    (base / "reg.example:5000").write_text("oops")
    with pytest.raises(HangarError, match="is not a directory"):
        ssl_context("reg.example:5000", verify=True)


# --- cache --------------------------------------------------------------------------------------


def test_contexts_are_cached_per_host_and_mode(home):
    first = ssl_context("reg.example:5000", verify=True)
    assert ssl_context("reg.example:5000", verify=True) is first
    assert ssl_context("reg.example:5000", verify=False) is not first
    assert ssl_context("other.example", verify=True) is not first
    clear_cache()
    assert ssl_context("reg.example:5000", verify=True) is not first


def test_cache_is_safe_across_threads(home):
    results: list[ssl.SSLContext] = []

    def build() -> None:
        results.append(ssl_context("threads.example", verify=True))

    threads = [threading.Thread(target=build) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 8
    assert all(context is results[0] for context in results)
