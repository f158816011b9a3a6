"""Lifecycle playbooks on the shared fleet, last: a rolling upgrade during training, and reset.

The upgrade starts while a real training run is certainly in progress: the
run's devices wait at a gate (tests/apps/gated) that the test opens only
once the upgrade has reached its wait and found the run. The upgrade must
let the run finish, then restart the devices a batch at a time, and end
with one Flower version on every host. Reset must remove fledge from a
device cleanly (and change nothing when run again), its SuperNode container
and images included; provisioning brings a device back.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fledge import inventory
from fledge.ansible_vars import role_defaults

from helpers import BIN, REPO, ansible_playbook, fledge, on, probe, provision, recap

# A rolling upgrade during training and a reset: the longer command
# (FLEDGE_TESTS=all); CI's budget goes to the shared fleet's other tests.
pytestmark = [pytest.mark.lab, pytest.mark.slow]

EXTRA_PACKAGE = "six==1.16.0"
GATED_APP = REPO / "tests" / "apps" / "gated"
WAIT_TASK = "Wait until no training run is in progress"
# Bounds each of the upgrade's waits (the product's default is two hours).
IDLE_TIMEOUT = 600
# The metrics account, as the monitoring role names it.
METRICS_USER = role_defaults("monitoring")["monitoring_user"]


def _running_run(fleet: inventory.Inventory, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = fledge("round", "list", "-i", fleet.path, "--format", "json", timeout=120)
        runs = json.loads(listed.stdout)["runs"] if listed.returncode == 0 else []
        running = [r for r in runs if r["status"] == "running"]
        if running:
            return running[0]
        time.sleep(2)
    pytest.fail("the training run never reached 'running'")


def _retrying(output: str) -> bool:
    """The upgrade's wait ran and found a run in progress: Ansible retries it."""
    return any("FAILED - RETRYING" in line and WAIT_TASK in line for line in output.splitlines())


