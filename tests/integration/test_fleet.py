"""The whole path, for real: a lab fleet provisioned over SSH and trained on over TLS.

A coordinator and two devices (containers booting systemd, reached over
real SSH with host keys checked) are provisioned by the real collection,
provisioned again (nothing may change, with the CLI and without it), and
then a real Flower run on them must complete with an accuracy far above
chance. Finally the CA's private key must be on no host of the fleet.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fledge import inventory, ssh

pytestmark = pytest.mark.lab

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
ROUNDS = 3
# Ten digits: chance is 10%. Softmax regression reaches ~95% on held-out data.
MIN_ACCURACY = 0.85


def fledge(*args: object, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run the installed `fledge` command, as a user would."""
    return subprocess.run(
        [str(BIN / "fledge"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def provision(inventory_path: Path) -> dict:
    result = fledge("provision", "-i", inventory_path, "--format", "json")
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[inventory.Inventory]:
    """A lab of a coordinator and 2 devices, provisioned once; removed afterwards."""
    name = f"fledge-e2e{os.getpid()}"
    directory = tmp_path_factory.mktemp("e2e") / "lab"
    try:
        up = fledge("lab", "up", "--nodes", 2, "--name", name, "--dir", directory)
        assert up.returncode == 0, up.stderr[-4000:]
        inventory_path = directory / "inventory.yml"
        first = provision(inventory_path)
        assert first["succeeded"] and first["changed"] > 0
        yield inventory.load(inventory_path)
    finally:
        fledge("lab", "down", "--name", name, "--dir", directory)


def test_second_provisioning_changes_nothing(fleet: inventory.Inventory) -> None:
    again = provision(fleet.path)
    changed = {host: recap["changed"] for host, recap in again["hosts"].items()}
    assert changed == {"coordinator": 0, "pi-1": 0, "pi-2": 0}


def test_plain_ansible_playbook_works_without_the_cli(fleet: inventory.Inventory) -> None:
    """`ansible-playbook -i INVENTORY playbooks/deploy.yml` from the checkout, no fledge command."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(fleet.path), "playbooks/deploy.yml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    recap = result.stdout[result.stdout.rindex("PLAY RECAP") :]
    for host in ("coordinator", "pi-1", "pi-2"):
        assert f"{host} " in recap
    assert "changed=0" in recap and "failed=0" in recap
    assert all(" changed=0 " in line for line in recap.splitlines()[1:] if "ok=" in line)


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


def _login(fleet: inventory.Inventory, host: inventory.Host):
    args = shlex.split(host.vars["ansible_ssh_common_args"])
    known_hosts = next(a.split("=", 1)[1] for a in args if a.startswith("UserKnownHostsFile="))
    return ssh.connect(
        host.address, host.port, host.user, host.vars["ansible_ssh_private_key_file"], known_hosts
    )


def test_ca_private_key_is_on_no_host(fleet: inventory.Inventory) -> None:
    pki_dir = fleet.state_dir / "pki"
    ca_key = hashlib.sha256((pki_dir / "ca.key").read_bytes()).hexdigest()
    server_key = hashlib.sha256((pki_dir / f"{fleet.superlink.name}.key").read_bytes()).hexdigest()
    ca_cert = hashlib.sha256((pki_dir / "ca.crt").read_bytes()).hexdigest()
    for host in fleet.hosts:
        with _login(fleet, host) as client:
            found = _hashes_of_small_files(client, "/ /run /tmp /var/lib/docker")
        # The search does find what was copied (so it could find the CA key) ...
        assert ca_cert in found, host.name
        assert (server_key in found) == (host is fleet.superlink), host.name
        # ... and the CA key is not there.
        assert ca_key not in found, host.name
