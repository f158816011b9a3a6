"""Lifecycle playbooks on a lab fleet: a rolling upgrade that waits for training, and reset.

The upgrade is started while a real training run is in progress: it must
let the run finish, then restart the devices a batch at a time, and end
with one Flower version on every host. Reset must remove fledge from one
device cleanly (and changes nothing when run again); provisioning brings
the device back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fledge import inventory, ssh

pytestmark = pytest.mark.lab

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
EXTRA_PACKAGE = "six==1.16.0"


def fledge(*args: object, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "fledge"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def playbook(name: str, inventory_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory_path), f"playbooks/{name}.yml", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )


def recap(output: str) -> dict[str, dict[str, int]]:
    """ansible-playbook's PLAY RECAP as {host: {counter: n}}."""
    hosts = {}
    for line in output[output.rindex("PLAY RECAP") :].splitlines()[1:]:
        if ":" in line and "ok=" in line:
            host, _, counters = line.partition(":")
            hosts[host.strip()] = {
                k: int(v) for k, v in (item.split("=") for item in counters.split())
            }
    return hosts


def login(host: inventory.Host):
    args = host.vars["ansible_ssh_common_args"].split()
    known_hosts = next(a.split("=", 1)[1] for a in args if a.startswith("UserKnownHostsFile="))
    return ssh.connect(
        host.address, host.port, host.user, host.vars["ansible_ssh_private_key_file"], known_hosts
    )


def on(host: inventory.Host, command: str) -> tuple[int, str]:
    with login(host) as client:
        status, out, _ = ssh.run(client, command, timeout=120)
    return status, out.strip()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[inventory.Inventory]:
    name = f"fledge-life{os.getpid()}"
    directory = tmp_path_factory.mktemp("life") / "lab"
    try:
        up = fledge("lab", "up", "--nodes", 2, "--name", name, "--dir", directory)
        assert up.returncode == 0, up.stderr[-3000:]
        provisioned = fledge("provision", "-i", directory / "inventory.yml")
        assert provisioned.returncode == 0, provisioned.stderr[-4000:]
        yield inventory.load(directory / "inventory.yml")
    finally:
        fledge("lab", "down", "--name", name, "--dir", directory)


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
    status, out = on(
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
        upgrade = playbook(
            "upgrade",
            fleet.path,
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
        status, _ = on(device, "/opt/fledge/venv/bin/python -c 'import six'")
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
    first = playbook("reset", fleet.path, "--limit", pi2.name)
    assert first.returncode == 0, first.stdout[-4000:]
    assert recap(first.stdout)[pi2.name]["changed"] > 0
    for command in (
        "test ! -e /opt/fledge",
        "test ! -e /etc/fledge",
        "test ! -e /var/lib/fledge",
        "! getent passwd fledge",
        "! systemctl cat fledge-supernode.service",
    ):
        assert on(pi2, command)[0] == 0, command
    second = playbook("reset", fleet.path, "--limit", pi2.name)
    assert second.returncode == 0 and recap(second.stdout)[pi2.name]["changed"] == 0
    # The other device is untouched and still connected.
    assert on(fleet.supernodes[0], "systemctl is-active fledge-supernode") == (0, "active")

    back = fledge("provision", "-i", fleet.path, "--limit", f"{fleet.superlink.name},{pi2.name}")
    assert back.returncode == 0, back.stderr[-4000:]
    assert on(pi2, "systemctl is-active fledge-supernode") == (0, "active")
