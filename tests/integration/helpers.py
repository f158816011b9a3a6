"""What the lab tests share: fledge and Ansible run as an operator runs them, SSH to lab hosts,
and the labs themselves (one shared fleet, see conftest.py).

Everything goes through the installed commands (`fledge`, `ansible-playbook`)
and real SSH with the lab's known_hosts, never through Docker's back door,
so the tests see what an operator sees. Every process and SSH command has a
time limit.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from paramiko import SSHClient

from fledge import inventory, ssh

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
# Playbooks find this checkout's collection (never a copy installed elsewhere).
COLLECTIONS = REPO / "playbooks" / "collections"
# Every lab of this run carries it; `fledge lab down --label io.fledge.test`
# removes what any run left.
TEST_LABEL = "io.fledge.test"
RUN_LABEL = f"{TEST_LABEL}={os.getpid()}-{int(time.time())}"
# The shared fleet's settings (group_vars/all.yml beside its inventory): the
# devices' metrics every 10 s and scrapes every 5 s, not a real fleet's 60 s
# and 15 s, so that a stopped service shows in Prometheus within seconds.
SHARED_FLEET_VARS = {
    "monitoring_metrics_interval": 10,
    "monitoring_prometheus_scrape_interval": "5s",
}
# Seconds a provisioning of a fresh lab fleet may take, on a loaded machine.
PROVISION_TIMEOUT = 1200


def fledge(*args: object, timeout: float = PROVISION_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run the installed `fledge` command."""
    return subprocess.run(
        [str(BIN / "fledge"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def provision(inventory_path: Path, *args: str) -> dict:
    """`fledge provision --format json`, which must succeed; its report."""
    result = fledge("provision", "-i", inventory_path, "--format", "json", *args)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


def ansible_playbook(
    inventory_path: Path,
    playbook: str | Path,
    *args: str,
    collections: Path | None = COLLECTIONS,
    timeout: float = PROVISION_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """`ansible-playbook` from the repository root (``playbooks/x.yml``, a file, or a FQCN).

    ``collections`` is ANSIBLE_COLLECTIONS_PATH; None leaves Ansible to find
    the collection as a user's run would (``playbooks/collections``).
    """
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    env.pop("ANSIBLE_COLLECTIONS_PATH", None)
    if collections is not None:
        env |= {
            "ANSIBLE_COLLECTIONS_PATH": str(collections),
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
        }
    return subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory_path), str(playbook), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def build_and_install(tmp: Path) -> Path:
    """Build the collection's Galaxy artifact and install it into a fresh collections dir."""
    dist, collections = tmp / "dist", tmp / "collections"
    galaxy = str(BIN / "ansible-galaxy")

    # fledge's own copy is on sys.path (the wheel ships it; an editable
    # install links the checkout's): Galaxy would call it installed already.
    env = {**os.environ, "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False"}

    def run(*args: str) -> None:
        result = subprocess.run(
            [galaxy, "collection", *args], cwd=REPO, env=env, capture_output=True, text=True,
            timeout=900, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr

    run("build", "collection", "--output-path", str(dist))
    (artifact,) = dist.glob("fledge-edge-*.tar.gz")
    run("install", str(artifact), "-p", str(collections))
    return collections


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


@contextmanager
def lab(
    tmp_path_factory: pytest.TempPathFactory, prefix: str, nodes: int
) -> Iterator[inventory.Inventory]:
    """A lab of a coordinator and ``nodes`` devices, removed afterwards whatever happens."""
    name = f"fledge-{prefix}{os.getpid()}"
    directory = tmp_path_factory.mktemp(prefix) / "lab"
    try:
        up = fledge(
            "lab", "up", "--nodes", nodes, "--name", name, "--dir", directory,
            "--label", RUN_LABEL, timeout=900,
        )  # fmt: skip
        assert up.returncode == 0, up.stderr[-4000:]
        yield inventory.load(directory / "inventory.yml")
    finally:
        fledge("lab", "down", "--name", name, "--dir", directory, timeout=300)


def remove_labs_of_this_run() -> None:
    """Whatever this run's fixtures could not remove (an interrupted setup, say)."""
    fledge("lab", "down", "--label", RUN_LABEL, timeout=300)


class SharedFleet:
    """The lab fleet that most lab tests share: started, dry-run and provisioned once.

    The reports of the dry run on the fresh hosts and of the first
    provisioning are kept for the tests that check them (test_fleet.py).
    """

    def __init__(self) -> None:
        self._lab: Any = None
        self.inventory: inventory.Inventory | None = None
        self.dry_run: dict = {}
        self.first_provisioning: dict = {}
        self.pki_after_dry_run = True

    def get(self, tmp_path_factory: pytest.TempPathFactory) -> inventory.Inventory:
        if self.inventory is None:
            self._lab = lab(tmp_path_factory, "fleet", nodes=2)
            fleet = self._lab.__enter__()
            try:
                group_vars = fleet.path.parent / "group_vars"
                group_vars.mkdir()
                (group_vars / "all.yml").write_text(json.dumps(SHARED_FLEET_VARS))
                self.dry_run = provision(fleet.path, "--check")
                self.pki_after_dry_run = (fleet.state_dir / "pki").exists()
                self.first_provisioning = provision(fleet.path)
            except BaseException:
                self.close()
                raise
            self.inventory = fleet
        return self.inventory

    def close(self) -> None:
        if self._lab is not None:
            lab, self._lab, self.inventory = self._lab, None, None
            lab.__exit__(None, None, None)


shared_fleet = SharedFleet()


def login(host: inventory.Host) -> SSHClient:
    """An SSH session as the inventory's user, checking the lab's host keys."""
    args = shlex.split(host.vars["ansible_ssh_common_args"])
    known_hosts = next(a.split("=", 1)[1] for a in args if a.startswith("UserKnownHostsFile="))
    return ssh.connect(
        host.address, host.port, host.user, host.vars["ansible_ssh_private_key_file"], known_hosts
    )


def probe(host: inventory.Host, command: str, timeout: float = 120) -> tuple[int, str]:
    """Run ``command`` on ``host`` over SSH; its status and stripped output."""
    with login(host) as client:
        status, out, _ = ssh.run(client, command, timeout=timeout)
    return status, out.strip()


def on(host: inventory.Host, command: str, timeout: float = 120) -> str:
    """Run ``command`` on ``host`` over SSH, which must succeed; its stripped output."""
    with login(host) as client:
        status, out, err = ssh.run(client, command, timeout=timeout)
    assert status == 0, f"{command!r} on {host.name} exited {status}: {err[-2000:]}"
    return out.strip()
