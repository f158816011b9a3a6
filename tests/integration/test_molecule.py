"""The collection's Molecule scenarios, each on a lab of its own.

Every scenario (molecule/<name>/) starts a lab, prepares what its role
needs, runs the role in check mode on the prepared hosts, converges it,
converges again with nothing changed, verifies the hosts' real state and
removes the lab (see docs/testing.md).

`pytest -m molecule` runs the scenarios that fit CI's time budget (the
others are not collected: they are not failures hidden as skips, they run
in the longer command); `FLEDGE_MOLECULE=all` runs every scenario, and
`FLEDGE_MOLECULE=base,flower` the ones named.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from helpers import BIN, REPO

SCENARIOS = sorted(path.parent.name for path in (REPO / "molecule").glob("*/molecule.yml"))
# Measured durations are in docs/testing.md; the others run with FLEDGE_MOLECULE=all
# (or FLEDGE_TESTS=all). The lab tests' shared fleet runs every role in CI; one
# scenario keeps Molecule's own path (check mode, converge, idempotence, verify) there.
CI_SCENARIOS = ("superlink",)
# Emulated arm64 runs everything several times slower.
TIMEOUTS = {"arm64": 7200}
DEFAULT_TIMEOUT = 1800


def _selected(wanted: str) -> set[str]:
    if wanted == "ci":
        return set(CI_SCENARIOS)
    if wanted == "all":
        return set(SCENARIOS)
    names = {name.strip() for name in wanted.split(",") if name.strip()}
    unknown = names - set(SCENARIOS)
    if unknown:
        raise pytest.UsageError(
            f"FLEDGE_MOLECULE names unknown scenarios {sorted(unknown)}; "
            f"use ci, all, or some of {SCENARIOS}"
        )
    return names


# The longer command (FLEDGE_TESTS=all) runs every scenario.
WANTED = os.environ.get("FLEDGE_MOLECULE", os.environ.get("FLEDGE_TESTS", "ci")).strip()
SELECTED = _selected(WANTED)


def test_ci_scenarios_exist() -> None:
    assert set(CI_SCENARIOS) <= set(SCENARIOS)


def _remove_lab(ephemeral: Path) -> None:
    """The lab that the scenario's create step recorded, if it is still there."""
    record = ephemeral / "lab.yml"
    if record.is_file():
        name = yaml.safe_load(record.read_text())["lab_name"]
        subprocess.run(
            [str(BIN / "fledge"), "lab", "down", "--name", name, "--dir", str(ephemeral / "lab")],
            capture_output=True,
            timeout=300,
            check=False,
        )


@pytest.mark.lab
@pytest.mark.molecule
@pytest.mark.parametrize(
    "scenario",
    [
        pytest.param(s, marks=pytest.mark.timeout(TIMEOUTS.get(s, DEFAULT_TIMEOUT) + 300))
        for s in sorted(SELECTED)
    ],
)
def test_scenario(scenario: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        # molecule calls ansible-playbook and ansible-config by name.
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        # A private working directory: runs from other checkouts or
        # sessions never share a scenario's state or lab.
        "MOLECULE_EPHEMERAL_DIRECTORY": str(tmp_path / "molecule"),
        "NO_COLOR": "1",
    }
    command = [
        str(BIN / "molecule"),
        "--base-config",
        "molecule/config.yml",
        "test",
        "--scenario-name",
        scenario,
    ]
    started = time.monotonic()
    try:
        result = subprocess.run(
            command,
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUTS.get(scenario, DEFAULT_TIMEOUT),
            check=False,
        )
    finally:
        # Molecule's own destroy step does not run when it is interrupted or killed.
        _remove_lab(tmp_path / "molecule")
    print(f"molecule test -s {scenario}: {time.monotonic() - started:.0f} s")  # pytest -s shows it
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-8000:]
