"""The seam between fledge and Ansible: playbooks run through ansible-runner.

ansible-runner gives one structured event per task and host; fledge turns
them into progress and a per-host summary. Its artifact directory records
the environment of the run, so it lives in the fleet's private state
directory (0700) and only the last few runs are kept.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fledge.collection import collections_path
from fledge.errors import FledgeError
from fledge.fsutil import private_dir

KEEP_ARTIFACTS = 5
# The fact by which the deploy playbook skips an unchanged host (fledge.edge.preflight).
CONVERGED_FACT = "fledge_converged"
OUTPUT_TAIL_LINES = 25
# The counters of ansible-playbook's PLAY RECAP, by the names runner uses.
_STATS = {
    "ok": "ok",
    "changed": "changed",
    "failures": "failed",
    "dark": "unreachable",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}


@dataclass
class HostRecap:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0

    @property
    def succeeded(self) -> bool:
        return not (self.failed or self.unreachable)


@dataclass
class Failure:
    host: str
    task: str
    message: str
    unreachable: bool = False


@dataclass
class PlaybookResult:
    rc: int
    status: str
    recap: dict[str, HostRecap] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    artifacts: Path | None = None
    # The end of Ansible's own output, for failures before any host ran.
    output_tail: str = ""
    # Hosts the converged check found as their last complete run left them.
    unchanged: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.rc == 0 and all(r.succeeded for r in self.recap.values())

    @property
    def changed(self) -> int:
        return sum(r.changed for r in self.recap.values())


def failure_message(result: dict[str, Any]) -> str:
    """The most useful line of a failed task's result."""
    for key in ("msg", "stderr", "module_stderr", "reason"):
        value = result.get(key)
        if value:
            return str(value).strip()
    if result.get("results"):  # a loop: report the first failed item
        for item in result["results"]:
            if item.get("failed"):
                return failure_message(item)
    return "failed (no message; run again with -v for details)"


def ansible_env() -> dict[str, str]:
    """Environment for every Ansible process fledge starts."""
    return {
        # Our collection and nothing else: a stale copy elsewhere must not win.
        "ANSIBLE_COLLECTIONS_PATH": str(collections_path()),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
        # Explicit, whatever a user's ansible.cfg says: host keys are checked.
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        # The action plugins import fledge; make sure Ansible's Python finds it.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _move_legacy_records(artifacts: Path, state_dir: Path) -> None:
    """fledge 0.1 kept `--retry-failed`'s record (failed-<playbook>.json) among the
    artifacts; ansible-runner rotates that directory with rmtree, which fails on a
    file. The record moves to where fledge keeps it now, unless a newer one is there."""
    for record in artifacts.glob("failed-*.json"):
        if (state_dir / record.name).exists():
            record.unlink()
        else:
            record.replace(state_dir / record.name)


def run_playbook(
    playbook: Path,
    inventory: Path,
    state_dir: Path,
    *,
    check: bool = False,
    limit: str | None = None,
    tags: Sequence[str] = (),
    verbosity: int = 0,
    extravars: Mapping[str, Any] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> PlaybookResult:
    """Run ``playbook`` against ``inventory`` and collect a per-host recap."""
    import ansible_runner

    # ansible-runner finds ansible-playbook on PATH; ansible_env() puts ours first.
    if not (Path(sys.executable).parent / "ansible-playbook").exists():
        raise FledgeError(
            f"ansible-playbook is not installed next to {sys.executable}",
            fix="reinstall fledge (pip install fledge-edge) so that ansible-core comes with it",
        )
    cmdline = ["--check", "--diff"] if check else []
    failures: list[Failure] = []
    unchanged: list[str] = []

    def handle(event: dict[str, Any]) -> bool:
        data = event.get("event_data", {})
        facts = (data.get("res") or {}).get("ansible_facts") or {}
        if event.get("event") == "runner_on_ok" and facts.get(CONVERGED_FACT) is True:
            unchanged.append(data.get("host", "?"))
        if event.get("event") in ("runner_on_failed", "runner_on_unreachable") and not data.get(
            "ignore_errors"
        ):
            failures.append(
                Failure(
                    host=data.get("host", "?"),
                    task=data.get("task", "?"),
                    message=failure_message(data.get("res", {})),
                    unreachable=event["event"] == "runner_on_unreachable",
                )
            )
        if on_event:
            on_event(event)
        return True  # keep the event in the artifacts

    # ansible-runner saves the command line of a run in its private data dir
    # and reuses it when the next run passes none: a --check run would turn
    # the next real run into a dry run. Every run starts from a fresh one;
    # only the artifacts are kept.
    artifacts = private_dir(state_dir / "runner")
    _move_legacy_records(artifacts, state_dir)
    with tempfile.TemporaryDirectory(prefix="fledge-runner-") as scratch:
        runner = ansible_runner.run(
            private_data_dir=scratch,
            artifact_dir=str(artifacts),
            playbook=str(playbook),
            inventory=str(inventory.resolve()),
            envvars=ansible_env(),
            cmdline=" ".join(cmdline) or None,
            limit=limit,
            extravars=dict(extravars or {}),
            tags=",".join(tags) or None,
            verbosity=verbosity or None,
            event_handler=handle,
            quiet=True,
            rotate_artifacts=KEEP_ARTIFACTS,
        )
    stats = runner.stats or {}
    recap = {host: HostRecap() for host in stats.get("processed", {})}
    for stat, attr in _STATS.items():
        for host, count in stats.get(stat, {}).items():
            setattr(recap.setdefault(host, HostRecap()), attr, count)
    tail = ""
    if not recap:
        tail = "\n".join(runner.stdout.read().splitlines()[-OUTPUT_TAIL_LINES:])
    return PlaybookResult(
        output_tail=tail,
        rc=runner.rc if runner.rc is not None else 1,
        status=runner.status,
        recap=recap,
        failures=failures,
        artifacts=Path(runner.config.artifact_dir),
        unchanged=sorted(unchanged),
    )
