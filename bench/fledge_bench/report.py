"""The results for people: a table on the terminal, and docs/benchmarks.md.

The method text of each section is its module's docstring (``sections/``),
so that what the document says is measured is what the code measures.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from fledge_bench import suite
from fledge_bench.model import SECTIONS, Results, Row
from fledge_bench.sections import ansible_settings, footprint, provisioning, rerun, rounds, startup

COLUMNS = ("section", "case", "figure", "value", "unit", "ratio / notes")
NOTES_WIDTH = 300  # characters of notes in a table cell; errors are given in full below it
METHOD: dict[str, ModuleType] = {
    "startup": startup,
    "provisioning": provisioning,
    "rerun": rerun,
    "ansible-settings": ansible_settings,
    "rounds": rounds,
    "footprint": footprint,
}

USAGE = """\
```sh
bench/run                                   # every section, fleets of 1, 2 and 4 devices
bench/run --sizes 1,2 --only provisioning --only rerun   # a quick one
bench/run --arm64                           # also an emulated arm64 device (much longer)
bench/run --help                            # the options
```

Options: `--only SECTION` (repeat; sections: {sections}), `--sizes 1,2,4`,
`--arm64`, `--output FILE` (this document, default `docs/benchmarks.md`),
`--chart FILE` (default `docs/benchmarks.png`), `--json FILE` (the raw
results), `--update FILE` (keep the other sections of an earlier run's
JSON: measure one section again without losing the rest), `--keep` (leave
the labs up). `bench/run` runs with the project's
virtual environment (`.venv`, which `scripts/setup` makes) and needs a
running Docker engine for every section but `startup` (`scripts/setup`
starts one). The default run takes roughly 1.5 hours on 2 cores, the quick
one roughly 20 minutes; `--arm64` adds 1 to 1.5 hours."""

GENERAL = """\
`bench/run` builds what it measures: lab fleets (`fledge lab up`, a
coordinator and N devices in containers that behave like Raspberry Pis, see
[lab.md](lab.md)), and for the rounds' floor a plain local Flower. It starts
one fleet at a time, smallest first, and removes each before the next
starts, so that no idle fleet loads the machine beside the one measured.
Every lab carries the label `io.fledge.bench=<run>` and is removed when the
suite ends, however it ends (a failure, Ctrl-C), unless `--keep`; `fledge
lab down --label io.fledge.bench` removes any that a killed run left. Every
process the suite starts has a time limit.

Figures that depend on the machine are also given as ratios to a figure
measured in the same run (the smallest fleet, fledge's own settings, the
floor, the interpreter alone): those travel to other machines better than
the seconds do. Wall times are single runs unless a row says otherwise;
the machine may be shared, so the load average at the start and the end is
given below.

