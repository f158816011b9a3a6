# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""The fleet's certificate authority and the SuperLink's server certificate.

Layout of a PKI directory (0700, on the controller only)::

    ca.crt              public; copied to every host as the trust root
    ca.key              0600; never leaves the controller
    superlink.crt       the SuperLink's certificate, SANs from the inventory
    superlink.key       0600; copied to the SuperLink host only
    replaced/<UTC time>/ca.crt, ca.key
                        a CA that `fledge certs init --force` replaced (0700)

The SuperLink's files are named by its role, not by its host name: a
SuperLink host called ``ca`` must not overwrite the CA. A fleet has one
SuperLink.

Keys are ECDSA P-256: small, fast on a Raspberry Pi, accepted by every TLS
stack that Flower uses.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.fledge.edge.plugins.plugin_utils.addresses import (
    WILDCARDS,
    is_ip,
    is_valid_address,
)
from ansible_collections.fledge.edge.plugins.plugin_utils.errors import FledgeError
from ansible_collections.fledge.edge.plugins.plugin_utils.files import (
    PRIVATE_FILE,
    atomic_write,
    new_private_dir,
    private_dir,
)

CA_CERT = "ca.crt"
CA_KEY = "ca.key"
SERVER_CERT = "superlink.crt"
SERVER_KEY = "superlink.key"
# Where `fledge certs init --force` keeps the CAs it replaced.
REPLACED_DIR = "replaced"
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
EXTRA_SANS_FIELD = "superlink_tls_extra_sans"
# What the parsers raise on a file that is not the PEM they expect.
_UNREADABLE = (ValueError, TypeError, UnsupportedAlgorithm)
_CA_FIX = (
    "restore ca.crt and ca.key from a backup (pki/replaced/ keeps CAs that --force replaced), "
    "or re-create them with `fledge certs init --force` and provision the whole fleet again"
)

T = TypeVar("T")


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


def has_ca(pki_dir: Path) -> bool:
    """Whether ``pki_dir`` holds a CA, or a part of one that must not be overwritten."""
    return any((Path(pki_dir) / name).exists() for name in (CA_CERT, CA_KEY))


def init_ca(pki_dir: Path, *, common_name: str = "fledge fleet CA") -> CertificateAuthority:
    """Create a new CA in ``pki_dir``; refuse to replace one (see replace_ca)."""
    pki_dir = Path(pki_dir)
    if has_ca(pki_dir):
        raise FledgeError(
            "a certificate authority already exists here; replacing it breaks "
            "TLS on every host that trusts it",
            path=pki_dir / CA_KEY,
            fix="keep it, or pass --force and provision the whole fleet again",
        )
    return _create_ca(pki_dir, common_name)


def replace_ca(
    pki_dir: Path, *, common_name: str = "fledge fleet CA"
) -> tuple[CertificateAuthority, Path | None]:
    """Create a new CA, keeping the old one in ``replaced/<UTC time>/``.

    Returns the new CA and the folder with the old one (None if there was
    none). Replacing a CA invalidates every certificate it issued: each host
    of the fleet has to be provisioned again. To undo, copy the kept
    ``ca.crt`` and ``ca.key`` back into ``pki_dir`` and provision again.
    """
    pki_dir = Path(pki_dir)
    kept = _keep_old_ca(pki_dir) if has_ca(pki_dir) else None
    return _create_ca(pki_dir, common_name), kept


def _keep_old_ca(pki_dir: Path) -> Path:
    """Copy the CA's files into a new ``replaced/<UTC time>`` folder (0700; the key 0600)."""
    kept = new_private_dir(private_dir(pki_dir / REPLACED_DIR), _now().strftime("%Y%m%dT%H%M%SZ"))
    for name, mode in ((CA_KEY, PRIVATE_FILE), (CA_CERT, None)):
        if (pki_dir / name).exists():
            atomic_write(kept / name, (pki_dir / name).read_bytes(), mode)
    return kept


def _create_ca(pki_dir: Path, common_name: str) -> CertificateAuthority:
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


def _read_pem(path: Path, parse: Callable[[bytes], T], what: str, fix: str) -> T:
    """Parse the PEM file at ``path``; a FledgeError naming it if it is missing or garbled."""
    try:
        return parse(path.read_bytes())
    except FileNotFoundError:
        raise FledgeError(f"{what} is missing", path=path, fix=fix) from None
    except _UNREADABLE as exc:
        # cryptography's first sentence says what is wrong; the rest is a link to its FAQ.
        reason = str(exc).split(". ")[0]
        raise FledgeError(f"cannot read {what}: {reason}", path=path, fix=fix) from None


