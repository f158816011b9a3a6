"""`fledge fleet status`: every host at a glance, and each thing that needs attention.

The seams are faked: the hosts' shells (fledge.remote.shell, where SSH
sessions come from), the operator's channel to the Control API
(fledge.control.channel) and the flwr CLI (fledge.flower.cli.run_flwr).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from ansible_collections.fledge.edge.plugins.plugin_utils import pki, registry
from fledge import control, fleet_status, remote, services
from fledge.collection import collection_dir
from fledge.errors import FledgeError
from fledge.flower import cli
from fledge.flower.cli import FlwrResult
from fledge.main import app

runner = CliRunner()
PIN = "1.42.0"
KEY = "ecdsa-sha2-nistp384 AAAA"
NODE_IDS = {"pi-1": "101", "pi-2": "102", "pi-3": "103"}
DEVICES = ("pi-1", "pi-2", "pi-3")


@dataclass
class FakeHost:
    """What one host answers."""

    reachable: bool = True
    states: dict[str, str] = field(default_factory=dict)  # unit -> state; default active
    venv_version: str | None = PIN
    container_version: str | None = PIN  # None: the container does not run
    sudo_password: bool = False
    certificate: bytes | None = None  # the coordinator's superlink.crt
    hang: tuple[str, ...] = ()  # commands (argv[0]) that time out


class FakeShell:
    def __init__(self, name: str, host: FakeHost, calls: list) -> None:
        self.name, self.host, self.calls = name, host, calls

    def run(self, argv: Sequence[str], timeout: float = 60.0) -> tuple[int, str, str]:
        self.calls.append((self.name, list(argv), timeout))
        argv = list(argv)
        if argv[0] in self.host.hang:
            raise FledgeError(f"`{argv[0]}` gave no output for {timeout} s")
        if argv[:3] == ["sudo", "-n", "--"]:
            if self.host.sudo_password:
                return 1, "", "sudo: a password is required\n"
            argv = argv[3:]
        if argv[:2] == ["systemctl", "is-active"]:
            states = [self.host.states.get(unit, "active") for unit in argv[2:]]
            return (0 if set(states) == {"active"} else 3), "\n".join(states) + "\n", ""
        if argv[0].endswith("/bin/python"):
            version = self.host.venv_version
            return (0, version + "\n", "") if version else (127, "", "No such file or directory")
        if argv[:2] == ["docker", "exec"]:
            version = self.host.container_version
            return (0, version + "\n", "") if version else (1, "", "No such container")
        if argv[0] == "cat":
            pem = self.host.certificate
            return (0, pem.decode(), "") if pem else (1, "", "No such file or directory")
        raise AssertionError(f"unexpected command on {self.name}: {argv}")


@dataclass
class Fleet:
    path: Path
    state_dir: Path
    hosts: dict[str, FakeHost]
    nodes: list[dict]
    calls: list = field(default_factory=list)
    superlink_down: bool = False

    def status(self, *args: str) -> tuple[int, dict, str]:
        result = runner.invoke(app, ["fleet", "status", "-i", str(self.path), *args])
        assert "Traceback" not in result.output, result.output
        doc = json.loads(result.stdout) if "json" in args else {}
        return result.exit_code, doc, result.stderr

    def json(self) -> tuple[int, dict]:
        code, doc, _ = self.status("--format", "json")
        return code, doc

    def node(self, host: str, status: str) -> None:
        for node in self.nodes:
            if node["node-id"] == NODE_IDS[host]:
                node["status"] = status
                node["online-at"] = "N/A" if status != "online" else node["online-at"]
                node["offline-at"] = "2026-12-02 10:00:00Z" if status != "online" else "N/A"


def node_doc(node_id: str, status: str = "online") -> dict:
    return {
        "node-id": node_id,
        "status": status,
        "online-at": "2026-12-02 09:00:00Z",
        "offline-at": "N/A",
    }


INVENTORY = """\
all:
  vars: {ansible_user: pi}
  children:
    superlink:
      hosts:
        coordinator: {ansible_host: 10.0.0.1}
    supernodes:
      hosts:
        pi-1: {ansible_host: 10.0.0.21}
        pi-2: {ansible_host: 10.0.0.22}
        pi-3: {ansible_host: 10.0.0.23, supernode_runtime: container}
