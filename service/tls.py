"""Self-signed certificates for https (``farview serve --make-cert``).

Writes ``<data-dir>/tls/cert.pem`` and ``key.pem`` (0600) for the names clients will use: the
public URL's host, every address the service binds (all of the machine's addresses for a
wildcard bind), ``localhost``, ``127.0.0.1`` and ``::1``; valid one year. An existing
certificate is reused while it is valid for 7 more days AND names all of them; otherwise a new
one is made. Clients trust it by path (``--ca-cert <data-dir>/tls/cert.pem``, or
``verify=`` in the Python API); :func:`fingerprint` is what to compare out of band.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from pathlib import Path

import psutil
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from farview.service.auth import write_private

ALWAYS = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("0.0.0.0", "::", "")


def names_for(bind_host: str, public_host: str | None) -> list[str]:
    """What a certificate must name for a service bound to ``bind_host`` and reached at
    ``public_host``: those, the loopback names, and for a wildcard bind every local address."""
    names = [*ALWAYS]
    if public_host:
        names.append(public_host)
    if bind_host in WILDCARDS:
        for addresses in psutil.net_if_addrs().values():
            for a in addresses:
                address = a.address.split("%")[0]
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    continue
                names.append(address)
    elif bind_host:
        names.append(bind_host)
    return list(dict.fromkeys(n.strip("[]") for n in names))


def _san(names: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _named(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(
        san.get_values_for_type(x509.DNSName))


def make_self_signed(data_dir: Path, names: Iterable[str] = ALWAYS) -> tuple[Path, Path]:
    """Return (cert path, key path), creating them when absent, about to expire, or not naming
    every one of ``names``."""
    wanted = list(dict.fromkeys(names))
    tls_dir = data_dir / "tls"
    cert_path, key_path = tls_dir / "cert.pem", tls_dir / "key.pem"
    now = dt.datetime.now(dt.UTC)
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        normalised = {str(ipaddress.ip_address(n)) if _is_ip(n) else n for n in wanted}
        if cert.not_valid_after_utc - now > dt.timedelta(days=7) and normalised <= _named(cert):
            return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    # the public host (names_for lists it right after the loopback names), else the bound
    # address: the name a person looks for (it was the last local address, often link-local)
    first = next((n for n in wanted if n not in ALWAYS), "localhost")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"farview {first}")])
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(_san(wanted), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    tls_dir.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def fingerprint(cert_path: Path) -> str:
    """SHA-256 of the certificate, as browsers and ``openssl x509 -fingerprint`` show it."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
