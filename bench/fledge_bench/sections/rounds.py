"""Training rounds through fledge, against the floor: plain Flower on this machine.

`fledge round start -i INVENTORY --rounds 3 --format json` on a provisioned
lab fleet (fledge's digits app): its wall time, the time per round
(wall / 3), and the run's running time as the SuperLink measured it
(``elapsed_seconds``).

The floor (``bench/fledge_bench/floor.py``) is the same app with the same
data partitions on a plain local SuperLink and as many plain local
SuperNodes, on loopback and insecure, started as
tests/integration/test_round_local.py starts them: no fledge, no SSH, no
containers. Its run is started with `flwr run` and timed until `flwr ls
--run-id` reports it finished (polled every 0.5 s; each poll starts the flwr
CLI). It runs while the lab stays up, under the same background load; then
once more with TLS (a CA and certificate made as provisioning makes them).
"""

from __future__ import annotations

from pathlib import Path

from fledge_bench import floor
from fledge_bench.lab import Fleet
from fledge_bench.measure import BenchError
from fledge_bench.model import Row, ratio
from fledge_bench.sections import report

SECTION = "rounds"
ROUNDS = 3
RUN_TIMEOUT = 1200.0  # fledge's --timeout, and the floor's


def fledge_round(fleet: Fleet) -> tuple[float, dict]:
    """One run on ``fleet``; its wall time and `fledge round start`'s report."""
    result = fleet.fledge(
        "round", "start", "-i", fleet.inventory, "--rounds", ROUNDS, "--format", "json",
        "--timeout", int(RUN_TIMEOUT), timeout=RUN_TIMEOUT + 180,
    )  # fmt: skip
    doc = report(result, "fledge round start")
    if doc.get("status") != "finished:completed":
        raise BenchError(
            f"the run ended {doc.get('status')}: {doc.get('status_details') or result.tail()}"
        )
    return result.wall, doc


def run(case: str, fleet: Fleet, scratch: Path) -> list[Row]:
    wall, doc = fledge_round(fleet)
    elapsed = doc.get("elapsed_seconds")
    accuracy = (doc.get("rounds") or [{}])[-1].get("accuracy")
    learned = f"accuracy after round {ROUNDS}: {accuracy:.1%}" if accuracy is not None else ""
    try:
        plain = floor.measure(scratch / "floor", fleet.size, ROUNDS, tls=False, timeout=RUN_TIMEOUT)
    except BenchError as exc:  # fledge's figures stand on their own
        return [
            Row(SECTION, case, f"fledge round start, {ROUNDS} rounds", wall, "s", None, learned),
            Row(SECTION, case, "SuperLink's elapsed, fledge", elapsed, "s"),
            Row.error(SECTION, f"{case}, floor", str(exc)),
        ]  # fmt: skip
    per_round, floor_round = wall / ROUNDS, plain.wall / ROUNDS
    rows = [
        Row(SECTION, case, f"fledge round start, {ROUNDS} rounds", wall, "s",
            ratio(wall, plain.wall), f"ratio to the floor's {plain.wall:.1f} s; {learned}"),
        Row(SECTION, case, "per round, fledge", per_round, "s", ratio(per_round, floor_round),
            "wall / 3, ratio to the floor's"),
        Row(SECTION, case, "SuperLink's elapsed, fledge", elapsed, "s",
            ratio(elapsed, plain.elapsed), "as the SuperLink timed the run; ratio to the floor's"),
        Row(SECTION, case, "per round, floor (local Flower, insecure)", floor_round, "s", None,
            f"{plain.wall:.1f} s from flwr run until flwr ls said finished "
            f"({plain.polls} polls); SuperLink's elapsed {_seconds(plain.elapsed)}"),
    ]  # fmt: skip
    try:
        tls = floor.measure(
            scratch / "floor-tls", fleet.size, ROUNDS, tls=True, timeout=RUN_TIMEOUT
        )
    except BenchError as exc:
        rows.append(Row.error(SECTION, f"{case}, floor with TLS", str(exc)))
    else:
        rows.append(
            Row(SECTION, case, "per round, floor with TLS", tls.wall / ROUNDS, "s",
                ratio(tls.wall, plain.wall),
                f"ratio to the insecure floor; SuperLink's elapsed {_seconds(tls.elapsed)}"),
        )  # fmt: skip
    return rows


def _seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "unknown"
