"""The collection's Molecule scenarios, each on a lab of its own.

Every scenario (molecule/<name>/) starts a lab, prepares what its role
needs, runs the role in check mode on the prepared hosts, converges it,
converges again with nothing changed, verifies the hosts' real state and
removes the lab (see docs/testing.md).

They are not in CI (its time budget): the lab tests' shared fleet runs every
role there, with real Ansible over real SSH. The longer command
(`FLEDGE_TESTS=all`) runs every scenario; `FLEDGE_MOLECULE=base,flower
pytest -m molecule` the ones named, `FLEDGE_MOLECULE=all` every one.
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
# Emulated arm64 runs everything several times slower.
TIMEOUTS = {"arm64": 7200}
DEFAULT_TIMEOUT = 1800


def _named(wanted: str) -> set[str]:
    if wanted == "all":
        return set(SCENARIOS)
    names = {name.strip() for name in wanted.split(",") if name.strip()}
    unknown = names - set(SCENARIOS)
    if unknown:
        raise pytest.UsageError(
            f"FLEDGE_MOLECULE names unknown scenarios {sorted(unknown)}; "
            f"use all, or some of {SCENARIOS}"
        )
    return names


# Scenarios named in FLEDGE_MOLECULE run whatever the scope; otherwise every
# scenario is `slow`: the longer command runs them, CI does not collect them.
NAMED = os.environ.get("FLEDGE_MOLECULE", "").strip()
SELECTED = _named(NAMED) if NAMED else set(SCENARIOS)
SCOPE_MARKS = () if NAMED else (pytest.mark.slow,)


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
        pytest.param(
            s,
            marks=(pytest.mark.timeout(TIMEOUTS.get(s, DEFAULT_TIMEOUT) + 300), *SCOPE_MARKS),
        )
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
