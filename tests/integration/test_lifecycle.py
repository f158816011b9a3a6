"""Lifecycle playbooks on a lab fleet: a rolling upgrade that waits for training, and reset.

The upgrade is started while a real training run is in progress: it must
let the run finish, then restart the devices a batch at a time, and end
with one Flower version on every host. Reset must remove fledge from one
device cleanly (and changes nothing when run again); provisioning brings
the device back.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from fledge import inventory

from helpers import BIN, ansible_playbook, fledge, lab, on, probe, provision, recap

pytestmark = pytest.mark.lab

EXTRA_PACKAGE = "six==1.16.0"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[inventory.Inventory]:
    with lab(tmp_path_factory, "life", nodes=2) as fleet:
        provision(fleet.path)
        yield fleet


def _wait_for_running_run(fleet: inventory.Inventory, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = fledge("round", "list", "-i", fleet.path, "--format", "json")
        runs = json.loads(listed.stdout)["runs"] if listed.returncode == 0 else []
        running = [r for r in runs if r["status"] == "running"]
        if running:
            return running[0]
        time.sleep(2)
    pytest.fail("the training run never reached 'running'")


def _started_at(host: inventory.Host) -> float:
    status, out = probe(
        host, "systemctl show --timestamp=unix -P ActiveEnterTimestamp fledge-supernode"
    )
    assert status == 0 and out.startswith("@"), out
    return float(out[1:])


def test_upgrade_waits_for_the_running_training_then_rolls_in_batches(
    fleet: inventory.Inventory,
) -> None:
    training = subprocess.Popen(
        [
            str(BIN / "fledge"),
            "round",
            "start",
            "-i",
            str(fleet.path),
            "--rounds",
            "3",
            "--format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_running_run(fleet)
        upgrade = ansible_playbook(
            fleet.path,
            "playbooks/upgrade.yml",
            "-e",
            json.dumps({"flower_extra_packages": [EXTRA_PACKAGE], "upgrade_batch": 1}),
        )
        out, err = training.communicate(timeout=1800)
    finally:
        training.kill()
    assert upgrade.returncode == 0, upgrade.stdout[-5000:]
    run = json.loads(out)
    assert run["status"] == "finished:completed", err[-3000:]  # the upgrade did not break it
    # It did wait: the check for runs in progress had to retry while training ran.
    assert "RETRYING" in upgrade.stdout.split("Wait until no training run is in progress")[1]
    finished = (
        datetime.fromisoformat(fledge_run_finished_at(fleet, run["run_id"]))
        .replace(tzinfo=UTC)
        .timestamp()
    )
    for device in fleet.supernodes:
        # Restarted for the new packages, and only after the run had finished.
        assert _started_at(device) > finished, device.name
        status, _ = probe(device, "/opt/fledge/venv/bin/python -c 'import six'")
        assert status == 0, f"{EXTRA_PACKAGE} not installed on {device.name}"
    # One batch per device (serial: 1), then the version check across the fleet.
    assert upgrade.stdout.count("PLAY [Upgrade the devices, a batch at a time]") == 2
    assert "Compare the versions across the fleet" in upgrade.stdout
    assert all(counters["failed"] == 0 for counters in recap(upgrade.stdout).values())


def fledge_run_finished_at(fleet: inventory.Inventory, run_id: str) -> str:
    listed = fledge("round", "list", "-i", fleet.path, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    (run,) = [r for r in json.loads(listed.stdout)["runs"] if r["run_id"] == run_id]
    return run["finished_at"].rstrip("Z")


def test_reset_removes_a_device_cleanly_and_provisioning_brings_it_back(
    fleet: inventory.Inventory,
) -> None:
    pi2 = fleet.supernodes[1]
    first = ansible_playbook(fleet.path, "playbooks/reset.yml", "--limit", pi2.name)
    assert first.returncode == 0, first.stdout[-4000:]
    assert recap(first.stdout)[pi2.name]["changed"] > 0
    for command in (
        "test ! -e /opt/fledge",
        "test ! -e /etc/fledge",
        "test ! -e /var/lib/fledge",
        "! getent passwd fledge",
        "! systemctl cat fledge-supernode.service",
    ):
        assert probe(pi2, command)[0] == 0, command
    second = ansible_playbook(fleet.path, "playbooks/reset.yml", "--limit", pi2.name)
    assert second.returncode == 0 and recap(second.stdout)[pi2.name]["changed"] == 0
    # The other device is untouched and still connected.
    assert on(fleet.supernodes[0], "systemctl is-active fledge-supernode") == "active"

    back = fledge("provision", "-i", fleet.path, "--limit", f"{fleet.superlink.name},{pi2.name}")
    assert back.returncode == 0, back.stderr[-4000:]
    assert on(pi2, "systemctl is-active fledge-supernode") == "active"
