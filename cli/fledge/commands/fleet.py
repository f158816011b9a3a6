"""What every command that works on a fleet does first: read its inventory, and say so
when the fleet is open (TLS turned off), every time."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from rich.markup import escape

from fledge import control, inventory
from fledge.console import err
from fledge.flower.superlink import SuperLink


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
