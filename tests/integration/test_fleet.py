"""The whole path, for real: a lab fleet provisioned over SSH and trained on over TLS.

The shared fleet (conftest.py: a coordinator and two devices, containers
booting systemd, reached over real SSH with host keys checked) got a dry run
on its fresh hosts and was provisioned by the real collection. Here it is
provisioned again (nothing may change, with the CLI and without it; an
unchanged host is skipped after one check, a host changed by hand is
repaired; the Galaxy artifact's dry run is in test_second_fleet.py), and then a real Flower run
on it must complete with an accuracy far above chance. Finally the CA's
private key must be on no host of the fleet.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from pathlib import Path

import pytest

from fledge import inventory, ssh

from helpers import (
    ansible_playbook,
    fledge,
    login,
    on,
    probe,
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


def test_each_fresh_service_started_once(fleet: inventory.Inventory) -> None:
    """Started and then restarted by a handler a moment later, a new SuperLink
    could be killed while it creates its database, which then fails every
    start (test_faults.py): provisioning starts each service once, after
    every change that would restart it."""
    services = [(fleet.superlink, "fledge-superlink")]
    services += [(device, "fledge-supernode") for device in fleet.supernodes]
    for host, unit in services:
        journal = on(host, f"sudo journalctl --unit={unit} --no-pager --output=cat")
        starts = [line for line in journal.splitlines() if line.startswith("Started ")]
        assert len(starts) == 1, (host.name, starts)


def test_second_provisioning_changes_nothing_and_every_task_agrees(
    fleet: inventory.Inventory,
) -> None:
    quick = provision(fleet.path)
    assert quick["unchanged"] == ["coordinator", "pi-1", "pi-2"]  # the converged check
    assert quick["changed"] == 0
    # And every task of every role, run again, finds nothing to do.
    full = provision(fleet.path, "--full")
    assert full["unchanged"] == []
    changed = {host: counters["changed"] for host, counters in full["hosts"].items()}
    assert changed == {"coordinator": 0, "pi-1": 0, "pi-2": 0}


def test_the_docker_engine_waits_on_its_socket_on_devices_that_do_not_use_it(
    fleet: inventory.Inventory,
) -> None:
    """Both devices run the systemd runtime: after two provisionings (one of every
    task), nothing has started the socket-activated engine."""
    for device in fleet.supernodes:
        states = on(device, "systemctl is-active docker.socket docker.service containerd || true")
        assert states.split() == ["active", "inactive", "inactive"], (device.name, states)


def test_a_device_changed_by_hand_is_provisioned_in_full_and_repaired(
    fleet: inventory.Inventory,
) -> None:
    pi_2 = next(h for h in fleet.supernodes if h.name == "pi-2")
    on(pi_2, "sudo chmod 0600 /etc/fledge/tls/ca.crt && sudo systemctl stop fledge-supernode")
    repaired = provision(fleet.path)
    assert repaired["unchanged"] == ["coordinator", "pi-1"]
    assert repaired["hosts"]["pi-2"]["changed"] > 0
    assert on(pi_2, "sudo stat -c %a /etc/fledge/tls/ca.crt") == "644"
    assert on(pi_2, "systemctl is-active fledge-supernode") == "active"
    assert provision(fleet.path)["unchanged"] == ["coordinator", "pi-1", "pi-2"]


def test_plain_ansible_playbook_works_without_the_cli(fleet: inventory.Inventory) -> None:
    """`ansible-playbook -i INVENTORY playbooks/deploy.yml` from the checkout, no fledge command."""
    result = ansible_playbook(fleet.path, "playbooks/deploy.yml", collections=None)
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
    # Over TLS, trusting the fleet CA: test_security.py reads the connection fledge writes.


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


def test_inventory_scan_reads_the_devices_and_records_a_new_key_only_when_asked(
    fleet: inventory.Inventory, tmp_path: Path
) -> None:
    """`fledge inventory scan` over real SSH: each device's own architecture, a verdict of ok
    (preflight took them); with an empty known_hosts the key is refused, recorded only with
    --accept-new-host-key (the key the lab's known_hosts holds), and known from then on."""
    args = shlex.split(fleet.superlink.vars["ansible_ssh_common_args"])
    lab_known_hosts = next(a.split("=", 1)[1] for a in args if a.startswith("UserKnownHostsFile="))
    key = fleet.superlink.vars["ansible_ssh_private_key_file"]
    specs = [f"{h.name}={h.user}@{h.address}:{h.port}" for h in fleet.supernodes]

    def scan(spec: list[str], known_hosts: str | Path, *options: str) -> tuple[int, dict, str]:
        result = fledge(
            "inventory", "scan", *spec, "--key", key, "--known-hosts", known_hosts,
            "--format", "json", *options, timeout=300,
        )  # fmt: skip
        return result.returncode, json.loads(result.stdout), result.stderr

    status, report, errors = scan(specs, lab_known_hosts)
    assert status == 0, errors[-4000:]
    for host, row in zip(fleet.supernodes, report["hosts"], strict=True):
        assert row["verdict"] == "ok" and row["reasons"] == [], row
        assert row["architecture"] == on(host, "uname -m"), row
        assert row["userland"] == on(host, "dpkg --print-architecture"), row
        assert row["python"] and row["memory_mb"] and row["disk_mb"], row
        assert abs(row["clock_offset_s"]) < 2, row

    empty = tmp_path / "known_hosts"
    empty.write_text("")
    status, report, _ = scan(specs[:1], empty)
    (row,) = report["hosts"]
    assert status == 1 and row["verdict"] == "unreachable", row
    assert "unknown host key" in row["error"]["error"] and empty.read_text() == ""

    status, report, errors = scan(specs[:1], empty, "--accept-new-host-key")
    assert status == 0, errors[-4000:]
    recorded = report["hosts"][0]["host_key_recorded"]
    assert recorded and recorded["sha256"] in errors
    (line,) = empty.read_text().splitlines()
    assert line in Path(lab_known_hosts).read_text().splitlines()

    status, report, errors = scan(specs[:1], empty)
    assert status == 0, errors[-4000:]
    assert report["hosts"][0]["host_key_recorded"] is None
    assert empty.read_text().splitlines() == [line]


# --- operations: fledge fleet status, fledge logs ----------------------------------

STATUS_TIMEOUT = 300


def _fleet_status(fleet: inventory.Inventory) -> tuple[int, dict]:
    result = fledge("fleet", "status", "-i", fleet.path, "--format", "json", timeout=STATUS_TIMEOUT)
    assert result.stdout, result.stderr[-4000:]
    return result.returncode, json.loads(result.stdout)


def test_fleet_status_finds_the_provisioned_fleet_in_order(fleet: inventory.Inventory) -> None:
    code, doc = _fleet_status(fleet)
    assert code == 0 and doc["findings"] == [], doc["findings"]
    pin = fleet.superlink.vars["flower_version"]
    assert [h["host"] for h in doc["hosts"]] == [h.name for h in fleet.hosts]
    for host in doc["hosts"]:
        assert host["reachable"] and host["error"] is None, host
        assert host["services"] and set(host["services"].values()) == {"active"}, host
        assert host["flower_version"] == pin, host
    coordinator, *devices = doc["hosts"]
    assert set(coordinator["services"]) == {
        "fledge-superlink.service",
        "fledge-superlink-proxy.service",
    }
    records = {
        p.stem: json.loads(p.read_text())["node_id"]
        for p in (fleet.state_dir / "nodes").glob("*.json")
    }
    for device in devices:
        assert device["node_status"] == "online" and device["online_at"], device
        assert device["node_id"] == records[device["host"]], device
    assert doc["superlink"]["online"] == len(devices)
    assert doc["certificates"]["superlink"]["read_on"] == fleet.superlink.name
    assert doc["certificates"]["superlink"]["state"] == "valid"


def test_fleet_status_names_a_device_whose_supernode_stopped(fleet: inventory.Inventory) -> None:
    pi1 = fleet.supernodes[0]
    try:
        on(pi1, "sudo systemctl stop fledge-supernode")
        code, doc = _fleet_status(fleet)
        assert code == 1
        assert {f["host"] for f in doc["findings"]} == {pi1.name}, doc["findings"]
        assert ("service_inactive", pi1.name) in [(f["kind"], f["host"]) for f in doc["findings"]]
        text = fledge("fleet", "status", "-i", fleet.path, timeout=STATUS_TIMEOUT)
        assert text.returncode == 1
        assert f"attention: {pi1.name}: fledge-supernode.service is inactive" in " ".join(
            text.stderr.split()
        )
    finally:
        probe(pi1, "sudo systemctl start fledge-supernode")
    # Back in order: the SuperNode reconnects with its node ID.
    deadline = time.monotonic() + 240
    while (status := _fleet_status(fleet))[0] != 0:
        assert time.monotonic() < deadline, status[1]["findings"]
        time.sleep(5)


def test_logs_show_the_supernodes_and_the_superlinks_journal(fleet: inventory.Inventory) -> None:
    pi1 = fleet.supernodes[0]
    result = fledge("logs", pi1.name, "-i", fleet.path, "--lines", 20, timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    # Not journalctl's own notes ("-- Boot ...") nor a message's continuation lines.
    entries = [line for line in result.stdout.splitlines() if line[:1].isdigit()]
    assert 0 < len(entries) <= 20, result.stdout
    # journalctl -o short-iso: time, host, identifier[pid]: message.
    assert all(line[4] == "-" and line[10] == "T" for line in entries), entries
    assert any("flower-supernode" in line or "SuperNode" in line for line in entries), entries
    result = fledge(
        "logs", fleet.superlink.name, "-i", fleet.path, "--lines", 5, "--since", "-1d", timeout=120
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert any(
        "flower-superlink" in line or "SuperLink" in line for line in result.stdout.splitlines()
    )


def test_logs_all_writes_one_file_per_device(fleet: inventory.Inventory) -> None:
    result = fledge("logs", "--all", "-i", fleet.path, "--lines", 50, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert result.stdout == ""
    folder = max((fleet.state_dir / "logs").iterdir())
    assert folder.name in result.stderr
    files = sorted(folder.iterdir())
    assert [f.name for f in files] == [f"{h.name}.log" for h in fleet.supernodes]
    assert all(f.stat().st_size > 0 for f in files)
