"""A throw-away certificate authority for the test registries and the token issuer.

Every key is ECDSA P-256: generating one takes microseconds, and both Go (distribution) and
Python's ssl accept it for TLS and for ES256 JWTs.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Certificates are back-dated so that a clock a little behind does not make them "not yet valid".
_BACKDATE = datetime.timedelta(hours=1)
_LIFETIME = datetime.timedelta(days=2)


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate and its private key, in memory and as PEM files."""

    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey
    cert_path: Path
    key_path: Path

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hangar tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_pair(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> IssuedCertificate:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return IssuedCertificate(cert, key, cert_path, key_path)


class CertificateAuthority:
    """A self-signed CA that issues server certificates and JWT signing certificates."""

    def __init__(self, directory: Path, common_name: str = "hangar test CA") -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        self.directory = directory
        self.issued = _write_pair(directory, "ca", cert, key)

    @property
    def cert_path(self) -> Path:
        return self.issued.cert_path

    @property
    def cert_pem(self) -> bytes:
        return self.issued.cert_path.read_bytes()

    def _issue(
        self,
        stem: str,
        common_name: str,
        extensions: list[tuple[x509.ExtensionType, bool]],
    ) -> IssuedCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.issued.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _LIFETIME)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.issued.private_key.public_key()
                ),
                critical=False,
            )
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        cert = builder.sign(self.issued.private_key, hashes.SHA256())
        return _write_pair(self.directory, stem, cert, key)

    def issue_server_certificate(
        self,
        stem: str = "server",
        *,
        ip_addresses: tuple[str, ...] = ("127.0.0.1",),
        dns_names: tuple[str, ...] = ("localhost",),
    ) -> IssuedCertificate:
        """A TLS server certificate whose SANs name the loopback address and localhost."""
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        return self._issue(
            stem,
            dns_names[0] if dns_names else ip_addresses[0],
            [
                (x509.SubjectAlternativeName(names), False),
                (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            ],
        )

    def issue_signing_certificate(self, stem: str = "token-signer") -> IssuedCertificate:
        """A certificate for the key that signs registry bearer tokens (JWT x5c header)."""
        return self._issue(stem, "hangar test token issuer", [])
