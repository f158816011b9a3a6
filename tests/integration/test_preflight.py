"""Preflight on the shared fleet: a good host passes, a bad one fails alone, saying what to do.

Bad hosts are made for real where a container allows it (a 32-bit userland
is a dpkg that answers armhf, as on a Pi with a 64-bit kernel and 32-bit
Raspberry Pi OS); limits a container cannot break (memory, disk, clock,
Python) are raised above what the host has instead.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from fledge import inventory

from helpers import ansible_playbook, on, recap

pytestmark = pytest.mark.lab

PLAYBOOK = """\
- name: Preflight
  hosts: all
  gather_subset: [min, virtual]
  roles:
    - role: fledge.edge.preflight
"""


def preflight(fleet: inventory.Inventory, tmp_path: Path, *extra: str) -> tuple[int, str]:
    playbook = tmp_path / "preflight.yml"
    playbook.write_text(PLAYBOOK)
    result = ansible_playbook(fleet.path, playbook, *extra, timeout=600)
    return result.returncode, result.stdout


def failed_hosts(output: str) -> set[str]:
    return {host for host, counters in recap(output).items() if counters["failed"]}


def test_good_hosts_pass_and_get_their_platform(fleet: inventory.Inventory, tmp_path: Path) -> None:
    code, out = preflight(fleet, tmp_path)
    assert code == 0, out[-3000:]
    assert not failed_hosts(out)


def test_a_32_bit_userland_fails_that_host_only(fleet: inventory.Inventory, tmp_path: Path) -> None:
    pi2 = fleet.supernodes[1]
    fake = "/usr/local/bin/dpkg"
    on(
        pi2,
        f"printf '#!/bin/sh\\necho armhf\\n' | sudo tee {fake} >/dev/null && sudo chmod 755 {fake}",
    )
    try:
        code, out = preflight(fleet, tmp_path)
    finally:
        on(pi2, f"sudo rm -f {fake}")
    assert code != 0
    assert failed_hosts(out) == {"pi-2"}
    assert f"pi-2 has a armhf userland on a {platform.machine()} kernel" in out
    assert "install the 64-bit (arm64) Raspberry Pi OS" in out


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        (
            {
                "preflight_requirements": {
                    k: {"disk_mb": 1, "memory_mb": 10**9}
                    for k in ("superlink", "systemd", "container")
                }
            },
            "of memory; a systemd host needs at least 1000000000 MB",
        ),
        (
            {
                "preflight_requirements": {
                    k: {"disk_mb": 10**9, "memory_mb": 1}
                    for k in ("superlink", "systemd", "container")
                }
            },
            # Where fledge installs (preflight_disk_path), as on the lab's hosts.
            "MB free on /opt/fledge; a systemd host needs 1000000000 MB",
        ),
        ({"preflight_clock_max_ahead": -3600}, "The clock of pi-1 is off by about"),
        ({"preflight_python_min_version": "3.99"}, "Flower 1.42 needs 3.99 or newer"),
    ],
    ids=["memory", "disk", "clock", "python"],
)
def test_limits_fail_every_host_with_a_message(
    fleet: inventory.Inventory, tmp_path: Path, extra_vars: dict, message: str
) -> None:
    code, out = preflight(fleet, tmp_path, "-e", json.dumps(extra_vars))
    assert code != 0
    assert failed_hosts(out) == {"coordinator", "pi-1", "pi-2"}
    assert message in out