Which fleet each section uses:{plan}"""


def format_value(value: float | None) -> str:
    if value is None:
        return "n/a"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 0.1 or magnitude == 0:
        return f"{value:.2f}"
    return f"{value:.3f}"


def format_ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def ratio_and_notes(row: Row, width: int = NOTES_WIDTH) -> str:
    notes = " / ".join(line.strip() for line in row.notes.splitlines() if line.strip())
    if len(notes) > width:
        notes = notes[: width - 3] + "..."
    return "; ".join(part for part in (format_ratio(row.ratio), notes) if part)


def cells(row: Row) -> tuple[str, ...]:
    return (
        row.section,
        row.case,
        row.figure,
        format_value(row.value) if not row.failed else "",
        row.unit,
        ratio_and_notes(row),
    )


def render_table(rows: Sequence[Row]) -> str:
    """The rows as an aligned plain-text table."""
    table = [COLUMNS, *(cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    numeric = {COLUMNS.index("value")}

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if i in numeric else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(table[0]), rule, *(line(values) for values in table[1:])])


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Row]) -> str:
    head = "| " + " | ".join(COLUMNS) + " |"
    align = "|" + "|".join("---:" if c == "value" else "---" for c in COLUMNS) + "|"
    body = ["| " + " | ".join(escape(c) for c in cells(row)) + " |" for row in rows]
    return "\n".join([head, align, *body])


def method_text(section: str) -> str:
    return inspect.cleandoc(METHOD[section].__doc__ or "")


def render_markdown(results: Results, chart: Path | None, output: Path) -> str:
    """docs/benchmarks.md: how to run it, the results, the machine, the method, notes.

    ``chart`` is linked relative to ``output``'s directory.
    """
    if results.rows:
        date = results.started.strftime("%Y-%m-%d %H:%M UTC")
        intro = (
            f"Written by `bench/run` on {date} (`{results.command}`); run it again to "
            "replace this file and its chart. What each figure is: [Method](#method)."
        )
        if results.earlier:
            intro += (
                " Kept from earlier runs (`--update`): "
                + "; ".join(
                    f"{section}, measured on {when}" for section, when in results.earlier.items()
                )
                + "; the machine and load below are this run's."
            )
    else:
        intro = (
            "No figures yet: `bench/run` measures them and writes this file, with the machine "
            "and the date, and its chart; the first real run replaces this text."
        )
    parts = ["# Benchmarks", intro, USAGE.format(sections=", ".join(SECTIONS)), "## Results"]
    if chart is not None:
        link = Path(os.path.relpath(chart, output.parent)).as_posix()
        parts.append(f"![The figures of the table, by section]({link})")
    parts.append(markdown_table(results.rows) if results.rows else "No figures yet.")
    parts += ["## Machine", machine_table(results) if results.machine else "Not measured yet."]
    parts += ["## Method", GENERAL.format(plan=plan_text())]
    for section in SECTIONS:
        if section in results.sections:
            parts += [f"### {section}", method_text(section)]
    parts += ["## Notes", notes(results)]
    return "\n\n".join(parts) + "\n"


def machine_table(results: Results) -> str:
    lines = ["| | |", "|---|---|"]
    lines += [f"| {escape(key)} | {escape(value)} |" for key, value in results.machine.items()]
    for name, load in (("load average, start", results.load_start),
                       ("load average, end", results.load_end)):  # fmt: skip
        if load is not None:
            lines.append(f"| {name} | {' '.join(f'{x:.2f}' for x in load)} |")
    if results.finished is not None:
        minutes = (results.finished - results.started).total_seconds() / 60
        lines.append(f"| duration of the run | {minutes:.0f} min |")
    return "\n".join(lines)


def plan_text() -> str:
    doc = inspect.cleandoc(suite.__doc__ or "")
    bullets = [line for line in doc.splitlines() if line.startswith(("- ", "  "))]
    return "\n\n" + "\n".join(bullets)


def notes(results: Results) -> str:
    items = [
        "Memory is compared with what a Raspberry Pi with 1 GB can spare: "
        f"{footprint.PI_MEMORY_MIB} MiB less about {footprint.PI_OS_MIB} MiB for Raspberry Pi "
        f"OS Lite, so ~{footprint.PI_SPARE_MIB} MiB (an assumption, not a measurement).",
        "Lab devices are containers on this machine: the controller, the coordinator and the "
        "devices share its cores, and a device's downloads come over its network, not a Pi's.",
        "The controller's CPU time counts fledge and the processes it waited for (Ansible, ssh, "
        "pip, the flwr CLI), not the devices' work, which runs in the containers.",
    ]
    if "footprint" in results.sections:
        try:
            requirements = footprint.preflight_requirements()
            listed = "; ".join(
                f"{kind}: memory {req.get('memory_mb')} MB, free disk {req.get('disk_mb')} MB"
                for kind, req in requirements.items()
            )
            items.append(f"What preflight requires now (`preflight_requirements`): {listed}.")
        except (OSError, KeyError, TypeError):
            pass
    text = "\n".join(f"- {item}" for item in items)
    failures = results.failures
    if failures:
        text += "\n\nWhat failed:\n\n" + "\n\n".join(
            f"- {row.section}, {row.case or 'all'}:\n\n```text\n{row.notes}\n```"
            for row in failures
        )
    return text
