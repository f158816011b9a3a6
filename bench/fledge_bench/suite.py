"""Which fleets the selected sections need, and running the sections on them.

One fleet at a time, smallest first, each removed before the next starts
(the machine measures one fleet, not several idling beside it):

- provisioning and rerun: a fleet of each size of ``--sizes``;
- ansible-settings and footprint: the smallest size of at least 2 (two
  devices, else another fleet of 2 is started for them);
- rounds: every size of at least 2 (else a fleet of 2);
- ``--arm64``: an emulated arm64 fleet of 1 device, provisioning (and rerun
  when selected), last: it is the long one.

Every fleet is provisioned once, fresh and measured, before its sections run;
the provisioning rows are reported when that section was selected. startup
runs first, on a machine without labs. A section that fails adds an error
row and the others go on; Ctrl-C and SIGTERM end the suite, and the labs go
with it (``lab.Labs``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fledge_bench import lab
from fledge_bench.lab import Labs, Log
from fledge_bench.machine import docker_version
from fledge_bench.measure import BenchError, run
from fledge_bench.model import SECTIONS, Results, Row
from fledge_bench.sections import ansible_settings, footprint, rerun, rounds, startup
from fledge_bench.sections.provisioning import Provisioned, provision
from fledge_bench.sections.provisioning import rows as provisioning_rows

ARM64 = "arm64"
PAIR = 2  # devices: the smallest fleet for rounds, ansible-settings and footprint
WARM_TIMEOUT = 300.0


@dataclass(frozen=True)
class FleetPlan:
    """A fleet to start, and the sections to run on it, in order."""

    size: int
    arch: str | None
    sections: tuple[str, ...]

    @property
    def case(self) -> str:
        devices = f"{self.size} device{'s' if self.size > 1 else ''}"
        return f"{devices}, arm64 (emulated)" if self.arch == ARM64 else devices


def fleet_plans(sections: tuple[str, ...], sizes: tuple[int, ...], arm64: bool) -> list[FleetPlan]:
    wanted: dict[int, set[str]] = {}
    for section in ("provisioning", "rerun"):
        if section in sections:
            for size in sizes:
                wanted.setdefault(size, set()).add(section)
    pair = min((s for s in sizes if s >= PAIR), default=PAIR)
    for section in ("ansible-settings", "footprint"):
        if section in sections:
            wanted.setdefault(pair, set()).add(section)
    if "rounds" in sections:
        for size in [s for s in sizes if s >= PAIR] or [PAIR]:
            wanted.setdefault(size, set()).add("rounds")
    plans = [
        FleetPlan(size, None, tuple(s for s in SECTIONS if s in wanted[size]))
        for size in sorted(wanted)
    ]
    if arm64:
        emulated = ("provisioning", *(("rerun",) if "rerun" in sections else ()))
        plans.append(FleetPlan(1, ARM64, emulated))
    return plans


class Suite:
    """One run of the benchmark suite, adding its rows to ``results`` as it goes."""

    def __init__(self, results: Results, keep: bool, arm64: bool, log: Log) -> None:
        self.results = results
        self.keep = keep
        self.arm64 = arm64
        self.log = log
        self.baseline: tuple[str, Provisioned] | None = None

    def run(self) -> None:
        sections, sizes = self.results.sections, self.results.sizes
        plans = fleet_plans(sections, sizes, self.arm64)
        if plans:
            docker_version()  # a clear message when there is no engine, before anything runs
        if "startup" in sections:
            self.log("startup: fledge's commands against the interpreter alone")
            self._guarded("startup", "", startup.run_all)
        if not plans:
            return
        root = Path(tempfile.mkdtemp(prefix="fledge-bench-"))
        with Labs(root, lab.run_label(), self.keep, self.log) as labs:
            self._warm_matplotlib(labs.mplconfig)
            for plan in plans:
                self._fleet(labs, plan)

    def _fleet(self, labs: Labs, plan: FleetPlan) -> None:
        add = self.results.rows.extend
        try:
            fleet, up = labs.up(plan.size, plan.arch)
            self.log(f"provisioning {fleet.name} with a cold controller cache")
            fresh = provision(fleet)
        except Exception as exc:
            if not isinstance(exc, BenchError):
                self.log(traceback.format_exc())
            reason = f"the fleet could not be set up: {exc}"
            add(Row.error(section, plan.case, reason) for section in plan.sections)
            self._down(labs, plan)
            return
        if self.baseline is None and plan.arch is None:
            self.baseline = (plan.case, fresh)
        if "provisioning" in plan.sections:
            add(provisioning_rows(plan.case, fleet, up, fresh, self.baseline))
        scratch = labs.root / f"scratch-{fleet.name}"
        steps: dict[str, Callable[[], list[Row]]] = {
            "rerun": lambda: rerun.run(plan.case, fleet, fresh),
            "ansible-settings": lambda: ansible_settings.run_all(plan.case, fleet),
            "rounds": lambda: rounds.run(plan.case, fleet, scratch),
            # Last: it switches a device's runtime back and forth.
            "footprint": lambda: footprint.run(plan.case, fleet),
        }
        for section in plan.sections:
            if section in steps:
                self.log(f"{section} on {fleet.name}")
                self._guarded(section, plan.case, steps[section])
        labs.down(fleet)

    def _guarded(self, section: str, case: str, step: Callable[[], list[Row]]) -> None:
        """Run one section; its failure becomes an error row, and the suite goes on."""
        try:
            self.results.rows.extend(step())
        except BenchError as exc:
            self.log(f"{section} failed: {exc}")
            self.results.rows.append(Row.error(section, case, str(exc)))
        except Exception as exc:  # a bug, or something unforeseen: say where, go on
            self.log(f"{section} failed:\n{traceback.format_exc()}")
            self.results.rows.append(Row.error(section, case, f"{type(exc).__name__}: {exc}"))

    def _down(self, labs: Labs, plan: FleetPlan) -> None:
        for fleet in [f for f in labs.fleets() if f.size == plan.size and f.arch == plan.arch]:
            labs.down(fleet)

    def _warm_matplotlib(self, mplconfig: Path) -> None:
        """fledge draws each run's chart with matplotlib, whose first use builds a font cache
        (seconds): the fleets share one, built here, so that no round pays for it."""
        mplconfig.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MPLCONFIGDIR": str(mplconfig)}
        run([sys.executable, "-c", "import matplotlib.font_manager"], timeout=WARM_TIMEOUT, env=env)
