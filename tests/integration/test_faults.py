"""What real fleets do, done to the shared fleet: each fault, and the outcome asserted.

In CI: a device's SuperNode killed in the middle of a round, the SuperLink
restarted under its devices, a device whose clock is off. Behind the
``slow`` marker (the longer test command, docs/testing.md): a device that is
off during provisioning (and `--retry-failed`), a device rebooted in the
middle of provisioning, a SuperLink whose database was left half-migrated, a
device whose disk is full, devices dropping below what a run needs, and a
device on a slow, lossy network. Every test leaves the fleet as it found it.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from fledge import inventory
from fledge.lab import engine

from helpers import BIN, REPO, fledge, on, probe, provision
from slow_network import carried, slow_network

pytestmark = pytest.mark.lab

GATED_APP = REPO / "tests" / "apps" / "gated"
# Seconds a round waits for a device that is gone, in these tests.
ROUND_TIMEOUT = 60


class Lab:
    """The shared fleet's containers, for faults that SSH cannot cause (power, network)."""

    def __init__(self, fleet: inventory.Inventory) -> None:
        self.fleet = fleet
        self.name = fleet.superlink.vars["fledge_lab"]
        self.client = engine.connect()

    def container(self, host: str):  # type: ignore[no-untyped-def]
        return self.client.containers.get(f"{self.name}-{host}")

    def root(self, host: str, *command: str) -> str:
        """A command as root on the host, through the engine (not over the network)."""
        code, output = self.container(host).exec_run(
            ["timeout", "120", *command], environment={"DEBIAN_FRONTEND": "noninteractive"}
        )
        text = output.decode(errors="replace").strip()
        assert code == 0, f"{command} on {host}: {text[-2000:]}"
        return text


@pytest.fixture
def lab(fleet: inventory.Inventory) -> Lab:
    return Lab(fleet)


def device(fleet: inventory.Inventory, name: str) -> inventory.Host:
    return next(h for h in fleet.supernodes if h.name == name)


def listed_online(fleet: inventory.Inventory) -> tuple[set[str] | None, str]:
    """The SuperLink's online nodes, or None and why when it did not answer."""
    listed = fledge("round", "nodes", "-i", fleet.path, "--format", "json", timeout=120)
    if listed.returncode != 0:
        return None, listed.stderr[-2000:]
    nodes = json.loads(listed.stdout)["nodes"]
    return {n["node_id"] for n in nodes if n["status"] == "online"}, ""


def online_nodes(fleet: inventory.Inventory) -> set[str]:
    online, error = listed_online(fleet)
    assert online is not None, error
    return online


