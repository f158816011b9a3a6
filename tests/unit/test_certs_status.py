"""`fledge certs status`: expiry, issuer, and the certificate the coordinator really serves."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ansible_collections.fledge.edge.plugins.plugin_utils import pki
from fledge.main import app

runner = CliRunner()


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    """A fleet whose coordinator is this machine, its configuration in tmp_path/etc."""
    path = tmp_path / "fleet.yml"
    path.write_text(
        "all:\n  children:\n    superlink:\n      hosts:\n"
        "        coordinator: {ansible_host: 127.0.0.1, ansible_connection: local,\n"
        f"                      fledge_config_dir: '{tmp_path}/etc'}}\n"
        "    supernodes:\n      hosts:\n        pi-1:\n"
    )
    assert runner.invoke(app, ["certs", "init", "-i", str(path)]).exit_code == 0
    return path


def deploy(fleet: Path) -> None:
    """What provisioning copies to the coordinator."""
    tls = fleet.parent / "etc" / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    shutil.copy(fleet.parent / ".fledge" / "pki" / pki.SERVER_CERT, tls / "superlink.crt")


def status(fleet: Path) -> tuple[int, dict, str]:
    result = runner.invoke(app, ["certs", "status", "-i", str(fleet), "--format", "json"])
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_a_fleet_in_order_needs_no_attention(fleet: Path) -> None:
    deploy(fleet)
    code, doc, _ = status(fleet)
    assert code == 0 and doc["problems"] == []
    assert doc["superlink"]["on_coordinator"] == doc["superlink"]["sha256"]
    assert doc["ca"]["state"] == doc["superlink"]["state"] == "valid"
    assert doc["superlink"]["days_left"] > 300


def test_a_coordinator_serving_another_certificate_is_named(fleet: Path) -> None:
    deploy(fleet)
    pki_dir = fleet.parent / ".fledge" / "pki"
    pki.ensure_server_cert(pki_dir, "coordinator", ["coordinator"], rotate=True)  # not deployed
    code, doc, text = status(fleet)
    assert code == 1 and "attention" not in text  # JSON for programs, no extra words
    assert doc["superlink"]["on_coordinator"] != doc["superlink"]["sha256"]
    assert any("serves another certificate" in p for p in doc["problems"])


def test_nothing_on_the_coordinator_is_named_too(fleet: Path) -> None:
    code, doc, _ = status(fleet)
    assert code == 1 and doc["superlink"]["on_coordinator"] is None


def test_a_certificate_near_its_end_asks_for_attention(
    fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pki, "SERVER_VALID_DAYS", 10)
    pki.ensure_server_cert(fleet.parent / ".fledge" / "pki", "coordinator", ["c"], rotate=True)
    deploy(fleet)
    code, doc, _ = status(fleet)
    assert code == 1
    assert doc["superlink"]["state"] == "expires soon" and doc["superlink"]["days_left"] <= 10