def _private_key(data: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{type(key).__name__} is not an ECDSA key")
    return key


def read_certificate(path: Path, *, what: str = "the certificate", fix: str) -> x509.Certificate:
    """The PEM certificate at ``path``, or a FledgeError that names the file and ``fix``."""
    return _read_pem(Path(path), x509.load_pem_x509_certificate, what, fix)


def load_ca(pki_dir: Path) -> CertificateAuthority:
    pki_dir = Path(pki_dir)
    if not has_ca(pki_dir):
        raise FledgeError(
            "no certificate authority found",
            path=pki_dir / CA_CERT,
            fix="run `fledge certs init --inventory INVENTORY` (or `fledge provision`)",
        )
    what = "the certificate authority"
    cert = read_certificate(pki_dir / CA_CERT, what=f"{what} ({CA_CERT})", fix=_CA_FIX)
    key = _read_pem(pki_dir / CA_KEY, _private_key, f"{what} ({CA_KEY})", _CA_FIX)
    return CertificateAuthority(cert, key)


def ensure_ca(pki_dir: Path) -> tuple[CertificateAuthority, bool]:
    """Load the CA, creating it when there is none. Returns (ca, created)."""
    if has_ca(pki_dir):
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
    listen_address: str | None = None,
    extra: Iterable[str] = (),
) -> list[str]:
    """Every name and address by which the SuperLink is reached, plus loopback.

    Devices dial ``fleet_host`` (or the address the proxy listens on); the
    SuperLink's own processes, its proxy and the operator's SSH tunnel reach
    it on the coordinator's loopback. Wildcards are not names anyone dials.
    """
    extra = _check_extra_sans(extra, host=name)
    names = [name, address, fleet_host, listen_address, *extra, *LOOPBACK_SANS]
    return list(dict.fromkeys(n for n in names if n and n not in WILDCARDS))


def _check_extra_sans(extra: Iterable[str], *, host: str) -> list[str]:
    """The operator's extra names, each a DNS name (a wildcard one too) or an IP address.

    A name a certificate cannot carry would fail later and far away: in
    the x509 library, or in a TLS handshake on every device.
    """
    fix = "list DNS names or IP addresses that clients dial, e.g. [coordinator.lan, 10.0.0.5]"
    if isinstance(extra, str):
        raise FledgeError(
            "must be a list of names, not one string", host=host, field=EXTRA_SANS_FIELD, fix=fix
        )
    extra = list(extra)
    for san in extra:
        if not _is_san(san):
            raise FledgeError(
                f"{san!r} is not a DNS name or an IP address",
                host=host,
                field=EXTRA_SANS_FIELD,
                fix=fix,
            )
    return extra


def _is_san(value: object) -> bool:
    if not isinstance(value, str):
        return False
    name = value.removeprefix("*.")
    return is_ip(value) or (not is_ip(name) and is_valid_address(name))


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
    key_path = cert_path.with_suffix(".key")
    if not cert_path.exists() or not key_path.exists():
        return ["missing"]
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        _private_key(key_path.read_bytes())
    except _UNREADABLE:  # garbled or truncated: a new pair is the repair
        return ["unreadable"]
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
    """Issue the SuperLink's certificate and key, for the host ``name``. Returns the cert path.

    ``name`` is the certificate's common name; the files are superlink.crt
    and superlink.key, whatever the host is called.
    """
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
    atomic_write(pki_dir / SERVER_KEY, _key_pem(key), PRIVATE_FILE)
    atomic_write(pki_dir / SERVER_CERT, _cert_pem(cert))
    return pki_dir / SERVER_CERT


@dataclass(frozen=True)
class EnsureResult:
    cert_path: Path
    key_path: Path
    ca_path: Path
    changed: bool
    reasons: tuple[str, ...]


def ensure_server_cert(
    pki_dir: Path,
    name: str,
    sans: Iterable[str],
    *,
    dry_run: bool = False,
    rotate: bool = False,
) -> EnsureResult:
    """Make sure a valid SuperLink certificate for ``sans`` exists; create the CA if needed.

    Idempotent: an existing certificate that matches is left alone, unless
    ``rotate`` asks for a new one (and a new key) anyway. With ``dry_run``
    nothing is written; the result says what would change.
    """
    pki_dir = Path(pki_dir)
    sans = list(sans)
    cert_path = pki_dir / SERVER_CERT
    if not has_ca(pki_dir):
        reasons: list[str] = ["no CA yet"]
        if not dry_run:
            ca, _ = ensure_ca(pki_dir)
            issue_server_cert(pki_dir, name, sans, ca)
    else:
        ca = load_ca(pki_dir)
        reasons = reasons_to_reissue(cert_path, ca, sans) or (["rotated"] if rotate else [])
        if reasons and not dry_run:
            issue_server_cert(pki_dir, name, sans, ca)
    return EnsureResult(
        cert_path=cert_path,
        key_path=pki_dir / SERVER_KEY,
        ca_path=pki_dir / CA_CERT,
        changed=bool(reasons),
        reasons=tuple(reasons),
    )
