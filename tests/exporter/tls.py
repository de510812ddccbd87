"""A throwaway certificate authority for TLS tests: valid, renewed, expired, wrong-host certs."""

import datetime
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Certificate:
    cert_file: Path
    key_file: Path
    not_after: datetime.datetime

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.serve_from(context)
        return context

    def serve_from(self, context: ssl.SSLContext) -> None:
        """Make `context` present this certificate from the next handshake on."""
        context.load_cert_chain(self.cert_file, self.key_file)


class CertificateAuthority:
    """A root certificate plus what it issues, all written as PEM files under `directory`."""

    def __init__(self, directory: Path, name: str = "sefaria-status test CA") -> None:
        self.directory = directory
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        self._cert = (
            _builder(self._name, self._name, self._key, now - _DAY, now + 365 * _DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_file = directory / "ca.pem"
        self.cert_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def client_context(self) -> ssl.SSLContext:
        """What a check uses: verify peers against this CA only."""
        return ssl.create_default_context(cafile=self.cert_file)

    def issue(
        self,
        name: str,
        host: str = LOOPBACK,
        days: int = 30,
        starts: datetime.datetime | None = None,
    ) -> Certificate:
        """A leaf certificate for `host` (an IP or a DNS name), valid `days` from `starts`."""
        key = ec.generate_private_key(ec.SECP256R1())
        begin = starts or _now() - _DAY
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
        cert = (
            _builder(subject, self._name, key, begin, begin + days * _DAY)
            .add_extension(x509.SubjectAlternativeName([_alt_name(host)]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return _write(self.directory, name, cert, key)


def self_signed(directory: Path, host: str = LOOPBACK) -> Certificate:
    """A certificate no authority vouches for."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = _now()
    cert = (
        _builder(name, name, key, now - _DAY, now + 30 * _DAY)
        .add_extension(x509.SubjectAlternativeName([_alt_name(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return _write(directory, "self-signed", cert, key)


_DAY = datetime.timedelta(days=1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write(
    directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> Certificate:
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_file, key_file, cert.not_valid_after_utc)
