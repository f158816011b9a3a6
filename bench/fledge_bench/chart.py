"""docs/benchmarks.png: the table's figures as horizontal bars, one panel per section.

A panel shows a section's figures in its main unit (seconds when it has
any, else the unit most of its rows have); rows without a value (failed,
skipped) are left out. A reference line can mark a panel (for the footprint:
what a 1 GB Pi can spare).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from fledge_bench.model import SECTIONS, Row

MAX_BARS = 16
LABEL_WIDTH = 60


def main_unit(rows: Sequence[Row]) -> str:
    units = [row.unit for row in rows if row.value is not None and row.unit]
    if "s" in units:
        return "s"
    return Counter(units).most_common(1)[0][0] if units else ""


def panels(rows: Sequence[Row]) -> dict[str, tuple[str, list[Row]]]:
    """Per section (in the suite's order): its main unit and the rows to draw."""
    drawn: dict[str, tuple[str, list[Row]]] = {}
    for section in [*SECTIONS, *sorted({r.section for r in rows} - set(SECTIONS))]:
        mine = [row for row in rows if row.section == section]
        unit = main_unit(mine)
        bars = [row for row in mine if row.value is not None and row.unit == unit][:MAX_BARS]
        if bars:
            drawn[section] = (unit, bars)
    return drawn


def label(row: Row) -> str:
    text = f"{row.case}: {row.figure}" if row.case else row.figure
    return text if len(text) <= LABEL_WIDTH else text[: LABEL_WIDTH - 3] + "..."


def write_chart(
    rows: Sequence[Row],
    path: Path,
    title: str,
    references: Mapping[str, tuple[float, str]] | None = None,
) -> bool:
    """Draw the chart into ``path``; False (and no file) when no row has a value to draw."""
    drawn = panels(rows)
    if not drawn:
        return False
    from matplotlib.figure import Figure  # slow to import: only when drawing

    counts = [len(bars) for _, bars in drawn.values()]
    figure = Figure(figsize=(11, 1.2 * len(drawn) + 0.32 * sum(counts)), layout="constrained")
    axes_list = figure.subplots(
        len(drawn), 1, squeeze=False, height_ratios=[c + 1.5 for c in counts]
    )
    for axes, (section, (unit, bars)) in zip(axes_list[:, 0], drawn.items(), strict=True):
        values = [float(row.value or 0.0) for row in bars]
        positions = range(len(bars))
        axes.barh(positions, values, color="tab:blue", alpha=0.8)
        axes.set_yticks(list(positions), [label(row) for row in bars], fontsize=8)
        axes.invert_yaxis()
        for position, row, value in zip(positions, bars, values, strict=True):
            note = f"  {value:.3g}" + (f"  ({row.ratio:.2f}x)" if row.ratio is not None else "")
            axes.text(value, position, note, va="center", fontsize=7)
        reference = (references or {}).get(section)
        if reference is not None:
            axes.axvline(reference[0], color="tab:red", linestyle="--", linewidth=1)
            axes.text(reference[0], -0.6, f" {reference[1]}", color="tab:red", fontsize=7)
        axes.set_title(section, loc="left", fontsize=10)
        axes.set_xlabel(unit, fontsize=8)
        axes.margins(x=0.25)
        axes.grid(axis="x", alpha=0.3)
    figure.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=100)
    return True
