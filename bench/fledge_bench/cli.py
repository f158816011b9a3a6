"""``bench/run``: the options, and what it leaves behind (a table, docs/benchmarks.md,
its chart, optionally the raw results as JSON)."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fledge_bench import machine, report
from fledge_bench.chart import write_chart
from fledge_bench.lab import REPO
from fledge_bench.measure import BenchError
from fledge_bench.model import SECTIONS, Results
from fledge_bench.sections.footprint import PI_SPARE_MIB
from fledge_bench.suite import Suite

DEFAULT_SIZES = (1, 2, 4)
DEFAULT_OUTPUT = REPO / "docs" / "benchmarks.md"
DEFAULT_CHART = REPO / "docs" / "benchmarks.png"
MAX_SIZE = 32


@dataclass(frozen=True)
class Options:
    sections: tuple[str, ...]
    sizes: tuple[int, ...]
    arm64: bool
    output: Path
    chart: Path
    json: Path | None
    keep: bool
    update: Path | None = None


def sizes(text: str) -> tuple[int, ...]:
    """``1,2,4`` as (1, 2, 4): fleet sizes, sorted, each once."""
    try:
        values = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of numbers like 1,2,4") from None
    if not values or not all(1 <= v <= MAX_SIZE for v in values):
        raise argparse.ArgumentTypeError(f"fleet sizes go from 1 to {MAX_SIZE} devices")
    return tuple(sorted(values))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="fledge's benchmarks: starts lab fleets, measures provisioning, re-runs, "
        "Ansible settings, training rounds against plain Flower, the footprint on a device and "
        "the command's startup; prints a table and writes docs/benchmarks.md with a chart. "
        "Labs it starts are removed at the end, also on failure or Ctrl-C (unless --keep).",
        epilog="Default: every section on fleets of 1, 2 and 4 devices (roughly 1.5 hours on "
        "2 cores; --arm64 adds 1 to 1.5 hours). Quick: bench/run --sizes 1,2 --only provisioning "
        "--only rerun (roughly 20 minutes). Needs a Docker engine (scripts/setup starts one), "
        "except --only startup. Runs with the project's .venv.",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run this section only (repeat for more): {', '.join(SECTIONS)}",
    )
    p.add_argument(
        "--sizes",
        type=sizes,
        default=DEFAULT_SIZES,
        metavar="N,N,...",
        help="fleet sizes in devices (default: 1,2,4)",
    )
    p.add_argument(
        "--arm64",
        action="store_true",
        help="also an emulated arm64 fleet of 1 device: provisioning (and rerun), much longer",
    )
    p.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        metavar="FILE",
        help="the report to write (default: docs/benchmarks.md)",
    )
    p.add_argument(
        "--chart",
        type=Path,
        default=DEFAULT_CHART,
        metavar="FILE",
        help="the chart to write, a PNG (default: docs/benchmarks.png)",
    )
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the raw results as JSON")
    p.add_argument(
        "--update",
        type=Path,
        metavar="FILE",
        help="an earlier run's --json: the report keeps its sections that this run does not "
        "measure, and says when each was measured",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="leave the lab fleets up (each then idles beside the later ones) and say how to "
        "remove them",
    )
    return p


def parse(argv: Sequence[str]) -> Options:
    args = parser().parse_args(list(argv))
    only = set(args.only or SECTIONS)
    return Options(
        sections=tuple(s for s in SECTIONS if s in only),
        sizes=args.sizes,
        arm64=args.arm64,
        output=args.output.resolve(),
        chart=args.chart.resolve(),
        json=args.json.resolve() if args.json else None,
        keep=args.keep,
        update=args.update.resolve() if args.update else None,
    )


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def write(results: Results, options: Options) -> None:
    """The report, its chart and the JSON, as asked."""
    title = f"fledge benchmarks, {results.started:%Y-%m-%d} ({results.machine.get('cpu', '')})"
    references = {"footprint": (float(PI_SPARE_MIB), "what a 1 GB Pi can spare")}
    drawn = write_chart(results.rows, options.chart, title, references)
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(
        report.render_markdown(results, options.chart if drawn else None, options.output)
    )
    log(f"wrote {options.output}" + (f" and {options.chart}" if drawn else ""))
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps(results.to_json(), indent=2) + "\n")
        log(f"wrote {options.json}")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    options = parse(args)
    # SIGTERM ends the suite as Ctrl-C does: through its cleanup.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return measure(options, shlex.join(["bench/run", *args]))
    finally:
        signal.signal(signal.SIGTERM, previous)


def measure(options: Options, command: str) -> int:
    """Run the suite; print the table and write the files. The exit status."""
    results = Results(
        command=command,
        started=datetime.now(UTC),
        sections=options.sections,
        sizes=options.sizes,
        load_start=os.getloadavg(),
    )
    log(f"sections: {', '.join(options.sections)}; fleet sizes: {options.sizes}")
    earlier = None
    if options.update:  # read first: a bad file is said before an hour of measuring
        try:
            earlier = json.loads(options.update.read_text())
            Results(command="", started=results.started).keep_from(earlier)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log(f"bench/run: --update {options.update}: not the JSON of a run ({exc})")
            return 2
    try:
        results.machine = machine.describe()
        Suite(results, options.keep, options.arm64, log).run()
    except BenchError as exc:  # before anything was measured: no Docker engine, say
        log(f"bench/run: {exc}")
        return 2
    except KeyboardInterrupt:
        log("interrupted: nothing written" + ("" if options.keep else "; the labs are removed"))
        if results.rows:
            print(report.render_table(results.rows))
        return 130
    results.finished = datetime.now(UTC)
    results.load_end = os.getloadavg()
    failures = results.failures  # this run's: kept rows were reported by theirs
    if earlier is not None:
        results.keep_from(earlier)
    print(report.render_table(results.rows))
    write(results, options)
    if failures:
        log(f"{len(failures)} section(s) failed: see the table")
        return 1
    return 0
