"""Provisioning again: nothing changed, every task anyway, one variable changed.

Right after a fleet's first provisioning: `fledge provision` again (the
converged check finds every host as the last complete run left it: the JSON
report lists them in "unchanged"), `fledge provision --full` (every task on
every host), and `fledge provision` after one host variable changed on one
host (``host_vars/pi-1.yml`` with ``fledge_runs_keep: 6``; the file is
removed again afterwards). Wall and controller CPU time of each, as ratios
to the fleet's first provisioning.
"""

from __future__ import annotations

from fledge_bench.lab import PROVISION_TIMEOUT, Fleet
from fledge_bench.model import Row, ratio
from fledge_bench.sections import report
from fledge_bench.sections.provisioning import Provisioned

SECTION = "rerun"
CHANGED_HOST = "pi-1"
CHANGED_VARS = "---\n# Written by bench/run, removed after one provisioning.\nfledge_runs_keep: 6\n"


def run(case: str, fleet: Fleet, fresh: Provisioned) -> list[Row]:
    rows = []

    def provision(figure: str, *args: str) -> dict:
        result = fleet.fledge(
            "provision", "-i", fleet.inventory, "--format", "json", *args,
            timeout=PROVISION_TIMEOUT[fleet.kind],
        )  # fmt: skip
        doc = report(result, f"fledge provision {' '.join(args)}".strip())
        unchanged = doc.get("unchanged", [])
        rows.append(
            Row(SECTION, case, figure, result.wall, "s", ratio(result.wall, fresh.wall),
                f"ratio to the first provisioning; controller CPU {result.cpu:.1f} s "
                f"({result.cpu / fresh.cpu:.2f}x the first's); {doc.get('changed', '?')} changes; "
                f"unchanged (skipped): {len(unchanged)}/{len(fleet.hosts)} hosts"),
        )  # fmt: skip
        return doc

    provision("no change (converged check)")
    provision("every task (--full)", "--full")
    fleet.host_vars(CHANGED_HOST, CHANGED_VARS)
    try:
        provision(f"one variable changed on {CHANGED_HOST}")
    finally:
        fleet.host_vars(CHANGED_HOST, None)
    return rows