def _wait_for(path: Path, process: subprocess.Popen, timeout: float) -> str:
    """The output in ``path`` once the upgrade retries its wait (and still runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = path.read_text(errors="replace")
        if _retrying(output):
            return output
        assert process.poll() is None, f"exited {process.returncode}:\n{output[-4000:]}"
        time.sleep(2)
    pytest.fail(f"the upgrade did not wait for the run within {timeout} s")


def _started_at(host: inventory.Host) -> float:
    status, out = probe(
        host, "systemctl show --timestamp=unix -P ActiveEnterTimestamp fledge-supernode"
    )
    assert status == 0 and out.startswith("@"), out
    return float(out[1:])


def _finished_at(fleet: inventory.Inventory, run_id: str) -> float:
    listed = fledge("round", "list", "-i", fleet.path, "--format", "json", timeout=120)
    assert listed.returncode == 0, listed.stderr
    (run,) = [r for r in json.loads(listed.stdout)["runs"] if r["run_id"] == run_id]
    return datetime.fromisoformat(run["finished_at"].rstrip("Z")).replace(tzinfo=UTC).timestamp()


@pytest.mark.timeout(2400)
def test_upgrade_waits_for_the_running_training_then_rolls_in_batches(
    fleet: inventory.Inventory, tmp_path: Path
) -> None:
    gate = f"gate-{uuid.uuid4().hex}"
    data_dir = fleet.supernodes[0].vars["fledge_data_dir"]
    training = subprocess.Popen(
        [str(BIN / "fledge"), "round", "start", "-i", str(fleet.path), "--app", str(GATED_APP),
         "--config", f"gate='{gate}'", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    log = tmp_path / "upgrade.log"
    upgrade = None
    try:
        _running_run(fleet)
        with log.open("w") as out:
            extra = {
                "flower_extra_packages": [EXTRA_PACKAGE],
                "upgrade_batch": 1,
                "upgrade_idle_timeout": IDLE_TIMEOUT,
            }
            upgrade = subprocess.Popen(
                [str(BIN / "ansible-playbook"), "-i", str(fleet.path), "playbooks/upgrade.yml",
                 "-e", json.dumps(extra)],
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
        # The upgrade reached its wait and found the run, which cannot end yet.
        _wait_for(log, upgrade, timeout=900)
        for device in fleet.supernodes:
            on(device, f"sudo touch {data_dir}/{gate}")
        out_json, err = training.communicate(timeout=900)
        assert upgrade.wait(timeout=1500) == 0, log.read_text()[-5000:]
    finally:
        training.kill()
        if upgrade is not None:
            upgrade.kill()
        for device in fleet.supernodes:
            probe(device, f"sudo rm -f {data_dir}/{gate}")
    run = json.loads(out_json)
    assert run["status"] == "finished:completed", err[-3000:]  # the upgrade did not break it
    output = log.read_text()
    finished = _finished_at(fleet, run["run_id"])
    for device in fleet.supernodes:
        # Restarted for the new packages, and only after the run had finished.
        assert _started_at(device) > finished, device.name
        status, _ = probe(device, f"{device.vars['_common_venv']}/bin/python -c 'import six'")
        assert status == 0, f"{EXTRA_PACKAGE} not installed on {device.name}"
    # One batch per device (serial: 1), then the version check across the fleet.
    assert output.count("PLAY [Upgrade the devices, a batch at a time]") == 2
    assert "Compare the versions across the fleet" in output
    assert all(counters["failed"] == 0 for counters in recap(output).values())


def _left_nothing(host: inventory.Host) -> None:
    """Nothing of fledge on ``host``: its directories, accounts and unit are gone."""
    v = host.vars
    for command in (
        f"test ! -e {v['fledge_install_dir']}",
        f"test ! -e {v['fledge_config_dir']}",
        f"test ! -e {v['fledge_var_dir']}",
        f"! getent passwd {v['fledge_user']}",
        f"! getent passwd {METRICS_USER}",
        f"! getent group {METRICS_USER}",
        "! systemctl cat fledge-supernode.service",
    ):
        assert probe(host, command)[0] == 0, f"{command} on {host.name}"


def test_reset_removes_a_device_cleanly_and_provisioning_brings_it_back(
    fleet: inventory.Inventory,
) -> None:
    pi1, pi2 = fleet.supernodes
    first = ansible_playbook(fleet.path, "playbooks/reset.yml", "--limit", pi2.name)
    assert first.returncode == 0, first.stdout[-4000:]
    assert recap(first.stdout)[pi2.name]["changed"] > 0
    _left_nothing(pi2)
    second = ansible_playbook(fleet.path, "playbooks/reset.yml", "--limit", pi2.name)
    assert second.returncode == 0 and recap(second.stdout)[pi2.name]["changed"] == 0
    # The other device is untouched and still connected.
    assert on(pi1, "systemctl is-active fledge-supernode") == "active"

    back = fledge("provision", "-i", fleet.path, "--limit", f"{fleet.superlink.name},{pi2.name}")
    assert back.returncode == 0, back.stderr[-4000:]
    assert on(pi2, "systemctl is-active fledge-supernode") == "active"


def test_reset_removes_the_container_runtime(fleet: inventory.Inventory) -> None:
    """A device in a container (systemd -> container on a provisioned device), then reset."""
    pi1 = fleet.supernodes[0]
    host_vars = fleet.path.parent / "host_vars"
    host_vars.mkdir(exist_ok=True)
    (host_vars / f"{pi1.name}.yml").write_text(
        "supernode_runtime: container\n"
        # No registry here: the lab's own Debian 12 root file system is the base.
        f"supernode_container_base_image: {_lab_rootfs()}\n"
    )
    switched = provision(fleet.path, "--limit", pi1.name)
    assert switched["hosts"][pi1.name]["changed"] > 0
    state = "docker container inspect --format '{{.State.Status}}' fledge-supernode"
    assert on(pi1, f"sudo {state}") == "running"
    reset = ansible_playbook(fleet.path, "playbooks/reset.yml", "--limit", pi1.name)
    assert reset.returncode == 0, reset.stdout[-4000:]
    assert on(pi1, "sudo docker ps --all --quiet") == ""
    assert on(pi1, "sudo docker image ls --quiet fledge-supernode") == ""
    _left_nothing(pi1)


def _lab_rootfs() -> str:
    from fledge.lab import engine
    from fledge.lab import image as lab_image

    return lab_image.rootfs_tag(engine.native_arch(engine.connect()))
