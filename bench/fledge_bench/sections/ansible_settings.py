"""What each of fledge's Ansible settings buys: full re-runs with one setting changed.

`ansible-playbook -i INVENTORY <the collection's deploy playbook> -e
fledge_full=true` (every task on every host, as `fledge provision --full`)
with the environment fledge gives Ansible (``fledge.runner.ansible_env``),
then with one thing changed: pipelining off, SSH connection reuse off
(``-o ControlMaster=no`` in place of Ansible's default ``ControlPersist=60s``,
compression kept), forks 1 (Ansible's default is 5), and the Mitogen
strategy when the ``mitogen`` package is installed (not installed by the
suite). fledge's own settings run first and last; their mean is what the
others are compared with, and the two show how steady the machine was.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from fledge.collection import playbook
from fledge.runner import ansible_env
from fledge_bench.lab import BIN, PROVISION_TIMEOUT, Fleet
from fledge_bench.measure import BenchError, Result, run
from fledge_bench.model import Row, mean, ratio

SECTION = "ansible-settings"
FLEDGE = "fledge's settings"


@dataclass(frozen=True)
class Variant:
    name: str
    env: dict[str, str]
    missing: str | None = None  # why it cannot run


def mitogen() -> Variant:
    name = "Mitogen strategy (mitogen_linear)"
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None or not spec.submodule_search_locations:
        return Variant(name, {}, missing="not installed (the mitogen package)")
    strategy = Path(next(iter(spec.submodule_search_locations))) / "plugins" / "strategy"
    return Variant(
        name,
        {"ANSIBLE_STRATEGY_PLUGINS": str(strategy), "ANSIBLE_STRATEGY": "mitogen_linear"},
    )


def variants() -> list[Variant]:
    """The settings compared with fledge's, one change each."""
    return [
        Variant("pipelining off", {"ANSIBLE_PIPELINING": "False"}),
        Variant("SSH connection reuse off", {"ANSIBLE_SSH_ARGS": "-C -o ControlMaster=no"}),
        Variant("forks 1 (default 5)", {"ANSIBLE_FORKS": "1"}),
        mitogen(),
    ]


def full_run(fleet: Fleet, variant: Variant) -> Result:
    env = {**fleet.env(), **ansible_env(), **variant.env}
    return run(
        [
            BIN / "ansible-playbook",
            "-i",
            fleet.inventory,
            playbook("deploy"),
            "-e",
            "fledge_full=true",
        ],
        timeout=PROVISION_TIMEOUT[fleet.kind],
        env=env,
        cwd=fleet.directory,  # no ansible.cfg of anyone else's
    )


def run_all(case: str, fleet: Fleet) -> list[Row]:
    case = f"{case}, full re-run"
    baseline = Variant(FLEDGE, {})
    first = full_run(fleet, baseline).check(f"ansible-playbook with {FLEDGE}")
    measured: list[tuple[Variant, Result | None]] = []
    for variant in variants():
        if variant.missing:
            measured.append((variant, None))
            continue
        measured.append((variant, full_run(fleet, variant)))
    last = full_run(fleet, baseline).check(f"ansible-playbook with {FLEDGE}")
    reference = mean([first.wall, last.wall])
    rows = [
        Row(SECTION, case, FLEDGE, reference, "s", 1.0,
            f"mean of the first and the last run: {first.wall:.1f} s and {last.wall:.1f} s "
            "(ansible_env: pipelining on, ControlPersist=60s, forks 5)"),
    ]  # fmt: skip
    for variant, result in measured:
        if result is None:
            rows.append(Row(SECTION, case, variant.name, None, "s", None, variant.missing or ""))
        elif not result.ok:
            error = BenchError(f"failed (exit {result.returncode}): {result.tail(3)}")
            rows.append(Row(SECTION, case, variant.name, None, "s", None, str(error)))
        else:
            rows.append(
                Row(SECTION, case, variant.name, result.wall, "s", ratio(result.wall, reference),
                    f"ratio to {FLEDGE}; controller CPU {result.cpu:.1f} s"),
            )  # fmt: skip
    return rows
