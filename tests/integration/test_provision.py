"""`fledge provision` on the shared fleet: a failed host is named and fails the run; tags select.

A host made to fail preflight (its host variables ask for a clock it cannot
have) fails alone: the exit code says failure, the summary and the JSON
report name it and the task, the other hosts complete. `--tags` runs the
tasks it names (and preflight, which always runs), nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fledge import inventory

from helpers import fledge

pytestmark = pytest.mark.lab


@pytest.fixture
def failing_pi2(fleet: inventory.Inventory) -> Iterator[Path]:
    """pi-2 with a preflight limit it cannot meet, for this test only."""
    host_vars = fleet.path.parent / "host_vars"
    host_vars.mkdir(exist_ok=True)
    path = host_vars / "pi-2.yml"
    path.write_text("preflight_clock_max_ahead: -3600\n")
    try:
        yield path
    finally:
        path.unlink()


def test_a_failing_host_is_named_and_fails_the_run(
    fleet: inventory.Inventory, failing_pi2: Path
) -> None:
    result = fledge("provision", "-i", fleet.path, "--format", "json")
    assert result.returncode == 1, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert not report["succeeded"]
    assert {f["host"] for f in report["failures"]} == {"pi-2"}
    (failure,) = report["failures"]
    assert failure["task"] == "Refuse a host whose clock is off"
    assert "The clock of pi-2 is off" in failure["message"]
    verdicts = {host: recap["succeeded"] for host, recap in report["hosts"].items()}
    assert verdicts == {"coordinator": True, "pi-1": True, "pi-2": False}
    # People see it too: the host, the task, and where the whole log is.
    assert "pi-2" in result.stderr and "Refuse a host whose clock is off" in result.stderr
    assert "Provisioning failed" in result.stderr


def _tasks_run(report: dict) -> dict[str, set[str]]:
    """Per host, the tasks that ran (from ansible-runner's events in the run's artifacts)."""
    tasks: dict[str, set[str]] = {}
    for event_file in (Path(report["artifacts"]) / "job_events").glob("*.json"):
        event = json.loads(event_file.read_text())
        if event.get("event") in ("runner_on_ok", "runner_on_failed"):
            data = event["event_data"]
            tasks.setdefault(data["host"], set()).add(data["task"])
    return tasks


def test_tags_select_the_tasks_that_run(fleet: inventory.Inventory) -> None:
    result = fledge(
        "provision", "-i", fleet.path, "--tags", "supernode_configure", "--format", "json"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["changed"] == 0
    tasks = _tasks_run(report)
    for device in ("pi-1", "pi-2"):
        assert "Install the SuperNode unit" in tasks[device]
        assert "Refuse a host whose clock is off" in tasks[device]  # preflight always runs
        assert "Install the Docker engine packages" not in tasks[device]
        assert "Install Flower into the virtual environment" not in tasks[device]
    assert "Install the SuperLink unit" not in tasks["coordinator"]
