"""The fleet CA and the SuperLink certificate: chains verify, names are right, keys stay private."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path
from unittest import mock

import pytest
from ansible.errors import AnsibleActionFail
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from ansible_collections.fledge.edge.plugins.action.server_certificate import ActionModule
from ansible_collections.fledge.edge.plugins.plugin_utils import pki
from fledge.errors import FledgeError

SANS = pki.superlink_sans(
    name="coordinator",
    address="192.168.1.10",
    fleet_host="coordinator.lan",
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
    _, kept = pki.replace_ca(pki_dir)
    assert (pki_dir / pki.CA_KEY).read_bytes() != before
    assert kept is not None and (kept / pki.CA_KEY).read_bytes() == before


def test_second_ensure_changes_nothing(issued: pki.EnsureResult) -> None:
    before = issued.cert_path.read_bytes()
    again = pki.ensure_server_cert(issued.ca_path.parent, "coordinator", SANS)
    assert not again.changed
    assert issued.cert_path.read_bytes() == before


def test_reissued_under_a_new_ca(issued: pki.EnsureResult) -> None:
    pki_dir = issued.ca_path.parent
    new_ca, _ = pki.replace_ca(pki_dir)
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


def test_server_files_are_named_by_role_not_by_host(tmp_path: Path) -> None:
    # A SuperLink host called "ca" must not overwrite the CA's files.
    pki_dir = tmp_path / "pki"
    issued = pki.ensure_server_cert(pki_dir, "ca", [*SANS, "ca"])
    assert (issued.cert_path.name, issued.key_path.name) == ("superlink.crt", "superlink.key")
    ca = pki.load_ca(pki_dir)
    assert ca.cert.subject != load(issued.cert_path).subject
    assert pki.issued_by(load(issued.cert_path), ca.cert)
    assert sorted(p.name for p in pki_dir.iterdir()) == [
        "ca.crt",
        "ca.key",
        "superlink.crt",
        "superlink.key",
    ]


@pytest.mark.parametrize("san", ["bad name!", "-x", "x..y", "pi-1\n", ""])
def test_an_extra_san_that_is_no_name_is_refused(tmp_path: Path, san: str) -> None:
    with pytest.raises(FledgeError) as caught:
        pki.superlink_sans(
            name="coordinator",
            address="10.0.0.1",
            fleet_host="10.0.0.1",
            extra=["ok.lan", san],
        )
    assert caught.value.field == "superlink_tls_extra_sans" and caught.value.fix
    assert repr(san) in caught.value.message


def test_extra_sans_may_be_wildcards_and_addresses() -> None:
    sans = pki.superlink_sans(
        name="c", address="10.0.0.1", fleet_host="c", extra=["*.lan", "fd00::1"]
    )
    assert {"*.lan", "fd00::1"} <= set(sans)


@pytest.mark.parametrize("garbage", [b"garbage", b"", b"-----BEGIN CERTIFICATE-----\nAAAA\n"])
def test_an_unreadable_server_certificate_is_reissued(
    issued: pki.EnsureResult, garbage: bytes
) -> None:
    issued.cert_path.write_bytes(garbage)
    dry = pki.ensure_server_cert(issued.ca_path.parent, "coordinator", SANS, dry_run=True)
    assert dry.reasons == ("unreadable",) and issued.cert_path.read_bytes() == garbage
    again = pki.ensure_server_cert(issued.ca_path.parent, "coordinator", SANS)
    assert again.changed and again.reasons == ("unreadable",)
    assert pki.issued_by(load(again.cert_path), load(issued.ca_path))


def test_an_unreadable_server_key_is_reissued(issued: pki.EnsureResult) -> None:
    issued.key_path.write_text("garbage")
    again = pki.ensure_server_cert(issued.ca_path.parent, "coordinator", SANS)
    assert again.reasons == ("unreadable",)
    assert issued.key_path.read_text().startswith("-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize("name", [pki.CA_CERT, pki.CA_KEY])
def test_a_corrupt_ca_file_is_named(issued: pki.EnsureResult, name: str) -> None:
    pki_dir = issued.ca_path.parent
    (pki_dir / name).write_text("garbage")
    with pytest.raises(FledgeError) as caught:
        pki.ensure_server_cert(pki_dir, "coordinator", SANS)
    assert caught.value.path == pki_dir / name and "replaced/" in caught.value.fix
    assert (pki_dir / name).read_text() == "garbage"  # never silently replaced


def test_a_ca_certificate_without_its_key_is_not_replaced(issued: pki.EnsureResult) -> None:
    pki_dir = issued.ca_path.parent
    cert = issued.ca_path.read_bytes()
    (pki_dir / pki.CA_KEY).unlink()  # say, moved away for safekeeping
    with pytest.raises(FledgeError) as caught:
        pki.ensure_server_cert(pki_dir, "coordinator", SANS)
    assert "is missing" in caught.value.message and caught.value.path == pki_dir / pki.CA_KEY
    assert issued.ca_path.read_bytes() == cert


def test_replaced_cas_are_kept_private_and_apart(issued: pki.EnsureResult) -> None:
    pki_dir = issued.ca_path.parent
    keys = [(pki_dir / pki.CA_KEY).read_bytes()]
    kept = []
    for _ in range(2):  # twice in the same second: two folders
        _, folder = pki.replace_ca(pki_dir)
        kept.append(folder)
        keys.append((pki_dir / pki.CA_KEY).read_bytes())
    assert kept[0] != kept[1] and kept[0].parent == pki_dir / "replaced"
    assert [(k / pki.CA_KEY).read_bytes() for k in kept] == keys[:2]
    assert mode(pki_dir / "replaced") == 0o700 and mode(kept[0]) == 0o700
    assert mode(kept[0] / pki.CA_KEY) == 0o600


def run_action(pki_dir: Path, **args: object) -> dict:
    """The server_certificate action plugin, as a task on the controller would run it."""
    task = Task()
    task.action = "fledge.edge.server_certificate"
    task.args = {
        "pki_dir": str(pki_dir),
        "name": "ca",
        "address": "10.0.0.1",
        "fleet_host": "10.0.0.1",
        **args,
    }
    return ActionModule(task, mock.MagicMock(), PlayContext(), None, None, None).run(task_vars={})


def test_the_action_plugin_names_files_by_role(tmp_path: Path) -> None:
    result = run_action(tmp_path / "pki")
    assert result["cert"] == str(tmp_path / "pki" / "superlink.crt")
    assert result["key"] == str(tmp_path / "pki" / "superlink.key")
    assert pki.issued_by(load(Path(result["cert"])), load(Path(result["ca_cert"])))


def test_the_action_plugin_fails_the_task_on_a_bad_san(tmp_path: Path) -> None:
    with pytest.raises(AnsibleActionFail, match="superlink_tls_extra_sans") as caught:
        run_action(tmp_path / "pki", extra_sans=["ok.lan", "-x"])
    assert "fix:" in str(caught.value)
    assert not (tmp_path / "pki").exists()
