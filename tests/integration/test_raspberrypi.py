"""The raspberrypi role on a lab device made to look like a Raspberry Pi 5.

A lab device has no device tree, so the test gives the role a model file
and a boot command line of a real Pi (the role's paths are variables for
other boot layouts anyway). The role must append the memory cgroup options
once, reboot the device through its handler (a real reboot: systemd stops,
the container comes back on the same SSH port), and change and reboot
nothing on a second run. A host that is not a Pi is left alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fledge import inventory

from helpers import ansible_playbook, on, recap

pytestmark = pytest.mark.lab

FAKE = "/srv/fake-pi"
MODEL = "Raspberry Pi 5 Model B Rev 1.0"
CMDLINE = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 rootwait"
PLAYBOOK = f"""\
- name: Prepare the Pis
  hosts: all
  become: true
  gather_facts: false
  vars:
    # Only the device gets the fake files: the coordinator stays a plain host.
    raspberrypi_model_path: {FAKE}/model
    raspberrypi_cmdline_paths: [{FAKE}/cmdline.txt]
  roles:
    - role: fledge.edge.raspberrypi
"""


def run_role(fleet: inventory.Inventory, playbook: Path, *args: str) -> str:
    result = ansible_playbook(fleet.path, playbook, *args, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:]
    return result.stdout


def boot_marker(host: inventory.Host) -> str:
    """Changes with every boot of a lab host (PID 1's start time)."""
    return on(host, "stat -c %Y /proc/1")


@pytest.fixture
def pi(fleet: inventory.Inventory) -> inventory.Host:
    device = fleet.supernodes[0]
    on(
        device,
        f"sudo mkdir -p {FAKE} && printf '{MODEL}\\0' | sudo tee {FAKE}/model >/dev/null"
        f" && echo '{CMDLINE}' | sudo tee {FAKE}/cmdline.txt >/dev/null",
    )
    return device


def test_memory_cgroup_is_turned_on_once_with_one_reboot(
    fleet: inventory.Inventory, pi: inventory.Host, tmp_path: Path
) -> None:
    playbook = tmp_path / "pis.yml"
    playbook.write_text(PLAYBOOK)
    before = boot_marker(pi)
    coordinator_before = boot_marker(fleet.superlink)

    first = run_role(fleet, playbook)
    assert f"{MODEL}" in first
    assert on(pi, f"cat {FAKE}/cmdline.txt") == f"{CMDLINE} cgroup_memory=1 cgroup_enable=memory"
    rebooted = boot_marker(pi)
    assert rebooted != before, "the Pi was not rebooted"
    assert (
        "RUNNING HANDLER [fledge.edge.raspberrypi : Reboot to apply the kernel command line]"
        in first
    )
    # The coordinator is no Pi: nothing changed there, no reboot.
    assert boot_marker(fleet.superlink) == coordinator_before
    assert "not a Raspberry Pi" in first

    second = run_role(fleet, playbook)
    assert {host: counters["changed"] for host, counters in recap(second).items()} == {
        host.name: 0 for host in fleet.hosts
    }
    assert boot_marker(pi) == rebooted, "rebooted although nothing changed"


def test_without_permission_to_reboot_it_only_reports(
    fleet: inventory.Inventory, pi: inventory.Host, tmp_path: Path
) -> None:
    playbook = tmp_path / "pis.yml"
    playbook.write_text(PLAYBOOK)
    before = boot_marker(pi)
    out = run_role(fleet, playbook, "-e", "raspberrypi_reboot=false")
    assert "must reboot before Docker can use memory limits" in out
    assert on(pi, f"cat {FAKE}/cmdline.txt").endswith("cgroup_memory=1 cgroup_enable=memory")
    assert boot_marker(pi) == before
