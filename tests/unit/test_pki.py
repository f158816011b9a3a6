"""The fleet CA and the SuperLink certificate: chains verify, names are right, keys stay private."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from ansible_collections.fledge.edge.plugins.plugin_utils import pki
from fledge.errors import FledgeError

SANS = pki.superlink_sans(
    name="coordinator",
    address="192.168.1.10",
    fleet_host="coordinator.lan",
    control_host="127.0.0.1",
    listen_address="0.0.0.0",
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture
def issued(tmp_path: Path) -> pki.EnsureResult:
    return pki.ensure_server_cert(tmp_path / "pki", "coordinator", SANS)


def test_sans_include_every_name_and_loopback_but_no_wildcard() -> None:
    assert SANS == ["coordinator", "192.168.1.10", "coordinator.lan", "127.0.0.1", "localhost"]


def test_chain_verifies_for_every_name(issued: pki.EnsureResult) -> None:
    store = Store([load(issued.ca_path)])
    cert = load(issued.cert_path)
    for name in ("coordinator", "coordinator.lan", "localhost"):
        PolicyBuilder().store(store).build_server_verifier(x509.DNSName(name)).verify(cert, [])
    assert pki.certificate_sans(cert) == set(SANS)


def test_certificate_fails_for_a_name_it_does_not_carry(issued: pki.EnsureResult) -> None:
    verifier = (
        PolicyBuilder()
        .store(Store([load(issued.ca_path)]))
        .build_server_verifier(x509.DNSName("elsewhere.example"))
    )
    with pytest.raises(x509.verification.VerificationError):
        verifier.verify(load(issued.cert_path), [])


def test_real_tls_handshake_on_loopback(issued: pki.EnsureResult) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(issued.cert_path, issued.key_path)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"hello")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(issued.ca_path))
    with (
        socket.create_connection(("127.0.0.1", port)) as raw,
        client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.recv(5) == b"hello"
    thread.join(5)
    listener.close()


def test_private_keys_are_0600_and_directory_0700(issued: pki.EnsureResult) -> None:
    pki_dir = issued.ca_path.parent
    assert mode(pki_dir) == 0o700
    assert mode(pki_dir / pki.CA_KEY) == 0o600
    assert mode(issued.key_path) == 0o600
    assert mode(issued.cert_path) == 0o644


def test_ca_is_not_overwritten_without_force(issued: pki.EnsureResult) -> None:
    pki_dir = issued.ca_path.parent
    before = (pki_dir / pki.CA_KEY).read_bytes()
    with pytest.raises(FledgeError) as caught:
        pki.init_ca(pki_dir)
    assert "--force" in caught.value.fix
    assert (pki_dir / pki.CA_KEY).read_bytes() == before
    pki.init_ca(pki_dir, force=True)
    assert (pki_dir / pki.CA_KEY).read_bytes() != before


def test_second_ensure_changes_nothing(issued: pki.EnsureResult) -> None:
    before = issued.cert_path.read_bytes()
    again = pki.ensure_server_cert(issued.ca_path.parent, "coordinator", SANS)
    assert not again.changed
    assert issued.cert_path.read_bytes() == before


def test_reissued_under_a_new_ca(issued: pki.EnsureResult) -> None:
    pki_dir = issued.ca_path.parent
    new_ca = pki.init_ca(pki_dir, force=True)
    again = pki.ensure_server_cert(pki_dir, "coordinator", SANS)
    assert again.changed and "not issued by the current CA" in again.reasons
    assert pki.issued_by(load(again.cert_path), new_ca.cert)


def test_reissued_when_names_change(issued: pki.EnsureResult) -> None:
    again = pki.ensure_server_cert(issued.ca_path.parent, "coordinator", [*SANS, "new.example"])
    assert again.changed and again.reasons == ("names changed",)
    assert "new.example" in pki.certificate_sans(load(again.cert_path))


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    result = pki.ensure_server_cert(tmp_path / "pki", "coordinator", SANS, dry_run=True)
    assert result.changed and result.reasons == ("no CA yet",)
    assert not (tmp_path / "pki").exists()


def test_validity_is_backdated_for_devices_with_a_lagging_clock(issued: pki.EnsureResult) -> None:
    cert = load(issued.cert_path)
    assert (pki._now() - cert.not_valid_before_utc) >= pki.BACKDATE - pki.dt.timedelta(minutes=1)


def test_unreadable_ca_is_a_clear_error(tmp_path: Path) -> None:
    pki_dir = tmp_path / "pki"
    pki_dir.mkdir()
    (pki_dir / pki.CA_CERT).write_text("garbage")
    (pki_dir / pki.CA_KEY).write_text("garbage")
    with pytest.raises(FledgeError) as caught:
        pki.load_ca(pki_dir)
    assert "cannot read the certificate authority" in caught.value.message
