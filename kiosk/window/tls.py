"""The kiosk's own HTTPS on 127.0.0.1: a throw-away self-signed certificate and the server's TLS context.

Stripe.js refuses live keys on pages that are not HTTPS ("Live Stripe.js integrations must use HTTPS",
Stripe.js reference), so the window loads the kiosk over TLS even though it never leaves the machine.
A new key is made at every launch and lives in a private temporary folder only while the kiosk runs;
the window trusts exactly this certificate, on 127.0.0.1 only, not any certificate there (trust_decision, and on
Linux WebKitGTK's per-host allowance: launcher.run).
"""
import base64
import datetime
import hmac
import ipaddress
import os
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


def write_certificate(folder):
    """Make a P-256 key and a certificate for 127.0.0.1 in `folder`; returns (certfile, keyfile)."""
    # P-256 rather than RSA-2048: generating it takes microseconds instead of ~100 ms at every launch.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "book-counter kiosk (this machine only)")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        # A year, and a new certificate at every launch.
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST)),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = Path(folder)
    certfile, keyfile = folder / "kiosk-cert.pem", folder / "kiosk-key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return str(certfile), str(keyfile)


def server_context(certfile, keyfile):
    """A TLS 1.2+ server context holding the certificate and its key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context


def certificate_der(certfile):
    """The DER bytes of a PEM certificate file (what a web view presents when it asks about a server)."""
    return x509.load_pem_x509_certificate(Path(certfile).read_bytes()).public_bytes(serialization.Encoding.DER)


def der_of_pem(pem):
    """DER bytes from PEM text (WebView2's ToPemEncoding()), tolerant of missing armour lines; None if unreadable."""
    lines = (line.strip() for line in str(pem or "").splitlines())
    body = "".join(line for line in lines if line and not line.startswith("-----"))
    try:
        return base64.b64decode(body, validate=True) or None
    except ValueError:
        return None


ALLOW, REFUSE, SYSTEM = "allow", "refuse", "system"


def trust_decision(origin, url, presented_der, kiosk_der):
    """What a web view should do with a server certificate it asks about: ALLOW, REFUSE or SYSTEM.

    Only the kiosk's own origin may present a certificate no authority signed, and only the one this kiosk
    made at start: anything else there is refused. Every other host (js.stripe.com, api.stripe.com) is left
    to the system's own validation, which refuses a forged certificate on a hostile network."""
    parts = urlsplit(str(url or ""))
    if f"{parts.scheme}://{parts.netloc}".lower() != origin.lower():
        return SYSTEM
    if presented_der and hmac.compare_digest(bytes(presented_der), kiosk_der):
        return ALLOW
    return REFUSE
