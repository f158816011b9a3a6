"""fledge's textfile metrics (the monitoring role's script) and the role's version default."""

from __future__ import annotations

import ast
import datetime
import importlib.util
import os
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

import fledge

REPO = Path(__file__).resolve().parents[2]
ROLE = REPO / "collection" / "roles" / "monitoring"
SCRIPT = ROLE / "files" / "fledge_metrics.py"
_spec = importlib.util.spec_from_file_location("fledge_metrics", SCRIPT)
assert _spec and _spec.loader
metrics = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(metrics)


def parse(text: str) -> dict[str, str]:
    """Sample lines as {'name{labels}': 'value'}; checks that every family has HELP and TYPE."""
    samples, described = {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            described.add((line.split()[1], line.split()[2]))
            continue
        series, value = line.rsplit(" ", 1)
        name = series.split("{", 1)[0]
        assert {(name, "HELP"), (name, "TYPE")} <= {(n, k) for k, n in described}, name
        samples[series] = value
    return samples


def self_signed(path: Path, not_after: datetime.datetime) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(not_after - datetime.timedelta(days=1))
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return path


def test_render_gives_every_family_with_help_and_type() -> None:
    text = metrics.render(
        "0.1.0",
        "1.42.0",
        {"fledge-supernode": True, "fledge-superlink": False},
        {"/etc/fledge/tls/ca.crt": 2111223987.0},
    )
    assert parse(text) == {
        'fledge_info{fledge_version="0.1.0",flwr_version="1.42.0"}': "1",
        'fledge_service_up{unit="fledge-supernode"}': "1",
        'fledge_service_up{unit="fledge-superlink"}': "0",
        'fledge_certificate_expiry_seconds{path="/etc/fledge/tls/ca.crt"}': "2111223987",
    }
    assert text.endswith("\n")


def test_label_values_are_escaped() -> None:
    text = metrics.render('1"2\\3\n4', "none", {}, {})
    assert 'fledge_version="1\\"2\\\\3\\n4"' in text
    assert len(text.splitlines()) == 7  # the newline did not split the sample


def test_collect_reads_certificates_and_units(tmp_path: Path, capsys) -> None:
    not_after = datetime.datetime(2031, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    cert = self_signed(tmp_path / "ca.crt", not_after)
    missing = tmp_path / "missing.crt"
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate")
    text = metrics.collect(
        "0.1.0", ["fledge-supernode", "other"], [cert, missing, garbage], lambda u: u == "other"
    )
    samples = parse(text)
    assert samples[f'fledge_certificate_expiry_seconds{{path="{cert}"}}'] == str(
        int(not_after.timestamp())
    )
    assert samples['fledge_service_up{unit="fledge-supernode"}'] == "0"
    assert samples['fledge_service_up{unit="other"}'] == "1"
    # Unreadable certificates are left out and logged, the rest is still written.
    assert not any(str(missing) in s or str(garbage) in s for s in samples)
    assert str(missing) in capsys.readouterr().err


def test_main_replaces_the_file_atomically_and_world_readable(tmp_path: Path) -> None:
    output = tmp_path / "fledge.prom"
    output.write_text("old\n")
    inode = output.stat().st_ino
    os.umask(0o077)  # even under a strict umask the node exporter must read it
    try:
        assert metrics.main(["--output", str(output), "--fledge-version", "9.9.9"]) == 0
    finally:
        os.umask(0o022)
    assert output.stat().st_ino != inode  # a new file renamed over the old one
    assert stat.S_IMODE(output.stat().st_mode) == 0o644
    assert 'fledge_version="9.9.9"' in output.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["fledge.prom"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch) -> None:
    output = tmp_path / "fledge.prom"
    output.write_text("old\n")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(metrics.os, "replace", broken_replace)
    with pytest.raises(OSError):
        metrics.write_atomically(output, "new\n")
    assert output.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["fledge.prom"]


def test_unit_is_active_asks_systemctl(tmp_path: Path, monkeypatch) -> None:
    systemctl = tmp_path / "systemctl"
    systemctl.write_text('#!/bin/sh\n[ "$3" = "up.service" ]\n')
    systemctl.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert metrics.unit_is_active("up") is True
    assert metrics.unit_is_active("down") is False


def test_script_parses_as_the_hosts_python() -> None:
    # Hosts run Python 3.11 (bookworm); the controller may run a newer one.
    ast.parse(SCRIPT.read_text(), feature_version=(3, 11))


def test_role_reports_this_fledge_release() -> None:
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    galaxy = yaml.safe_load((REPO / "collection" / "galaxy.yml").read_text())
    assert defaults["monitoring_fledge_version"] == fledge.__version__ == galaxy["version"]
