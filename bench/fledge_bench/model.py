"""The results: one :class:`Row` per measured figure, and the arithmetic on them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

# The sections of the table, in the order they run and are reported.
SECTIONS = ("startup", "provisioning", "rerun", "ansible-settings", "rounds", "footprint")
ERROR = "error"

MB = 1_000_000  # downloads, in decimal megabytes as networks count them
MIB = 1024 * 1024  # memory and disk, as preflight's *_mb settings count them


@dataclass(frozen=True)
class Row:
    """One figure: what was measured (section, case, figure), its value and unit, and how
    it compares (``ratio``: to what is said in the notes or the method)."""

    section: str
    case: str
    figure: str
    value: float | None
    unit: str
    ratio: float | None = None
    notes: str = ""

    @classmethod
    def error(cls, section: str, case: str, message: str) -> Row:
        return cls(section, case, ERROR, None, "", None, message)

    @property
    def failed(self) -> bool:
        return self.figure == ERROR

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Row:
        return cls(**{name: doc[name] for name in cls.__dataclass_fields__})


@dataclass
class Results:
    """Everything one run of the suite found, filled in as it goes (so that an
    interrupted run still has what it measured)."""

    command: str
    started: datetime
    machine: dict[str, str] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    finished: datetime | None = None
    load_start: tuple[float, float, float] | None = None
    load_end: tuple[float, float, float] | None = None
    sections: tuple[str, ...] = SECTIONS
    sizes: tuple[int, ...] = ()
    # Sections kept from an earlier run (`bench/run --update`): section ->
    # "date (command)" of the run that measured them.
    earlier: dict[str, str] = field(default_factory=dict)

    @property
    def failures(self) -> list[Row]:
        return [row for row in self.rows if row.failed]

    def to_json(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "started": self.started.isoformat(timespec="seconds"),
            "finished": self.finished.isoformat(timespec="seconds") if self.finished else None,
            "machine": self.machine,
            "load_average": {"start": self.load_start, "end": self.load_end},
            "sections": list(self.sections),
            "sizes": list(self.sizes),
            "earlier": self.earlier,
            "rows": [row.to_json() for row in self.rows],
        }

    def keep_from(self, earlier: dict[str, Any]) -> None:
        """Add the rows of ``earlier`` (a run's JSON) whose sections this run did not
        measure; every section's rows stay in the suite's order."""
        measured = set(self.sections)
        when = f"{str(earlier['started'])[:10]} (`{earlier['command']}`)"
        kept = [Row.from_json(r) for r in earlier["rows"] if r["section"] not in measured]
        for row in kept:
            self.earlier.setdefault(row.section, earlier.get("earlier", {}).get(row.section, when))
        self.sections = tuple(s for s in SECTIONS if s in measured or s in self.earlier)
        self.rows = sorted([*self.rows, *kept], key=lambda row: SECTIONS.index(row.section))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is unknown or the denominator is not
    positive (a ratio to nothing means nothing)."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def pairwise_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """a[i] / b[i] for measurements taken in pairs, one right after the other."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} measurements against {len(b)}: they come in pairs")
    return [x / y for x, y in zip(a, b, strict=True) if y > 0]


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
