"""The controller's record of enrolled devices: one private file per device, revocation kept."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from ansible_collections.fledge.edge.plugins.plugin_utils import registry
from fledge.errors import FledgeError

KEY = "ecdsa-sha2-nistp384 AAAAE2VjZHNh pi-1"


def test_a_registration_is_recorded_privately_and_read_back(tmp_path: Path) -> None:
    assert registry.read(tmp_path, "pi-1") is None
    enrolment = registry.record(tmp_path, "pi-1", KEY + "\n", "42")
    assert registry.read(tmp_path, "pi-1") == enrolment
    assert (enrolment.public_key, enrolment.node_id, enrolment.revoked) == (KEY, "42", False)
    path = tmp_path / "nodes" / "pi-1.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert registry.read_all(tmp_path) == {"pi-1": enrolment}


def test_revocation_is_kept_and_a_new_enrolment_keeps_the_history(tmp_path: Path) -> None:
    registry.record(tmp_path, "pi-1", KEY, "42")
    revoked = registry.revoke(tmp_path, "pi-1")
    assert revoked.revoked and revoked.node_id == "42"
    assert registry.revoke(tmp_path, "pi-1") == revoked  # twice is once
    again = registry.record(tmp_path, "pi-1", "ecdsa-sha2-nistp384 NEW", "43")
    assert not again.revoked and again.node_id == "43"
    assert [(h["node_id"], bool(h["revoked_at"])) for h in again.history] == [("42", True)]


def test_a_device_never_enrolled_can_be_revoked(tmp_path: Path) -> None:
    """A device stolen before its first provisioning finished: it must not enrol quietly."""
    assert registry.revoke(tmp_path, "pi-9").revoked


def test_a_damaged_record_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "nodes").mkdir()
    (tmp_path / "nodes" / "pi-1.json").write_text(json.dumps({"host": "pi-1"}))
    with pytest.raises(FledgeError) as caught:
        registry.read(tmp_path, "pi-1")
    assert caught.value.host == "pi-1" and "fledge node revoke" in caught.value.fix