def wait_online(fleet: inventory.Inventory, count: int, timeout: float = 180) -> set[str]:
    """The online nodes, once there are ``count``; a SuperLink that does not answer
    yet (just restarted) counts as none online until the time is up."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        online, error = listed_online(fleet)
        if online is not None and len(online) >= count:
            return online
        last = error or f"online: {sorted(online or ())}"
        time.sleep(3)
    pytest.fail(f"fewer than {count} devices online after {timeout} s; last: {last}")


def one_round(fleet: inventory.Inventory) -> dict:
    result = fledge("round", "start", "-i", fleet.path, "--rounds", 1, "--format", "json")
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


@pytest.fixture
def gated_run(fleet: inventory.Inventory) -> Iterator[tuple[subprocess.Popen, str]]:
    """A run of the gated app: both devices' ClientApps wait until the test opens the gate."""
    gate = f"gate-{uuid.uuid4().hex}"
    run = subprocess.Popen(
        [str(BIN / "fledge"), "round", "start", "-i", str(fleet.path), "--app", str(GATED_APP),
         "--config", f"gate='{gate}'", "--config", f"round-timeout={ROUND_TIMEOUT}",
         "--node-wait", "30", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for each in fleet.supernodes:  # each ClientApp is at the gate
            deadline = time.monotonic() + 300
            while probe(each, "pgrep -f flwr-clientapp")[0] != 0:
                assert run.poll() is None, run.communicate()[1][-3000:]
                assert time.monotonic() < deadline, f"no ClientApp on {each.name}"
                time.sleep(2)
        yield run, gate
    finally:
        run.kill()
        for each in fleet.supernodes:
            data_dir = each.vars["fledge_data_dir"]
            probe(each, f"sudo rm -f {data_dir}/{gate}")


def open_gate(host: inventory.Host, gate: str) -> None:
    on(host, f"sudo touch {host.vars['fledge_data_dir']}/{gate}")


# --- in CI ------------------------------------------------------------------


def test_a_device_killed_in_a_round_rejoins_and_the_run_completes(
    fleet: inventory.Inventory, gated_run: tuple[subprocess.Popen, str]
) -> None:
    run, gate = gated_run
    pi_2 = device(fleet, "pi-2")
    before = online_nodes(fleet)
    on(pi_2, "sudo systemctl kill --signal=KILL fledge-supernode")  # and its ClientApp
    for each in fleet.supernodes:
        open_gate(each, gate)
    out, err = run.communicate(timeout=900)
    assert run.returncode == 0, err[-4000:]
    assert json.loads(out)["status"] == "finished:completed"
    # pi-2 came back by itself (systemd), as the same node, and the next run uses it.
    assert wait_online(fleet, 2) == before
    assert one_round(fleet)["rounds"][0]["nodes"] == 2


def test_the_superlink_restarted_under_its_devices_keeps_them(
    fleet: inventory.Inventory,
) -> None:
    before = wait_online(fleet, 2)
    on(fleet.superlink, "sudo systemctl restart fledge-superlink")
    assert wait_online(fleet, 2) == before  # the same node IDs: their keys, registered
    assert one_round(fleet)["rounds"][0]["nodes"] == 2


def test_a_device_whose_clock_is_off_is_refused_with_the_reason_then_repaired(
    fleet: inventory.Inventory, lab: Lab
) -> None:
    """Containers share the host's clock, so pi-2's userland is given a slow one:
    libfaketime, preloaded into every new process, 15 minutes behind (beyond the
    5 minutes Flower accepts on a signed request). sshd is restarted with it: a
    pre-authentication child of an sshd started without it dies in its seccomp
    sandbox when it loads libfaketime (tried)."""
    install = "apt-get install -y --no-install-recommends libfaketime"
    # From Debian's mirror, as provisioning's packages; the lists may be gone.
    lab.root("pi-2", "sh", "-c", f"{install} || (apt-get update && {install})")
    try:
        files = lab.root("pi-2", "dpkg", "-L", "libfaketime").split()
        (library,) = [f for f in files if f.endswith("/libfaketime.so.1")]
        lab.root("pi-2", "sh", "-c", "echo -900 > /etc/faketimerc")
        lab.root("pi-2", "sh", "-c", f"echo {library} > /etc/ld.so.preload")
        lab.root("pi-2", "systemctl", "restart", "ssh")
        behind = time.time() - float(on(device(fleet, "pi-2"), "date +%s"))
        assert 880 < behind < 920, behind  # the fault is real, over SSH too
        # pi-2 alone: that one host fails is test_provision's (and the slow tests').
        result = fledge("provision", "-i", fleet.path, "--limit", "pi-2", "--format", "json")
        assert result.returncode == 1
        report = json.loads(result.stdout)
        (failure,) = report["failures"]
        assert failure["host"] == "pi-2"
        assert re.search(r"The clock of pi-2 is off by about -9\d\d\.\d s", failure["message"])
        assert "timedatectl" in failure["message"]
    finally:
        lab.root("pi-2", "rm", "-f", "/etc/ld.so.preload", "/etc/faketimerc")
        lab.root("pi-2", "systemctl", "restart", "ssh")
        lab.root("pi-2", "apt-get", "purge", "-y", "libfaketime")  # the device as it was
    assert provision(fleet.path, "--limit", "pi-2")["succeeded"]
    wait_online(fleet, 2)


# --- slow: the longer test command ----------------------------------------------


@pytest.mark.slow  # every task on the others while pi-2 is off, then the retry
def test_a_device_that_is_off_fails_alone_and_retry_failed_finishes_the_job(
    fleet: inventory.Inventory, lab: Lab
) -> None:
    lab.container("pi-2").stop(timeout=10)
    try:
        result = fledge("provision", "-i", fleet.path, "--full", "--format", "json")
        assert result.returncode == 1
        report = json.loads(result.stdout)
        assert report["hosts"]["pi-2"]["unreachable"] > 0
        assert report["hosts"]["coordinator"]["failed"] == report["hosts"]["pi-1"]["failed"] == 0
        assert [f["host"] for f in report["failures"]] == ["pi-2"]
        assert "pi-2" in result.stderr and "UNREACHABLE" in result.stderr.upper()
    finally:
        lab.container("pi-2").start()
    retried = provision(fleet.path, "--retry-failed")
    assert set(retried["hosts"]) == {"pi-2"}  # nothing else touched
    assert retried["succeeded"]
    wait_online(fleet, 2)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_a_device_rebooted_in_the_middle_of_provisioning(
    fleet: inventory.Inventory, lab: Lab
) -> None:
    """pi-2 restarts while pip works on it: that host fails, named, the others finish.

    The restart waits for pip on pi-2 (installing Flower, a task of seconds),
    so it lands inside a task, not between two, where Ansible would just
    reconnect to the rebooted host and carry on.
    """
    running = subprocess.Popen(
        [str(BIN / "fledge"), "provision", "-i", str(fleet.path), "--full", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 900
        while lab.container("pi-2").exec_run(["pgrep", "-f", "pip3? install"]).exit_code != 0:
            assert running.poll() is None, "the run ended before pip ran on pi-2"
            assert time.monotonic() < deadline, "pip never ran on pi-2"
            time.sleep(0.2)
        lab.container("pi-2").restart(timeout=10)
        out, err = running.communicate(timeout=1500)
    finally:
        running.kill()
    assert running.returncode == 1, err[-3000:]
    report = json.loads(out)
    (failure,) = report["failures"]
    assert failure["host"] == "pi-2" and failure["task"], failure
    assert "pi-2" in err
    assert report["hosts"]["pi-1"]["failed"] == report["hosts"]["pi-1"]["unreachable"] == 0
    # The next run repairs what the cut task left, or finds by the converged
    # check's fingerprint that it left nothing (pip on a venv already complete).
    again = provision(fleet.path)
    assert again["succeeded"]
    assert on(device(fleet, "pi-2"), "systemctl is-active fledge-supernode") == "active"
    wait_online(fleet, 2)


# Run by the SuperLink's Python on the coordinator, its service stopped:
# `keep DB COPY` copies the database (its write-ahead log included);
# `interrupt DB` leaves it as a start interrupted in Flower's last migration
# does, the migration's tables or columns made and its version not recorded;
# `restore DB COPY` puts the copy back.
SUPERLINK_DATABASE = """
import os, sqlite3, sys
action, database, *copy = sys.argv[1:]
if action == "interrupt":
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    import flwr.supercore.state.alembic as migrations
    config = Config()
    config.set_main_option("script_location", os.path.dirname(migrations.__file__))
    scripts = ScriptDirectory.from_config(config)
    last = scripts.get_revision(scripts.get_current_head())
    with sqlite3.connect(database) as db:
        db.execute("UPDATE alembic_version SET version_num = ?", (last.down_revision,))
else:
    source, target = (database, copy[0]) if action == "keep" else (copy[0], database)
    with sqlite3.connect(source) as a, sqlite3.connect(target) as b:
        a.backup(b)
    if action == "restore":
        os.remove(source)
"""


@pytest.mark.slow
def test_a_superlink_whose_database_was_left_half_migrated_fails_with_the_fix(
    fleet: inventory.Inventory,
) -> None:
    """Flower changes its database one table at a time, and an interrupted
    change stays: every later start of that SuperLink fails. Provisioning says
    so with the SuperLink's own log and the fix, and repairs once it is done."""
    coordinator = fleet.superlink
    database = coordinator.vars["_superlink_database"]
    python = f"{coordinator.vars['fledge_install_dir']}/venv/bin/python"

    def as_superlink(*args: str) -> None:
        on(coordinator, f"sudo -u {coordinator.vars['fledge_user']} {python} -c "
           f"{shlex.quote(SUPERLINK_DATABASE)} {' '.join(args)}")  # fmt: skip

    host_vars = fleet.path.parent / "host_vars" / f"{coordinator.name}.yml"
    host_vars.parent.mkdir(exist_ok=True)
    host_vars.write_text("superlink_start_timeout: 15\n")  # not the default 90 s of refusals
    kept = f"{database}.kept"
    on(coordinator, "sudo systemctl stop fledge-superlink")
    as_superlink("keep", database, kept)
    try:
        as_superlink("interrupt", database)
        result = fledge(
            "provision", "-i", fleet.path, "--limit", coordinator.name, "--format", "json"
        )
        assert result.returncode == 1, result.stderr[-3000:]
        (failure,) = json.loads(result.stdout)["failures"]
        assert failure["host"] == coordinator.name
        message = " ".join(failure["message"].split())
        assert "sqlite3.OperationalError" in message  # the SuperLink's own words
        assert f"Its database {database} does not match the schema Flower" in message
        assert "move that file aside, and provision again" in message
    finally:
        on(coordinator, "sudo systemctl stop fledge-superlink")
        as_superlink("restore", database, kept)
        host_vars.unlink()
    assert provision(fleet.path, "--limit", coordinator.name)["succeeded"]
    wait_online(fleet, 2)


@pytest.mark.slow
def test_a_device_whose_disk_is_full_fails_preflight_and_recovers(
    fleet: inventory.Inventory, lab: Lab
) -> None:
    install_dir = fleet.supernodes[1].vars["fledge_install_dir"]
    # A 1 MB file system where fledge installs: the device's "full disk".
    lab.root("pi-2", "mount", "-t", "tmpfs", "-o", "size=1m", "fledge-full", install_dir)
    try:
        result = fledge("provision", "-i", fleet.path, "--format", "json")
    finally:
        lab.root("pi-2", "umount", install_dir)
    assert result.returncode == 1
    (failure,) = json.loads(result.stdout)["failures"]
    assert failure["host"] == "pi-2"
    assert f"MB free on {install_dir}" in failure["message"]
    assert provision(fleet.path)["succeeded"]


@pytest.mark.slow
def test_a_run_whose_devices_drop_below_what_it_needs_is_stopped_with_the_reason(
    fleet: inventory.Inventory, gated_run: tuple[subprocess.Popen, str]
) -> None:
    run, gate = gated_run
    pi_1, pi_2 = device(fleet, "pi-1"), device(fleet, "pi-2")
    on(pi_2, "sudo systemctl stop fledge-supernode")
    try:
        open_gate(pi_1, gate)
        out, err = run.communicate(timeout=900)
    finally:
        on(pi_2, "sudo systemctl start fledge-supernode")
    assert run.returncode == 3, err[-3000:]
    assert json.loads(out)["status"] == "finished:stopped"
    assert "for 2 devices; 1 are connected" in " ".join(err.split())
    wait_online(fleet, 2)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_a_device_on_a_slow_lossy_network_still_provisions_and_trains(
    fleet: inventory.Inventory, lab: Lab, record_property: Callable[[str, object], None]
) -> None:
    def timed(*args: str) -> float:
        started = time.monotonic()
        result = fledge(*args, timeout=3000)
        assert result.returncode == 0, result.stderr[-3000:]
        return time.monotonic() - started

    pi_2 = lab.container("pi-2")
    provisioning = ("provision", "-i", str(fleet.path), "--full", "--limit", "pi-2")
    training = ("round", "start", "-i", str(fleet.path), "--rounds", "2")
    before = (timed(*provisioning), timed(*training))
    with slow_network(pi_2, latency_ms=300, loss=0.05):
        # What is connected now reconnects through the slow path: SSH sessions
        # (Ansible's shared connections among them) and the SuperNode.
        sessions = f"^sshd: {device(fleet, 'pi-2').user}"
        lab.root("pi-2", "sh", "-c", f"pkill -f '{sessions}'; systemctl restart fledge-supernode")
        wait_online(fleet, 2)
        after = (timed(*provisioning), timed(*training))
        destinations = carried(pi_2)
    assert any(d.endswith(":22") for d in destinations), destinations  # provisioning
    # The SuperNode's connections to the SuperLink.
    assert any(d.endswith(f":{fleet.superlink_port}") for d in destinations), destinations
    wait_online(fleet, 2)
    # The figures for the notes (pytest -s shows them; junit keeps them).
    for what, b, a in zip(("provisioning", "training"), before, after, strict=True):
        print(f"{what}: {b:.0f} s -> {a:.0f} s with 300 ms and 5% loss ({a / b:.1f}x)")
        record_property(f"{what}_slowdown", round(a / b, 2))
