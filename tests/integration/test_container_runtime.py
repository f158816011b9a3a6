"""The SuperNode's container runtime, for real, next to the systemd runtime.

On the shared fleet, pi-2 is switched to the container runtime
(``supernode_runtime: container`` as a host variable, in a
``host_vars/pi-2.yml`` beside the lab's inventory) with `fledge provision
--limit pi-2`: its image is built on the controller from the lab's own Debian
12 root file system image (no registry here) and the controller's wheelhouse;
pi-1 keeps the systemd runtime. pi-2's data moves to /home/pi/digits, as an
operator's own data would sit there (``fledge_data_dir``), so the round on
both runtimes shows the container reading it from /home. Checked: the container's lockdown as Docker
reports it on the device, both devices connected, a second provisioning and
a dry run that change nothing, a real training run on both runtimes
together, and finally pi-2 switched back to the systemd runtime with no
container or image left behind (the fleet as this module found it). Revoking
the device in its container runs in the longer test command. A reset
of a device in a container is in test_lifecycle.py, which runs last.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from fledge import inventory
from fledge.lab import engine
from fledge.lab import image as lab_image

from helpers import fledge, provision

pytestmark = pytest.mark.lab

HOME_DATA = "/home/pi/digits"


@dataclass
class Lab:
    name: str
    directory: Path
    client: docker.DockerClient

    @classmethod
    def of(cls, fleet: inventory.Inventory) -> Lab:
        return cls(fleet.superlink.vars["fledge_lab"], fleet.path.parent, engine.connect())

    @property
    def inventory(self) -> Path:
        return self.directory / "inventory.yml"

    @property
    def arch(self) -> str:
        return engine.native_arch(self.client)

    def set_runtime(self, host: str, runtime: str, data_dir: str | None = None) -> None:
        """Host variables beside the inventory, which `fledge lab up` owns and rewrites."""
        host_vars = self.directory / "host_vars"
        host_vars.mkdir(exist_ok=True)
        (host_vars / f"{host}.yml").write_text(
            "---\n"
            f"supernode_runtime: {runtime}\n"
            # No registry here: the lab's own Debian 12 root file system is the base.
            f"supernode_container_base_image: {lab_image.rootfs_tag(self.arch)}\n"
            + (f"fledge_data_dir: {data_dir}\ndataset_name: none\n" if data_dir else "")
        )

    def run(self, host: str, *command: str) -> str:
        """A command on a lab host as root, through the Docker exec API (not over the network)."""
        code, text = self.probe(host, *command)
        assert code == 0, f"{command} on {host} exited {code}: {text[-2000:]}"
        return text

    def probe(self, host: str, *command: str) -> tuple[int, str]:
        container = self.client.containers.get(f"{self.name}-{host}")
        # timeout(1) bounds the command: the exec API has no time limit of its own.
        code, output = container.exec_run(["timeout", "300", *command], demux=False)
        return code, output.decode(errors="replace").strip()

    def node_id(self, host: str) -> str:
        """The node ID that the SuperNode now running on ``host`` logged (both runtimes)."""
        invocation = self.run(
            host, "systemctl", "show", "--property=InvocationID", "--value", "fledge-supernode"
        )
        log = self.run(
            host, "journalctl", "--no-pager", "-o", "cat", f"_SYSTEMD_INVOCATION_ID={invocation}"
        )
        ids = [line.rsplit(" ", 1)[-1] for line in log.splitlines() if "SuperNode ID:" in line]
        assert ids, f"no node ID in the log of {host}"
        return ids[-1]


@pytest.fixture(scope="module")
def lab(fleet: inventory.Inventory) -> Iterator[Lab]:
    """The shared fleet with pi-2 switched to the container runtime."""
    lab = Lab.of(fleet)
    # The operator's copy of pi-2's data, in the login user's home.
    lab.run("pi-2", "install", "-d", "-o", "pi", "-g", "pi", "-m", "0755", HOME_DATA)
    lab.run("pi-2", "sh", "-c", f"install -o pi -g pi -m 0644 /var/lib/fledge/data/* {HOME_DATA}")
    lab.set_runtime("pi-2", "container", data_dir=HOME_DATA)
    try:
        switched = provision(lab.inventory, "--limit", "pi-2")
        assert switched["succeeded"] and switched["hosts"]["pi-2"]["changed"] > 0
        yield lab
    finally:
        # The last test switched pi-2 back; its host variables go too (also
        # when a test failed: the next provisioning brings pi-2 back then).
        (lab.directory / "host_vars" / "pi-2.yml").unlink(missing_ok=True)
        lab.run("pi-2", "rm", "-rf", HOME_DATA)


def test_pi2_supernode_runs_in_a_locked_down_container(lab: Lab) -> None:
    (info,) = json.loads(lab.run("pi-2", "docker", "container", "inspect", "fledge-supernode"))
    assert info["State"]["Running"]
    uid = lab.run("pi-2", "id", "-u", "fledge")
    gid = lab.run("pi-2", "id", "-g", "fledge")
    assert info["Config"]["User"] == f"{uid}:{gid}" and uid != "0"
    host = info["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["Privileged"] is False and host["NetworkMode"] == "host"
    assert "/tmp" in host["Tmpfs"]
    mounts = {m["Destination"]: m["RW"] for m in info["Mounts"]}
    assert mounts == {
        "/etc/fledge/tls/ca.crt": False,
        "/etc/fledge/identity/supernode.key": False,
        HOME_DATA: False,
        "/var/lib/fledge/supernode": True,
        # fledge's hook for Flower's app processes (a working directory per run).
        "/opt/fledge/python": False,
    }
    # The image came from the controller (no registry), labelled for this device.
    (image,) = json.loads(lab.run("pi-2", "docker", "image", "inspect", info["Config"]["Image"]))
    assert image["Architecture"] == lab.arch
    assert image["Config"]["Labels"]["io.fledge.arch"] == lab.arch
    # The unit runs the docker client, not as root, and shows the SuperNode's log.
    status = lab.run(
        "pi-2",
        "systemctl",
        "show",
        "fledge-supernode",
        "--property=ExecMainStatus,User,DynamicUser",
    )
    assert "DynamicUser=yes" in status
    # pi-1 keeps the systemd runtime: no container there.
    assert lab.probe("pi-1", "docker", "ps", "--all", "--quiet") == (0, "")


def test_both_devices_are_connected(lab: Lab) -> None:
    result = fledge("round", "nodes", "-i", lab.inventory, "--format", "json")
    assert result.returncode == 0, result.stderr[-3000:]
    online = {n["node_id"] for n in json.loads(result.stdout)["nodes"] if n["status"] == "online"}
    assert {lab.node_id("pi-1"), lab.node_id("pi-2")} <= online


def test_second_provisioning_changes_nothing(lab: Lab) -> None:
    # Every task, not the converged check; on pi-2 (the fleet as a whole: test_fleet.py).
    again = provision(lab.inventory, "--full", "--limit", "pi-2")
    changed = {host: recap["changed"] for host, recap in again["hosts"].items()}
    assert changed == {"pi-2": 0}


def test_dry_run_reports_no_changes(lab: Lab) -> None:
    # On pi-2, as above (a whole provisioned fleet's dry run: test_second_fleet.py).
    dry = provision(lab.inventory, "--check", "--limit", "pi-2")
    assert dry["check"] and dry["succeeded"]
    changed = {host: recap["changed"] for host, recap in dry["hosts"].items()}
    assert changed == {"pi-2": 0}


def test_a_round_completes_on_both_runtimes(lab: Lab) -> None:
    result = fledge("round", "start", "-i", lab.inventory, "--rounds", 2, "--format", "json")
    assert result.returncode == 0, result.stderr[-4000:]
    run = json.loads(result.stdout)
    assert run["status"] == "finished:completed"
    assert [r["nodes"] for r in run["rounds"]] == [2, 2]
    # The container's ClientApp did the work: its log is in the unit's journal.
    log = lab.run("pi-2", "journalctl", "--no-pager", "-o", "cat", "-u", "fledge-supernode")
    assert "Start `flwr-clientapp` process" in log


@pytest.mark.slow  # revocation itself is in CI (test_security.py, the systemd runtime)
def test_revoking_a_device_in_a_container_stops_it_and_deletes_its_key(lab: Lab) -> None:
    key = "/etc/fledge/identity/supernode.key"
    revoked = fledge("node", "revoke", "pi-2", "-i", lab.inventory)
    assert revoked.returncode == 0, revoked.stderr[-3000:]
    assert lab.run("pi-2", "docker", "ps", "--all", "--quiet") == ""
    assert lab.probe("pi-2", "test", "-e", key)[0] != 0
    back = provision(lab.inventory, "--limit", "pi-2", "--enrol", "pi-2")
    assert back["succeeded"]
    inspect = ("docker", "container", "inspect", "--format", "{{.State.Status}}")
    assert lab.run("pi-2", *inspect, "fledge-supernode") == "running"


def test_switching_back_to_systemd_leaves_nothing_behind(lab: Lab) -> None:
    lab.set_runtime("pi-2", "systemd")
    switched = provision(lab.inventory, "--limit", "pi-2")
    assert switched["hosts"]["pi-2"]["changed"] > 0
    # The engine, idle now, was stopped; asking it below starts it through its socket.
    states = lab.probe("pi-2", "systemctl", "is-active", "docker.socket", "docker.service")
    assert states[1].split() == ["active", "inactive"], states
    assert lab.run("pi-2", "docker", "ps", "--all", "--quiet") == ""
    assert lab.run("pi-2", "docker", "image", "ls", "--quiet", "fledge-supernode") == ""
    pid = lab.run("pi-2", "systemctl", "show", "--property=MainPID", "--value", "fledge-supernode")
    command = lab.run("pi-2", "cat", f"/proc/{pid}/cmdline").replace("\0", " ")
    assert "/opt/fledge/venv/bin/flower-supernode" in command
    assert lab.run("pi-2", "stat", "--format=%U", f"/proc/{pid}") == "fledge"
    # Verified by provisioning too; here, from the SuperLink's side.
    result = fledge("round", "nodes", "-i", lab.inventory, "--format", "json")
    online = {n["node_id"] for n in json.loads(result.stdout)["nodes"] if n["status"] == "online"}
    assert lab.node_id("pi-2") in online
