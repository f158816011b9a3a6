"""run_playbook against the controller itself: real ansible-playbook, real events."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fledge.runner import KEEP_ARTIFACTS, failure_message, run_playbook

PLAYBOOK = """\
- name: A play on the controller
  hosts: all
  gather_facts: false
  tasks:
    - name: Write a file
      ansible.builtin.copy:
        content: "hello\\n"
        dest: "{{ target }}"
        mode: "0600"
    - name: Fail on request
      ansible.builtin.fail:
        msg: asked to fail
      when: fail_please | default(false) | bool
"""


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path, Path]:
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    inventory = tmp_path / "hosts.yml"
    target = tmp_path / "out.txt"
    inventory.write_text(
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: python3\n      target: {target}\n"
    )
    return playbook, inventory, tmp_path / "state"


def test_check_run_does_not_turn_the_next_run_into_a_dry_run(project) -> None:
    playbook, inventory, state = project
    target = inventory.parent / "out.txt"
    dry = run_playbook(playbook, inventory, state, check=True)
    assert dry.succeeded and dry.recap["here"].changed == 1
    assert not target.exists()
    real = run_playbook(playbook, inventory, state)
    assert real.succeeded and real.recap["here"].changed == 1
    assert target.read_text() == "hello\n"
    again = run_playbook(playbook, inventory, state)
    assert again.recap["here"].changed == 0


def test_events_failures_and_private_artifacts(project) -> None:
    playbook, inventory, state = project
    inventory.write_text(inventory.read_text() + "      fail_please: true\n")
    events: list[str] = []
    result = run_playbook(playbook, inventory, state, on_event=lambda e: events.append(e["event"]))
    assert not result.succeeded and result.recap["here"].failed == 1
    [failure] = result.failures
    assert (failure.host, failure.task) == ("here", "Fail on request")
    assert failure.message == "asked to fail"
    assert {"playbook_on_play_start", "runner_on_ok", "runner_on_failed"} <= set(events)
    assert stat.S_IMODE((state / "runner").stat().st_mode) == 0o700
    assert (result.artifacts / "stdout").is_file()


def test_an_older_fledges_record_among_the_artifacts_moves_out_of_rotations_way(project) -> None:
    """fledge 0.1 wrote failed-<playbook>.json into the artifact directory, whose
    rotation (rmtree on the oldest entries) then failed on every run."""
    playbook, inventory, state = project
    runner_dir = state / "runner"
    runner_dir.mkdir(parents=True)
    legacy = runner_dir / "failed-deploy.json"
    legacy.write_text('{"failed": ["pi-3"]}\n')
    os.utime(legacy, (1, 1))  # the oldest entry: the first that rotation removes
    for n in range(KEEP_ARTIFACTS):
        (runner_dir / f"run-{n}").mkdir()
    result = run_playbook(playbook, inventory, state)
    assert result.succeeded
    assert (state / "failed-deploy.json").read_text() == '{"failed": ["pi-3"]}\n'
    assert not legacy.exists()
    assert len(list(runner_dir.iterdir())) == KEEP_ARTIFACTS


def test_failure_message_prefers_msg_then_stderr_then_loop_items() -> None:
    assert failure_message({"msg": "m", "stderr": "e"}) == "m"
    assert failure_message({"stderr": " e \n"}) == "e"
    loop = {"results": [{"failed": False}, {"failed": True, "msg": "item"}]}
    assert failure_message(loop) == "item"
    assert "no message" in failure_message({})
