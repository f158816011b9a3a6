"""The whole path, for real: a lab fleet provisioned over SSH and trained on over TLS.

The shared fleet (conftest.py: a coordinator and two devices, containers
booting systemd, reached over real SSH with host keys checked) got a dry run
on its fresh hosts and was provisioned by the real collection. Here it is
provisioned again (nothing may change, with the CLI and without it, nor in
a dry run of the collection's Galaxy artifact), and then a real Flower run
on it must complete with an accuracy far above chance. Finally the CA's
private key must be on no host of the fleet.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from fledge import inventory, ssh

from helpers import (
    ansible_playbook,
    build_and_install,
    fledge,
    login,
    provision,
    recap,
    shared_fleet,
)

pytestmark = pytest.mark.lab

ROUNDS = 3
# Ten digits: chance is 10%. Softmax regression reaches ~95% on held-out data.
MIN_ACCURACY = 0.85


def test_a_dry_run_on_fresh_hosts_says_what_it_would_do_and_writes_nothing(
    fleet: inventory.Inventory,
) -> None:
    dry = shared_fleet.dry_run
    assert dry["check"] and dry["succeeded"] and dry["changed"] > 0, dry
    assert not shared_fleet.pki_after_dry_run


def test_first_provisioning_succeeds(fleet: inventory.Inventory) -> None:
    first = shared_fleet.first_provisioning
    assert first["succeeded"] and first["changed"] > 0


def test_second_provisioning_changes_nothing(fleet: inventory.Inventory) -> None:
    again = provision(fleet.path)
    changed = {host: counters["changed"] for host, counters in again["hosts"].items()}
    assert changed == {"coordinator": 0, "pi-1": 0, "pi-2": 0}


def test_plain_ansible_playbook_works_without_the_cli(fleet: inventory.Inventory) -> None:
    """`ansible-playbook -i INVENTORY playbooks/deploy.yml` from the checkout, no fledge command."""
    result = ansible_playbook(fleet.path, "playbooks/deploy.yml", collections=None)
    assert result.returncode == 0, result.stdout[-4000:]
    counters = recap(result.stdout)
    assert set(counters) == {"coordinator", "pi-1", "pi-2"}
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in counters.values()), counters


def test_galaxy_artifact_in_check_mode_reports_no_changes(
    fleet: inventory.Inventory, tmp_path: Path
) -> None:
    """The collection as Galaxy users install it, dry-run on the provisioned fleet."""
    collections = build_and_install(tmp_path)
    result = ansible_playbook(fleet.path, "fledge.edge.deploy", "--check", collections=collections)
    assert result.returncode == 0, result.stdout[-4000:]
    counters = recap(result.stdout)
    assert set(counters) == {"coordinator", "pi-1", "pi-2"}
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in counters.values()), counters


def test_round_over_tls_completes_far_above_chance(fleet: inventory.Inventory) -> None:
    result = fledge("round", "start", "-i", fleet.path, "--rounds", ROUNDS, "--format", "json")
    assert result.returncode == 0, result.stderr[-4000:]
    run = json.loads(result.stdout)
    assert run["status"] == "finished:completed"
    assert [r["round"] for r in run["rounds"]] == list(range(1, ROUNDS + 1))
    assert all(r["nodes"] == 2 for r in run["rounds"])
    final = run["rounds"][-1]["accuracy"]
    print(f"final accuracy after {ROUNDS} rounds: {final:.3f}")  # shown with pytest -s
    assert final > MIN_ACCURACY
    # The SuperLink is reached over TLS: the connection fledge wrote trusts the fleet CA.
    config = (fleet.state_dir / "flwr" / "config.toml").read_text()
    assert f'root-certificates = "{fleet.state_dir / "pki" / "ca.crt"}"' in config
    assert "insecure" not in config


def _hashes_of_small_files(client, roots: str) -> set[str]:
    """SHA-256 of every small regular file under ``roots`` on the host (as root)."""
    command = (
        f"sudo find {roots} -xdev -type f -size -64k -print0 2>/dev/null"
        " | sudo xargs -0 -r sha256sum 2>/dev/null"
    )
    status, out, _ = ssh.run(client, command, timeout=300)
    assert out, f"no files hashed (status {status})"
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_ca_private_key_is_on_no_host(fleet: inventory.Inventory) -> None:
    pki_dir = fleet.state_dir / "pki"
    ca_key = hashlib.sha256((pki_dir / "ca.key").read_bytes()).hexdigest()
    server_key = hashlib.sha256((pki_dir / "superlink.key").read_bytes()).hexdigest()
    ca_cert = hashlib.sha256((pki_dir / "ca.crt").read_bytes()).hexdigest()
    for host in fleet.hosts:
        with login(host) as client:
            found = _hashes_of_small_files(client, "/ /run /tmp /var/lib/docker")
        # The search does find what was copied (so it could find the CA key) ...
        assert ca_cert in found, host.name
        assert (server_key in found) == (host is fleet.superlink), host.name
        # ... and the CA key is not there.
        assert ca_key not in found, host.name
