"""A user's own Flower app on the shared fleet, as a new user would run it.

The app (tests/apps/sensors) is written like Flower's quickstart: default
FedAvg, the final model saved with np.savez into its working directory, its
result printed. It needs tabulate, which the fleet lacks, and pi-1 keeps its
readings where a Pi user would, in /home/pi/sensors (``fledge_data_dir`` in
``host_vars/pi-1.yml``). Checked, in order: the run is refused before it
starts and names the missing package; provisioning fails pi-1 while its data
is unreadable and says what to do; `fledge provision --app` installs the
package everywhere; the run completes, its model arrives in the results
folder, pi-1 read its own data from /home through the sandbox, and named
device files come back on request; a run waiting for more devices than are
connected is stopped with the reason. At the end pi-1 is provisioned back
to fledge's own data directory (the fleet as this module found it, with
tabulate installed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ansible_collections.fledge.edge.plugins.plugin_utils import packages
from fledge import inventory

from helpers import REPO, fledge, on, provision

pytestmark = pytest.mark.lab

SENSORS = REPO / "tests" / "apps" / "sensors"
DATA_HOST = "pi-1"
DATA_DIR = "/home/pi/sensors"
READINGS = (1.5, 2.5, 4.0)


def host(fleet: inventory.Inventory, name: str) -> inventory.Host:
    return next(h for h in fleet.hosts if h.name == name)


@pytest.fixture(scope="module")
def own_data(fleet: inventory.Inventory) -> Iterator[inventory.Host]:
    """pi-1's readings in /home/pi/sensors, private to the pi user at first; its home
    0700, as on Raspberry Pi OS."""
    device = host(fleet, DATA_HOST)
    values = "\n".join(map(str, READINGS))
    on(device, f"mkdir -p {DATA_DIR} && printf '{values}\\n' > {DATA_DIR}/readings.csv")
    on(device, f"chmod 0700 {DATA_DIR} ~")
    host_vars = fleet.path.parent / "host_vars" / f"{DATA_HOST}.yml"
    host_vars.parent.mkdir(exist_ok=True)
    host_vars.write_text(f"---\nfledge_data_dir: {DATA_DIR}\ndataset_name: none\n")
    try:
        yield device
    finally:
        host_vars.unlink()
        provision(fleet.path, "--limit", DATA_HOST)
        on(device, f"rm -rf {DATA_DIR} && chmod 0755 ~")


def start(fleet: inventory.Inventory, *args: object) -> tuple[int, dict, str]:
    result = fledge("round", "start", "-i", fleet.path, "--app", SENSORS, "--format", "json", *args)
    doc = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, doc, result.stderr


def test_a_run_whose_app_needs_a_missing_package_is_refused_before_it_starts(
    fleet: inventory.Inventory,
) -> None:
    runs_before = fledge("round", "list", "-i", fleet.path, "--format", "json").stdout
    code, doc, stderr = start(fleet)
    # With --format json, the error is one JSON document on stdout.
    assert code == 1 and doc["field"] == "dependencies" and "tabulate>=0.9" in doc["error"], doc
    text = " ".join(stderr.split())
    assert "tabulate>=0.9 (missing on coordinator, pi-1, pi-2)" in text, text
    assert f"--app {SENSORS}" in text
    assert fledge("round", "list", "-i", fleet.path, "--format", "json").stdout == runs_before


def test_data_the_service_cannot_read_fails_its_host_with_the_fix(
    fleet: inventory.Inventory, own_data: inventory.Host
) -> None:
    result = fledge(
        "provision", "-i", fleet.path, "--limit", DATA_HOST, "--tags", "supernode_configure"
    )
    assert result.returncode == 1
    text = " ".join(result.stderr.split())
    assert f"cannot read fledge_data_dir {DATA_DIR}" in text, text[-3000:]
    assert "setfacl" in text
    # What the message offers, done by the device's owner: only the data directory.
    on(own_data, f"chmod o+rx {DATA_DIR} && chmod o+r {DATA_DIR}/readings.csv")


def test_provision_app_installs_what_the_app_needs_on_every_host(
    fleet: inventory.Inventory, own_data: inventory.Host
) -> None:
    report = provision(fleet.path, "--app", str(SENSORS))
    assert report["succeeded"]
    recorded = packages.read(fleet.state_dir)
    for each in fleet.hosts:
        assert "tabulate" in recorded[each.name]["packages"], each.name
        on(each, "/opt/fledge/venv/bin/python -c 'import tabulate'")
    # The sandbox shows the SuperNode its data directory, and nothing else of /home.
    unit = on(own_data, "systemctl cat fledge-supernode")
    assert f"BindReadOnlyPaths={DATA_DIR}" in unit and "ProtectHome=tmpfs" in unit


def test_the_app_completes_its_model_arrives_and_devices_read_their_own_data(
    fleet: inventory.Inventory, own_data: inventory.Host
) -> None:
    code, doc, stderr = start(fleet)
    assert code == 0, stderr[-4000:]
    assert doc["status"] == "finished:completed"
    # No fledge metric line: the round comes from what Flower's strategy logs.
    assert [r["nodes"] for r in doc["rounds"]] == [2]
    folder = Path(doc["results"])
    assert folder == fleet.state_dir / "runs" / doc["run_id"]
    assert doc["files"] == ["final_model.npz"]
    with np.load(folder / "files" / "final_model.npz") as model:
        assert model["arr_0"].shape == (1,)
    assert "mean" in (folder / "serverapp.log").read_text()  # what the ServerApp printed
    assert json.loads((folder / "summary.json").read_text())["run_id"] == doc["run_id"]

    # A device's files come back only when named; pi-1 read its readings from /home.
    fetched = fledge("round", "fetch", doc["run_id"], DATA_HOST, "seen.txt", "-i", fleet.path)
    assert fetched.returncode == 0, fetched.stderr
    rows, total = (folder / "devices" / DATA_HOST / "seen.txt").read_text().split()[-2:]
    assert (int(rows), float(total)) == (len(READINGS), sum(READINGS))
    assert not (folder / "devices" / "pi-2").exists()

    shown = fledge("round", "show", doc["run_id"], "-i", fleet.path, "--format", "json")
    assert json.loads(shown.stdout) == doc
    listed = json.loads(fledge("round", "list", "-i", fleet.path, "--format", "json").stdout)
    assert {r["run_id"]: r["results"] for r in listed["runs"]}[doc["run_id"]] == str(folder)
    log = fledge("round", "logs", doc["run_id"], "-i", fleet.path, "--follow")
    assert log.returncode == 0 and "mean" in log.stdout


def test_a_run_waiting_for_absent_devices_is_stopped_with_the_reason(
    fleet: inventory.Inventory,
) -> None:
    code, doc, stderr = start(fleet, "--config", "wait-for=3", "--node-wait", "20")
    assert code == 3, stderr[-4000:]
    assert doc["status"] == "finished:stopped"
    assert "waited 20 s for 3 devices; 2 are connected" in " ".join(stderr.split())
    log = fledge("round", "logs", doc["run_id"], "-i", fleet.path)
    assert "Waiting for nodes to connect: 2 connected (minimum required: 3)" in log.stdout
