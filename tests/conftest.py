"""How the suite runs: in an order the code states, within time limits, on shared lab fleets.

- Order (:data:`ORDER`): what needs no lab first, so that a broken build
  fails within minutes; then the labs of their own; then the tests of the
  shared fleet (`fleet`), those that read it or undo their changes before
  those that destroy (a reboot, an upgrade, a reset); then a second fleet.
- Time limits: every test has one (pytest-timeout), longer for lab tests;
  a test that needs more says so with its own ``timeout`` mark.
- Lab fleets: tests/integration/conftest.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What runs: "ci" (the default: what CI runs) or "all" (the longer command,
# FLEDGE_TESTS=all: the slow scenarios and every Molecule scenario too).
SCOPE = os.environ.get("FLEDGE_TESTS", "ci").strip()
if SCOPE not in ("ci", "all"):
    raise pytest.UsageError(f"FLEDGE_TESTS is {SCOPE!r}; use ci or all")

# Modules by name, in the order they run; the tests of one module keep their
# order. Modules not listed run after the unit tests, in file order.
ORDER = (
    "tests/test_checks.py",
    "tests/unit/",
    "test_round_local.py",
    "test_converged_check.py",
    "test_collection_quality.py",
    # Labs of their own.
    "test_lab.py",
    "test_molecule.py",
    # The shared fleet: reading it, and changes that are undone ...
    "test_fleet.py",
    "test_monitoring.py",
    "test_container_runtime.py",
    "test_apps.py",
    "test_rounds.py",
    "test_provision.py",
    "test_security.py",
    "test_faults.py",
    "test_preflight.py",
    # ... then what destroys: a reboot, an upgrade during training, a reset.
    "test_raspberrypi.py",
    "test_lifecycle.py",
    # A second fleet on the same controller, once the first is gone.
    "test_second_fleet.py",
)
# Seconds; a lab test's first use of a fleet includes starting and
# provisioning it (and building the lab image on a fresh machine).
LAB_TIMEOUT = 1500


def _rank(item: pytest.Item) -> float:
    path = Path(str(item.path)).relative_to(REPO).as_posix()
    for rank, name in enumerate(ORDER):
        if path.startswith(name) or path.endswith(f"/{name}"):
            return rank
    return ORDER.index("tests/unit/") + 0.5


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: a module's tests keep their order
    if SCOPE != "all":
        # Not collected rather than skipped: they run in the longer command.
        slow = [item for item in items if item.get_closest_marker("slow")]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if not item.get_closest_marker("slow")]
    for item in items:
        if item.get_closest_marker("lab") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(LAB_TIMEOUT))
