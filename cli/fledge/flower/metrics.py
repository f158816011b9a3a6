"""Per-round metrics from a ServerApp's log.

Apps that log ``fledge-round {json}`` lines (fledge's own) are read from
those; for other apps, Flower's strategy log is the fallback.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from fledge.flower.cli import ANSI
from fledge.flower.records import RoundMetrics

METRICS_PREFIX = "fledge-round"
_FLEDGE_LINE = re.compile(re.escape(METRICS_PREFIX) + r"\s+(\{.*\})")
_ROUND_HEADER = re.compile(r"\[ROUND (\d+)(?:/\d+)?\]")
_AGGREGATE = re.compile(r"aggregate_(train|evaluate): Received (\d+) results")
_METRIC_RECORD = re.compile(r"Aggregated MetricRecord: (\{.*\})")
# Names Flower's own app templates use next to the ones fledge's app uses.
_LOSS_KEYS = ("loss", "eval_loss")
_ACCURACY_KEYS = ("accuracy", "eval_acc", "eval_accuracy")


def parse_round_metrics(log_text: str) -> list[RoundMetrics]:
    """Per-round metrics from a ServerApp log, ordered by round.

    Apps that log ``fledge-round {json}`` lines (fledge's own) are read from
    those; for other apps, Flower's strategy log is the fallback. Lines that
    do not parse are skipped: a log is free text, not a contract.
    """
    lines = [ANSI.sub("", line) for line in log_text.splitlines()]
    reported = _fledge_rounds(lines)
    return reported if reported else _strategy_rounds(lines)


def _fledge_rounds(lines: Iterable[str]) -> list[RoundMetrics]:
    rounds: dict[int, RoundMetrics] = {}
    for line in lines:
        match = _FLEDGE_LINE.search(line)
        if match is None:
            continue
        try:
            doc = json.loads(match.group(1))
            metrics = RoundMetrics(
                round=_int(doc["round"]),
                nodes=_optional(doc.get("nodes"), _int),
                train_loss=_optional(doc.get("train_loss"), _float),
                loss=_optional(doc.get("loss"), _float),
                accuracy=_optional(doc.get("accuracy"), _float),
            )
        except (ValueError, TypeError, KeyError):
            continue
        rounds[metrics.round] = metrics
    return [rounds[n] for n in sorted(rounds)]


def _strategy_rounds(lines: Iterable[str]) -> list[RoundMetrics]:
    """Rounds from Flower's strategy log (``[ROUND n/N]``, aggregate_* lines).

    A round appears once something was aggregated in it: a round that has
    only begun has nothing to report.
    """
    rounds: dict[int, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    phase = None
    for line in lines:
        if header := _ROUND_HEADER.search(line):
            current = rounds.setdefault(int(header.group(1)), {"round": int(header.group(1))})
            phase = None
        elif current is None:
            continue
        elif aggregate := _AGGREGATE.search(line):
            phase = aggregate.group(1)
            # Evaluation replies are the later, more telling count.
            current["nodes"] = int(aggregate.group(2))
        elif (record := _METRIC_RECORD.search(line)) and phase is not None:
            try:
                values = ast.literal_eval(record.group(1))
            except (ValueError, SyntaxError):
                continue
            if not isinstance(values, dict):
                continue
            if phase == "train":
                current["train_loss"] = _first(values, ("train_loss",))
            else:
                current["loss"] = _first(values, _LOSS_KEYS)
                current["accuracy"] = _first(values, _ACCURACY_KEYS)
    return [RoundMetrics(**rounds[n]) for n in sorted(rounds) if "nodes" in rounds[n]]


def _first(values: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    for key in keys:
        if key in values:
            try:
                return _float(values[key])
            except (TypeError, ValueError):
                return None
    return None


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    return value


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _optional(value: Any, convert: Callable[[Any], Any]) -> Any:
    return None if value is None else convert(value)


# Flower's strategies say this once a second while they wait for devices.
_WAITING = re.compile(r"Waiting for nodes to connect: (\d+) connected \(minimum required: (\d+)\)")


def waiting_for_nodes(log_text: str) -> tuple[int, int] | None:
    """(connected, required) when the ServerApp's last word is that it waits for devices."""
    lines = [line for line in ANSI.sub("", log_text).splitlines() if line.strip()]
    waiting = _WAITING.search(lines[-1]) if lines else None
    return (int(waiting.group(1)), int(waiting.group(2))) if waiting else None
