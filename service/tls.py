"""Self-signed certificates for local https (``farview serve --make-cert``).

Writes ``<data-dir>/tls/cert.pem`` and ``key.pem`` (0600) for ``localhost`` and ``127.0.0.1``
(and ``::1``), valid one year; reuses them while they are still valid for 7 days or more.
Clients trust the certificate by path (``verify=<data-dir>/tls/cert.pem``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from farview.service.auth import write_private


def make_self_signed(data_dir: Path) -> tuple[Path, Path]:
    """Return (cert path, key path), creating them when absent or about to expire."""
    tls_dir = data_dir / "tls"
    cert_path, key_path = tls_dir / "cert.pem", tls_dir / "key.pem"
    now = dt.datetime.now(dt.UTC)
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if cert.not_valid_after_utc - now > dt.timedelta(days=7):
            return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "farview local")])
    san = x509.SubjectAlternativeName([
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ])
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    tls_dir.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
