"""How fast the fledge command starts, against the interpreter importing Typer alone.

Each command (``fledge --help``, ``fledge round list --help``, ``fledge
--version``) is timed against ``python -c "import typer"`` on the same
interpreter, alternately A B A B ... 10 times each after one warm-up of both,
so that both see the same state of the machine. Reported: the median wall
time of each and the median of the ratios of the pairs (A_i / B_i), which a
busy machine disturbs least.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from fledge_bench.lab import BIN
from fledge_bench.measure import run
from fledge_bench.model import Row, median, pairwise_ratios

SECTION = "startup"
REPEATS = 10
TIMEOUT = 60.0
BASELINE_NAME = 'python -c "import typer"'
BASELINE = [sys.executable, "-c", "import typer"]
COMMANDS = {
    "fledge --help": ["--help"],
    "fledge round list --help": ["round", "list", "--help"],
    "fledge --version": ["--version"],
}

Timer = Callable[[Sequence[str]], float]


def wall(command: Sequence[str]) -> float:
    """Seconds ``command`` took; it must succeed."""
    return run(command, timeout=TIMEOUT).check().wall


def alternate(
    a: Sequence[str], b: Sequence[str], repeats: int = REPEATS, timer: Timer = wall
) -> tuple[list[float], list[float]]:
    """One warm-up of each, then ``repeats`` pairs: A B A B ...; the times of A and of B."""
    timer(a)
    timer(b)
    times_a, times_b = [], []
    for _ in range(repeats):
        times_a.append(timer(a))
        times_b.append(timer(b))
    return times_a, times_b


def run_all(repeats: int = REPEATS, timer: Timer = wall) -> list[Row]:
    rows = []
    baseline: list[float] = []
    for name, args in COMMANDS.items():
        times, base = alternate([str(BIN / "fledge"), *args], BASELINE, repeats, timer)
        baseline += base
        rows.append(
            Row(SECTION, name, "median wall", median(times), "s",
                median(pairwise_ratios(times, base)),
                f"median of {repeats} ratios to {BASELINE_NAME} run right after each; "
                f"that alone: median {median(base):.3f} s"),
        )  # fmt: skip
    rows.append(
        Row(SECTION, BASELINE_NAME, "median wall", median(baseline), "s", None,
            f"the same interpreter; {len(baseline)} runs, alternating with the commands above"),
    )  # fmt: skip
    return rows