"""


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    """A provisioned fleet in order: three devices (pi-3 runs the container runtime)."""
    path = tmp_path / "fleet.yml"
    path.write_text(INVENTORY)
    assert runner.invoke(app, ["certs", "init", "-i", str(path)]).exit_code == 0
    state = tmp_path / ".fledge"
    for host, node_id in NODE_IDS.items():
        registry.record(state, host, KEY, node_id)
    served = (state / "pki" / pki.SERVER_CERT).read_bytes()
    hosts = {"coordinator": FakeHost(certificate=served)} | {d: FakeHost() for d in DEVICES}
    fake = Fleet(path, state, hosts, [node_doc(i) for i in NODE_IDS.values()])

    @contextlib.contextmanager
    def shell(host, *, timeout: float = 20.0) -> Iterator[FakeShell]:
        fake.calls.append((host.name, "login", timeout))
        if not fake.hosts[host.name].reachable:
            raise FledgeError(
                f"SSH to pi@{host.address}:22 failed: timed out",
                fix="check that the host is up and sshd listens on that port",
            )
        yield FakeShell(host.name, fake.hosts[host.name], fake.calls)

    @contextlib.contextmanager
    def channel(inventory, local_port: int = 0) -> Iterator[str]:
        if fake.superlink_down:
            raise FledgeError("SSH to pi@10.0.0.1:22 failed: timed out")
        yield "127.0.0.1:18000"

    def flwr(args: list[str], flwr_home: Path, timeout: float) -> FlwrResult:
        assert args[:2] == ["supernode", "ls"], args
        return FlwrResult(0, json.dumps({"success": True, "nodes": fake.nodes}), "")

    monkeypatch.setattr(remote, "shell", shell)
    monkeypatch.setattr(control, "channel", channel)
    monkeypatch.setattr(cli, "run_flwr", flwr)
    return fake


def findings(doc: dict) -> list[tuple[str, str | None]]:
    return [(f["kind"], f["host"]) for f in doc["findings"]]


# --- a fleet in order ---------------------------------------------------------


def test_a_fleet_in_order_exits_0_with_one_json_document(fleet: Fleet) -> None:
    code, doc = fleet.json()
    assert code == 0, doc["findings"]
    assert set(doc) == {
        "inventory",
        "flower_version",
        "attention",
        "hosts",
        "superlink",
        "certificates",
        "findings",
    }
    assert (doc["attention"], doc["findings"], doc["flower_version"]) == (False, [], PIN)
    assert [h["host"] for h in doc["hosts"]] == ["coordinator", *DEVICES]
    coordinator, pi1, _, pi3 = doc["hosts"]
    assert coordinator == {
        "host": "coordinator",
        "role": "superlink",
        "address": "10.0.0.1",
        "runtime": None,
        "reachable": True,
        "error": None,
        "services": {
            "fledge-superlink.service": "active",
            "fledge-superlink-proxy.service": "active",
        },
        "flower_version": PIN,
        "flower_source": "/opt/fledge/venv",
        "node_id": None,
        "node_status": None,
        "online_at": None,
        "offline_at": None,
    }
    assert pi1["services"] == {"fledge-supernode.service": "active"}
    assert (pi1["node_id"], pi1["node_status"], pi1["online_at"]) == (
        "101",
        "online",
        "2026-12-02 09:00:00Z",
    )
    # The container runtime's device: its Flower is the container's.
    assert (pi3["runtime"], pi3["flower_source"]) == ("container", "container fledge-supernode")
    assert doc["superlink"] == {"reachable": True, "error": None, "nodes": 3, "online": 3}
    served = doc["certificates"]["superlink"]
    assert (served["read_on"], served["state"]) == ("coordinator", "valid")
    assert served["path"] == "/etc/fledge/tls/superlink.crt"
    assert served["days_left"] > 300 and doc["certificates"]["ca"]["state"] == "valid"


def test_text_is_a_table_and_a_verdict(fleet: Fleet) -> None:
    code, _, text = fleet.status()
    assert code == 0
    for words in ("coordinator", "pi-3", "superlink", "online since", PIN):
        assert words in text
    assert "All 4 hosts are in order" in text and "attention" not in text


def test_every_command_has_a_time_limit_and_sudo_only_where_needed(fleet: Fleet) -> None:
    fleet.json()
    commands = [c for c in fleet.calls if c[1] != "login"]
    assert commands and all(0 < timeout <= 60 for _, _, timeout in commands)
    assert all(0 < timeout <= 30 for _, what, timeout in fleet.calls if what == "login")
    sudo = sorted((host, argv[3]) for host, argv, _ in commands if argv[0] == "sudo")
    assert sudo == [("coordinator", "cat"), ("pi-3", "docker")]
    assert ("pi-1", "login", fleet_status.LOGIN_TIMEOUT) in fleet.calls


# --- each finding -------------------------------------------------------------


def test_an_unreachable_device_is_named_and_the_others_are_shown(fleet: Fleet) -> None:
    fleet.hosts["pi-2"].reachable = False
    code, doc = fleet.json()
    assert code == 1 and doc["attention"]
    assert findings(doc) == [("unreachable", "pi-2")]
    pi2 = doc["hosts"][2]
    assert not pi2["reachable"] and "timed out" in pi2["error"]
    assert pi2["services"] == {} and pi2["flower_version"] is None
    assert pi2["node_status"] == "online"  # what the SuperLink says still counts
    assert all(h["reachable"] for h in doc["hosts"] if h["host"] != "pi-2")


def test_an_unreachable_coordinator_still_gives_the_devices_rows(fleet: Fleet) -> None:
    fleet.hosts["coordinator"].reachable = False
    fleet.superlink_down = True
    code, doc = fleet.json()
    assert code == 1
    assert findings(doc) == [
        ("unreachable", "coordinator"),
        ("superlink_unreachable", "coordinator"),
    ]
    assert [h["reachable"] for h in doc["hosts"]] == [False, True, True, True]
    assert all(h["services"] == {"fledge-supernode.service": "active"} for h in doc["hosts"][1:])
    assert [h["node_id"] for h in doc["hosts"][1:]] == ["101", "102", "103"]
    assert {h["node_status"] for h in doc["hosts"]} == {None}  # unknown, not offline
    assert doc["superlink"]["reachable"] is False and "timed out" in doc["superlink"]["error"]
    # The certificate's expiry comes from the controller's copy.
    assert doc["certificates"]["superlink"]["read_on"] == "controller"


def test_services_that_are_not_active(fleet: Fleet) -> None:
    fleet.hosts["pi-1"].states["fledge-supernode.service"] = "inactive"
    fleet.hosts["coordinator"].states["fledge-superlink-proxy.service"] = "failed"
    code, doc = fleet.json()
    assert code == 1
    assert findings(doc) == [("service_inactive", "coordinator"), ("service_inactive", "pi-1")]
    messages = [f["message"] for f in doc["findings"]]
    assert messages == [
        "fledge-superlink-proxy.service is failed",
        "fledge-supernode.service is inactive",
    ]
    assert "fledge logs pi-1" in doc["findings"][1]["fix"]
    text = " ".join(fleet.status()[2].split())
    assert "attention: pi-1: fledge-supernode.service is inactive" in text
    assert "attention: coordinator: fledge-superlink-proxy.service is failed" in text


def test_a_flower_release_other_than_the_pin(fleet: Fleet) -> None:
    fleet.hosts["pi-2"].venv_version = "1.41.0"
    fleet.hosts["pi-3"].container_version = "1.40.0"
    code, doc = fleet.json()
    assert code == 1
    assert findings(doc) == [("version_mismatch", "pi-2"), ("version_mismatch", "pi-3")]
    assert doc["findings"][0]["message"] == (
        "Flower 1.41.0 in /opt/fledge/venv, the inventory pins 1.42.0 (flower_version)"
    )
    assert "container fledge-supernode" in doc["findings"][1]["message"]


def test_no_flower_at_all_is_a_mismatch_too(fleet: Fleet) -> None:
    fleet.hosts["pi-1"].venv_version = None
    code, doc = fleet.json()
    assert code == 1 and findings(doc) == [("version_mismatch", "pi-1")]
    assert doc["findings"][0]["message"].startswith("no Flower in /opt/fledge/venv")


def test_a_container_that_does_not_run_reports_the_hosts_venv(fleet: Fleet) -> None:
    fleet.hosts["pi-3"].container_version = None
    fleet.hosts["pi-3"].states["fledge-supernode.service"] = "activating"
    code, doc = fleet.json()
    assert code == 1 and findings(doc) == [("service_inactive", "pi-3")]
    assert (doc["hosts"][3]["flower_version"], doc["hosts"][3]["flower_source"]) == (
        PIN,
        "/opt/fledge/venv",
    )


def test_devices_without_a_node_id(fleet: Fleet) -> None:
    (fleet.state_dir / "nodes" / "pi-2.json").unlink()  # never enrolled
    registry.revoke(fleet.state_dir, "pi-3")
    fleet.nodes = [n for n in fleet.nodes if n["node-id"] == "101"]
    code, doc = fleet.json()
    assert code == 1
    assert findings(doc) == [("no_node_id", "pi-2"), ("no_node_id", "pi-3")]
    never, revoked = doc["findings"]
    assert "never enrolled" in never["message"] and never["fix"] == "`fledge provision` enrols it"
    assert "revoked" in revoked["message"] and "--enrol pi-3" in revoked["fix"]
    assert [h["node_id"] for h in doc["hosts"][2:]] == [None, None]


def test_a_node_the_superlink_does_not_know_or_unregistered(fleet: Fleet) -> None:
    fleet.nodes = [n for n in fleet.nodes if n["node-id"] != "102"]
    fleet.node("pi-3", "unregistered")
    code, doc = fleet.json()
    assert code == 1
    assert findings(doc) == [("not_registered", "pi-2"), ("not_registered", "pi-3")]
    assert [h["node_status"] for h in doc["hosts"][2:]] == ["unknown", "unregistered"]


def test_an_offline_device_says_since_when(fleet: Fleet) -> None:
    fleet.node("pi-1", "offline")
    code, doc = fleet.json()
    assert code == 1 and findings(doc) == [("offline", "pi-1")]
    assert doc["findings"][0]["message"] == "its node 101 is offline since 2026-12-02 10:00:00Z"
    pi1 = doc["hosts"][1]
    assert (pi1["node_status"], pi1["offline_at"]) == ("offline", "2026-12-02 10:00:00Z")
    assert doc["superlink"]["online"] == 2
    text = " ".join(fleet.status()[2].split())
    assert "offline since 2026-12-02 10:00:00Z" in text


def test_an_online_node_of_no_host(fleet: Fleet) -> None:
    fleet.nodes.append(node_doc("999"))
    fleet.nodes.append(node_doc("998", "offline"))  # offline strangers are no danger
    code, doc = fleet.json()
    assert code == 1 and findings(doc) == [("unknown_node", None)]
    finding = doc["findings"][0]
    assert "node 999 is online but belongs to no device" in finding["message"]
    assert "flwr supernode unregister 999" in finding["fix"]


def test_a_node_of_a_host_no_longer_in_the_inventory(fleet: Fleet) -> None:
    registry.record(fleet.state_dir, "pi-old", KEY, "555")
    fleet.nodes.append(node_doc("555"))
    code, doc = fleet.json()
    assert code == 1 and findings(doc) == [("unknown_node", None)]
    assert "recorded for pi-old, which is not in the inventory" in doc["findings"][0]["message"]


def test_a_superlink_certificate_near_its_end(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pki, "SERVER_VALID_DAYS", 10)
    pki_dir = fleet.state_dir / "pki"
    pki.ensure_server_cert(pki_dir, "coordinator", ["coordinator"], rotate=True)
    fleet.hosts["coordinator"].certificate = (pki_dir / pki.SERVER_CERT).read_bytes()
    code, doc = fleet.json()
    assert code == 1 and findings(doc) == [("certificate", None)]
    served = doc["certificates"]["superlink"]
    assert served["state"] == "expires soon" and served["days_left"] <= 10
    assert "the SuperLink's certificate expires soon" in doc["findings"][0]["message"]
    assert "fledge certs rotate" in doc["findings"][0]["fix"]


def test_a_coordinator_without_its_certificate(fleet: Fleet) -> None:
    fleet.hosts["coordinator"].certificate = None
    code, doc = fleet.json()
    assert code == 1 and findings(doc) == [("certificate", "coordinator")]
    assert "/etc/fledge/tls/superlink.crt" in doc["findings"][0]["message"]


def test_sudo_that_wants_a_password_is_said_clearly(fleet: Fleet) -> None:
    fleet.hosts["coordinator"].sudo_password = True
    fleet.hosts["pi-3"].sudo_password = True
    code, doc = fleet.json()
    assert code == 1
    assert findings(doc) == [("sudo_password", "coordinator"), ("sudo_password", "pi-3")]
    for finding in doc["findings"]:
        assert finding["message"].startswith("sudo needs a password there")
        assert "passwordless sudo" in finding["fix"]
    # What needs no root was read all the same.
    assert doc["hosts"][0]["services"]["fledge-superlink.service"] == "active"
    text = " ".join(fleet.status()[2].split())
    assert "attention: pi-3: sudo needs a password there" in text


def test_a_command_that_hangs_is_a_finding_not_a_crash(fleet: Fleet) -> None:
    fleet.hosts["pi-1"].hang = ("systemctl",)
    code, doc = fleet.json()
    assert code == 1 and findings(doc) == [("check_failed", "pi-1")]
    assert "gave no output" in doc["findings"][0]["message"]
    assert doc["hosts"][1]["flower_version"] == PIN  # the other checks went on


def test_an_open_fleet_counts_the_online_nodes(
    fleet: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet.path.write_text(
        INVENTORY.replace("ansible_user: pi", "ansible_user: pi, fledge_tls: false")
    )
    fleet.nodes = [node_doc("7"), node_doc("8", "offline")]
    code, doc = fleet.json()
    assert code == 1 and findings(doc) == [("offline", None)]
    assert doc["findings"][0]["message"].startswith("1 of 3 devices are online")
    assert doc["certificates"] == {}
    assert not any(argv[0] == "sudo" and argv[3] == "cat" for _, argv, _ in fleet.calls)


def test_a_bad_inventory_is_an_error_document(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["fleet", "status", "-i", str(tmp_path / "missing.yml"), "--format", "json"]
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == "inventory not found"


def test_the_unit_and_container_names_are_the_roles() -> None:
    roles = collection_dir() / "roles"
    tasks = "".join(
        p.read_text()
        for role in ("superlink", "supernode")
        for p in (roles / role / "tasks").glob("*.yml")
    )
    installed = set(re.findall(r"dest: /etc/systemd/system/(fledge-[a-z-]+\.service)", tasks))
    assert installed == {
        services.SUPERLINK_UNIT,
        services.SUPERLINK_PROXY_UNIT,
        services.SUPERNODE_UNIT,
    }
    supernode_vars = yaml.safe_load((roles / "supernode" / "vars" / "main.yml").read_text())
    assert supernode_vars["_supernode_container_name"] == services.SUPERNODE_CONTAINER
