# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""The fleet's certificate authority and the SuperLink's server certificate.

Layout of a PKI directory (0700, on the controller only)::

    ca.crt              public; copied to every host as the trust root
    ca.key              0600; never leaves the controller
    <server>.crt        the SuperLink's certificate, SANs from the inventory
    <server>.key        0600; copied to the SuperLink host only

Keys are ECDSA P-256: small, fast on a Raspberry Pi, accepted by every TLS
stack that Flower uses.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.fledge.edge.plugins.plugin_utils.errors import FledgeError
from ansible_collections.fledge.edge.plugins.plugin_utils.files import (
    PRIVATE_FILE,
    atomic_write,
    private_dir,
)

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
CA_VALID_DAYS = 3650
SERVER_VALID_DAYS = 397
# Reissue a server certificate this long before it expires.
RENEW_BEFORE = dt.timedelta(days=30)
# Pis have no real-time clock; a certificate valid from "now" is rejected by a
# device whose clock lags a little. Backdate the start of validity.
BACKDATE = dt.timedelta(hours=1)
# Every SuperLink certificate carries these: with a wildcard bind the
# SuperLink's own SuperExec connects to https://127.0.0.1:PORT.
LOOPBACK_SANS = ("127.0.0.1", "localhost")
# Addresses a server listens on, which nobody dials.
WILDCARDS = ("0.0.0.0", "::")


@dataclass(frozen=True)
class CertificateAuthority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def init_ca(
    pki_dir: Path, *, common_name: str = "fledge fleet CA", force: bool = False
) -> CertificateAuthority:
    """Create a new CA in ``pki_dir``; refuse to replace one unless ``force``.

    Replacing a CA invalidates every certificate it issued: each host of the
    fleet has to be provisioned again afterwards.
    """
    pki_dir = Path(pki_dir)
    if (pki_dir / CA_KEY).exists() and not force:
        raise FledgeError(
            "a certificate authority already exists here; replacing it breaks "
            "TLS on every host that trusts it",
            path=pki_dir / CA_KEY,
            fix="keep it, or pass --force and provision the whole fleet again",
        )
    private_dir(pki_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    # Key first: a crash in between leaves no certificate without its key.
    atomic_write(pki_dir / CA_KEY, _key_pem(key), PRIVATE_FILE)
    atomic_write(pki_dir / CA_CERT, _cert_pem(cert))
    return CertificateAuthority(cert, key)


def load_ca(pki_dir: Path) -> CertificateAuthority:
    pki_dir = Path(pki_dir)
    try:
        cert = x509.load_pem_x509_certificate((pki_dir / CA_CERT).read_bytes())
        key = serialization.load_pem_private_key((pki_dir / CA_KEY).read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise FledgeError(
            "no certificate authority found",
            path=exc.filename,
            fix="run `fledge certs init --inventory INVENTORY` (or `fledge provision`)",
        ) from None
    except ValueError as exc:
        raise FledgeError(
            f"cannot read the certificate authority: {exc}",
            path=pki_dir,
            fix="restore ca.crt and ca.key from a backup, or re-create them with "
            "`fledge certs init --force` and provision the whole fleet again",
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise FledgeError("the CA key is not an ECDSA key", path=pki_dir / CA_KEY)
    return CertificateAuthority(cert, key)


def ensure_ca(pki_dir: Path) -> tuple[CertificateAuthority, bool]:
    """Load the CA, creating it when there is none. Returns (ca, created)."""
    if (Path(pki_dir) / CA_KEY).exists():
        return load_ca(pki_dir), False
    return init_ca(pki_dir), True


def _general_names(sans: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for san in dict.fromkeys(sans):  # keep order, drop repeats
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            names.append(x509.DNSName(san))
    return names


def superlink_sans(
    *,
    name: str,
    address: str,
    fleet_host: str,
    control_host: str,
    listen_address: str | None = None,
    extra: Iterable[str] = (),
) -> list[str]:
    """Every name and address by which the SuperLink is reached, plus loopback.

    Devices dial ``fleet_host``, the controller dials ``control_host``, the
    SuperLink's own SuperExec dials the listen address (loopback when it
    listens on all addresses). Wildcards are not names anyone dials.
    """
    names = [name, address, fleet_host, control_host, listen_address, *extra, *LOOPBACK_SANS]
    return list(dict.fromkeys(n for n in names if n and n not in WILDCARDS))


def certificate_sans(cert: x509.Certificate) -> set[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in ext.value.get_values_for_type(x509.IPAddress)} | set(
        ext.value.get_values_for_type(x509.DNSName)
    )


def issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def reasons_to_reissue(cert_path: Path, ca: CertificateAuthority, sans: Iterable[str]) -> list[str]:
    """Why the certificate at ``cert_path`` must be (re)issued; empty if fine."""
    if not cert_path.exists() or not cert_path.with_suffix(".key").exists():
        return ["missing"]
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    reasons = []
    if not issued_by(cert, ca.cert):
        reasons.append("not issued by the current CA")
    if certificate_sans(cert) != set(sans):
        reasons.append("names changed")
    if cert.not_valid_after_utc - _now() < RENEW_BEFORE:
        reasons.append("expires soon")
    return reasons


def issue_server_cert(
    pki_dir: Path, name: str, sans: Iterable[str], ca: CertificateAuthority
) -> Path:
    """Issue ``<name>.crt`` and ``<name>.key`` for a TLS server. Returns the cert path."""
    sans = list(sans)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=SERVER_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_general_names(sans)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    pki_dir = private_dir(Path(pki_dir))
    cert_path = pki_dir / f"{name}.crt"
    atomic_write(cert_path.with_suffix(".key"), _key_pem(key), PRIVATE_FILE)
    atomic_write(cert_path, _cert_pem(cert))
    return cert_path


@dataclass(frozen=True)
class EnsureResult:
    cert_path: Path
    key_path: Path
    ca_path: Path
    changed: bool
    reasons: tuple[str, ...]


def ensure_server_cert(
    pki_dir: Path, name: str, sans: Iterable[str], *, dry_run: bool = False
) -> EnsureResult:
    """Make sure a valid server certificate for ``sans`` exists; create the CA if needed.

    Idempotent: an existing certificate that matches is left alone. With
    ``dry_run`` nothing is written; the result says what would change.
    """
    pki_dir = Path(pki_dir)
    sans = list(sans)
    cert_path = pki_dir / f"{name}.crt"
    if not (pki_dir / CA_KEY).exists():
        reasons: list[str] = ["no CA yet"]
        if not dry_run:
            ca, _ = ensure_ca(pki_dir)
            issue_server_cert(pki_dir, name, sans, ca)
    else:
        ca = load_ca(pki_dir)
        reasons = reasons_to_reissue(cert_path, ca, sans)
        if reasons and not dry_run:
            issue_server_cert(pki_dir, name, sans, ca)
    return EnsureResult(
        cert_path=cert_path,
        key_path=cert_path.with_suffix(".key"),
        ca_path=pki_dir / CA_CERT,
        changed=bool(reasons),
        reasons=tuple(reasons),
    )
