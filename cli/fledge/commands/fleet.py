"""`fledge fleet`: the fleet as a whole; and what every command that works on a fleet
does first: read its inventory, and say so when the fleet is open (TLS turned off),
every time (:func:`load`, :func:`superlink`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from fledge.console import (
    Format,
    FormatOption,
    InventoryOption,
    display_path,
    err,
    handle_errors,
    print_json,
)
from fledge.lazy import lazy

if TYPE_CHECKING:
    from fledge import control, fleet_status, inventory
    from fledge.flower.superlink import SuperLink
else:
    control = lazy("fledge.control")
    fleet_status = lazy("fledge.fleet_status")
    inventory = lazy("fledge.inventory")

app = typer.Typer(help="The fleet as a whole: every host at a glance.", no_args_is_help=True)


def load(path: Path) -> inventory.Inventory:
    fleet = inventory.load(path)
    if not fleet.tls:
        err.print(
            "[yellow]warning:[/] fledge_tls is false: this fleet is open. Models and updates "
            "travel in clear text, devices are not authenticated, and anyone on the path can "
            f"read and change them ({escape(str(fleet.path))})",
            soft_wrap=True,
        )
    return fleet


@contextlib.contextmanager
def superlink(path: Path) -> Iterator[tuple[inventory.Inventory, SuperLink]]:
    """The fleet and its SuperLink, reached through the operator's SSH channel."""
    fleet = load(path)
    with control.superlink(fleet) as link:
        yield fleet, link


# --- fledge fleet status ------------------------------------------------------


@app.command()
@handle_errors
def status(inventory_path: InventoryOption, output: FormatOption = Format.text) -> None:
    """Every host at a glance, and the certificates' expiry.

    For each host: reachable over SSH, its services active, its Flower
    release, its node online on the SuperLink.

    Exits 1 when anything needs attention (each finding is listed), 0 when
    nothing does: cron-friendly. See docs/operations.md.
    """
    fleet = load(inventory_path)
    with err.status(f"Asking the {len(fleet.hosts)} hosts of {escape(display_path(fleet.path))}"):
        report = fleet_status.gather(fleet)
    if output is Format.json:
        print_json(report.to_json())
    else:
        _print(report)
    if report.needs_attention:
        raise typer.Exit(1)


def _print(report: fleet_status.FleetStatus) -> None:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    # Nothing is cut short: names and IDs are copied, times compared.
    for column in ("host", "role", "ssh", "services", "flower", "node id", "SuperLink"):
        table.add_column(column, no_wrap=column in ("host", "node id"), overflow="fold")
    for row in report.hosts:
        table.add_row(
            escape(row.host),
            row.role,
            "[green]ok[/]" if row.reachable else "[red]unreachable[/]",
            _services(row),
            _flower(row, report.flower_version),
            row.node_id or "-",
            _on_superlink(row),
        )
    err.print(table)
    for key, name in (("superlink", "SuperLink certificate"), ("ca", "CA")):
        info = report.certificates.get(key)
        if info:
            colour = "green" if info["state"] == "valid" else "red"
            err.print(
                f"{name}: [{colour}]{info['state']}[/], until {info['not_after']} "
                f"({info['days_left']} days; read on {escape(info['read_on'])})"
            )
    for finding in report.findings:
        where = f"{escape(finding.host)}: " if finding.host else ""
        err.print(f"[red]attention:[/] {where}{escape(finding.message)}", soft_wrap=True)
        if finding.fix:
            err.print(f"  fix: {escape(finding.fix)}", soft_wrap=True)
    if not report.findings:
        err.print(f"[green]All {len(report.hosts)} hosts are in order.[/]")


def _services(row: fleet_status.HostStatus) -> str:
    if not row.services:
        return "-"
    if row.services_active:
        return "[green]active[/]"
    return ", ".join(
        f"[red]{escape(unit.removeprefix('fledge-').removesuffix('.service'))} {escape(state)}[/]"
        for unit, state in row.services.items()
        if state != "active"
    )


def _flower(row: fleet_status.HostStatus, pin: str) -> str:
    if row.flower_source is None:
        return "-"
    version = escape(row.flower_version or "none")
    return version if row.flower_version == pin else f"[red]{version}[/]"


def _on_superlink(row: fleet_status.HostStatus) -> str:
    if row.node_status is None:
        return "-"
    if row.node_status == "online":
        return f"[green]online[/] since {row.online_at or '?'}"
    since = f" since {row.offline_at}" if row.offline_at else ""
    return f"[red]{escape(row.node_status)}[/]{since}"
