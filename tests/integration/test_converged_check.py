"""The converged check through real Ansible, on this machine (no lab): a host stays
converged until it or the inventory changes."""

from __future__ import annotations

from pathlib import Path

from fledge.collection import collection_dir
from fledge.runner import run_playbook

CHECK = """\
- name: The converged check on the controller itself
  hosts: all
  gather_facts: false
  tasks:
    - name: Compare
      fledge.edge.converged:
        state_dir: "{{ state }}"
        stamp: "{{ stamp }}"
        files: ["{{ managed }}"]
        clock_max_ahead: 5
        clock_max_behind: 300
      register: check
    - name: Record
      fledge.edge.converged:
        state_dir: "{{ state }}"
        stamp: "{{ stamp }}"
        files: ["{{ managed }}"]
        record: true
      when: not check.converged
"""


def test_a_host_is_converged_until_it_or_the_inventory_changes(tmp_path: Path) -> None:
    playbook = tmp_path / "check.yml"
    playbook.write_text(CHECK)
    managed = tmp_path / "managed"
    managed.mkdir()
    (managed / "unit").write_text("ExecStart=flower-supernode\n")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: python3\n"
        f"      state: {tmp_path / 'state'}\n      stamp: {tmp_path / 'stamp'}\n"
        f"      managed: {managed}\n"
    )

    def unchanged() -> bool:
        result = run_playbook(playbook, inventory, tmp_path / "runner")
        assert result.succeeded, result.failures
        return result.unchanged == ["here"]

    assert not unchanged()  # never recorded: checked in full, then recorded
    assert unchanged()
    (managed / "unit").write_text("ExecStart=something else\n")  # drift on the host
    assert not unchanged()
    assert unchanged()
    inventory.write_text(inventory.read_text() + "      another: setting\n")
    assert not unchanged()
    assert unchanged()


def test_only_a_run_of_every_task_may_skip_or_stamp_a_host(tmp_path: Path) -> None:
    """The deploy playbook's condition, as ansible-core evaluates it (it gives the tags
    as tuples, which never equal a list: the check and the stamp never ran)."""
    playbook = tmp_path / "tags.yml"
    playbook.write_text(
        "- hosts: all\n  gather_facts: false\n"
        f"  vars_files: [{collection_dir() / 'roles/preflight/vars/main.yml'}]\n"
        "  tasks:\n"
        "    - name: The condition\n      tags: always\n"
        "      ansible.builtin.assert:\n"
        "        that: (_preflight_every_task | bool) == (expected | bool)\n"
    )
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n"
        "      ansible_python_interpreter: python3\n"
    )
    for tags, expected in (((), True), (("supernode_configure",), False)):
        result = run_playbook(
            playbook, inventory, tmp_path / "runner", tags=tags, extravars={"expected": expected}
        )
        assert result.succeeded, (tags, result.failures)
