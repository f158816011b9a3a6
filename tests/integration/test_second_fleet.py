"""A second fleet on the same controller: the collection alone, other settings, nothing downloaded.

After the shared fleet, a second lab (a coordinator and one device) is
provisioned the way a Galaxy user would do it: the collection's built
artifact, installed into an empty collections path, run by ansible-playbook
from a Python environment that has Ansible and the collection's declared
requirements but not the fledge package. Its fleet-wide settings differ
from the defaults in one place, ``group_vars/all.yml`` beside the
inventory (another service account, other directories, another SuperLink
port), and every role follows. Its wheelhouse comes from the controller's cache, which the first
fleet filled: pip may not reach a package index at all (``--no-index``),
and the run reports that it built nothing. A dry run of the same artifact
then reports no change. Then fledge trains on it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from fledge import inventory

from helpers import REPO, build_and_install, fledge, lab, on, recap

pytestmark = pytest.mark.lab

# The fleet-wide settings this fleet changes, each in this one file.
SETTINGS = {
    "fledge_user": "flwrsvc",
    "fledge_group": "flwrsvc",
    "fledge_config_dir": "/etc/flwr-edge",
    "fledge_install_dir": "/srv/flwr-edge",
    "fledge_var_dir": "/srv/flwr-edge-state",
    "superlink_port": 8100,
    # Wheels come from the cache, or not at all.
    "flower_pip_download_args": ["--no-index"],
    # Fewer services to start: this fleet is about the settings above.
    "fledge_monitoring": False,
}


@pytest.fixture(scope="module")
def python_without_fledge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with the controller's packages, fledge excepted.

    The test machine is offline but for the package index, which this test
    must not need: the environment sees this one's site-packages through a
    .pth file, whose own .pth files (the editable install of fledge) Python
    does not process.
    """
    venv = tmp_path_factory.mktemp("no-fledge") / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120
    )
    purelib = Path(sysconfig.get_paths()["purelib"])
    target = venv / purelib.relative_to(Path(sys.prefix))
    (target / "controller.pth").write_text(f"{purelib}\n")
    python = venv / "bin" / "python"
    for missing in ("fledge", "ansible_collections"):
        probe = subprocess.run(
            [str(python), "-c", f"import {missing}"], capture_output=True, timeout=60
        )
        assert probe.returncode != 0, f"{missing} is importable in {venv}"
    return python


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> Iterator[inventory.Inventory]:
    with lab(tmp_path_factory, "second", nodes=1) as fleet:
        group_vars = fleet.path.parent / "group_vars"
        group_vars.mkdir()
        (group_vars / "all.yml").write_text(yaml.safe_dump(SETTINGS))
        yield inventory.load(fleet.path)


@pytest.fixture(scope="module")
def galaxy_playbook(
    second: inventory.Inventory,
    python_without_fledge: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """ansible-playbook fledge.edge.deploy on the second fleet, from the Galaxy artifact,
    without fledge."""
    collections = build_and_install(tmp_path_factory.mktemp("galaxy"))
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_NOCOLOR": "True",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python_without_fledge), "-m", "ansible.cli.playbook", "-v",
             "-i", str(second.path), "fledge.edge.deploy", *args],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=1200, check=False,
        )  # fmt: skip

    return run


@pytest.fixture(scope="module")
def deployed(galaxy_playbook: Callable[..., subprocess.CompletedProcess[str]]) -> str:
    """The deployment's output."""
    result = galaxy_playbook()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return result.stdout


def test_the_galaxy_artifact_deploys_without_the_fledge_package(deployed: str) -> None:
    counters = recap(deployed)
    assert set(counters) == {"coordinator", "pi-1"}
    assert all(c["failed"] == 0 and c["unreachable"] == 0 for c in counters.values()), counters
    # The controller-side steps ran: certificates, data, wheelhouse.
    for task in (
        "Issue the SuperLink's certificate on the controller",
        "Prepare one partition per device on the controller",
        "Build the wheelhouse on the controller, once per platform",
    ):
        assert task in deployed, task


def test_the_second_fleet_downloads_no_wheel(deployed: str) -> None:
    """The cache served both plays' wheelhouses; pip could not have reached an index."""
    built = [json.loads(m) for m in re.findall(r'"built": (\[[^\]]*\])', deployed)]
    cached = [json.loads(m) for m in re.findall(r'"cached": (\[[^\]]*\])', deployed)]
    assert built == [[], []], built
    assert len(cached) == 2 and all(cached), cached


def test_the_galaxy_artifact_in_check_mode_reports_no_changes(
    galaxy_playbook: Callable[..., subprocess.CompletedProcess[str]], deployed: str
) -> None:
    result = galaxy_playbook("--check")
    assert result.returncode == 0, result.stdout[-4000:]
    counters = recap(result.stdout)
    assert set(counters) == {"coordinator", "pi-1"}
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in counters.values()), counters


def test_every_role_follows_the_settings_given_once(
    second: inventory.Inventory, deployed: str
) -> None:
    user, config, install, state = (
        SETTINGS["fledge_user"], SETTINGS["fledge_config_dir"],
        SETTINGS["fledge_install_dir"], SETTINGS["fledge_var_dir"],
    )  # fmt: skip
    coordinator, device = second.hosts
    for host, unit in ((coordinator, "fledge-superlink"), (device, "fledge-supernode")):
        assert on(host, f"systemctl show -P User {unit}") == user
        assert on(host, f"systemctl is-active {unit}") == "active"
        exec_start = on(host, f"systemctl show -P ExecStart {unit}")
        assert f"{install}/venv/bin/" in exec_start and f"{config}/tls/ca.crt" in exec_start
        assert on(host, f"stat -c %U:%G {state}") == f"{user}:{user}"
        assert on(host, f"sudo stat -c %G {config}/tls/ca.crt") == user
        for default in ("/opt/fledge", "/etc/fledge", "/var/lib/fledge"):
            assert on(host, f"test -e {default} && echo left || echo none") == "none", default
        assert on(host, "getent passwd fledge || echo none") == "none"
    assert on(device, f"sudo stat -c %U {state}/data/digits-partition.npz") == user
    # The fleet's port: the proxy listens there alone, and the device dials it.
    port = SETTINGS["superlink_port"]
    listening = on(coordinator, "ss -Hltn | awk '{print $4}'").split()
    assert f"0.0.0.0:{port}" in listening or f"*:{port}" in listening, listening
    assert not any(address.endswith(":8000") for address in listening), listening
    assert f":{port}" in on(device, "systemctl show -P ExecStart fledge-supernode")


def test_fledge_trains_on_the_second_fleet(second: inventory.Inventory, deployed: str) -> None:
    result = fledge("round", "start", "-i", second.path, "--rounds", 2, "--format", "json")
    assert result.returncode == 0, result.stderr[-4000:]
    run = json.loads(result.stdout)
    assert run["status"] == "finished:completed"
    assert [r["nodes"] for r in run["rounds"]] == [1, 1]
