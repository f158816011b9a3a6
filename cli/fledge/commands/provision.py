"""`fledge provision`: run the deploy playbook on the fleet."""

from __future__ import annotations

from typing import Annotated

import typer

from fledge.commands.fleet import load as load_fleet
from fledge.commands.playbooks import play
from fledge.console import Format, FormatOption, InventoryOption, err, handle_errors
from fledge.errors import FledgeError


@handle_errors
def provision(
    inventory_path: InventoryOption,
    check: Annotated[
        bool, typer.Option("--check", help="Dry run: show what would change, change nothing.")
    ] = False,
    limit: Annotated[
        str | None,
        typer.Option("--limit", "-l", help="Only these hosts (an Ansible host pattern)."),
    ] = None,
    tags: Annotated[
        list[str] | None,
        typer.Option(
            "--tags", "-t", help="Only tasks with these tags, e.g. supernode_configure (repeat)."
        ),
    ] = None,
    enrol: Annotated[
        list[str] | None,
        typer.Option(
            "--enrol",
            metavar="HOST",
            help="Enrol a revoked device again, with a new key (repeat).",
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, help="More Ansible output in the artifacts (-vvv)."
        ),
    ] = 0,
    output: FormatOption = Format.text,
) -> None:
    """Install and configure Flower on every host of the fleet, with TLS.

    Issues the CA and the SuperLink's certificate when missing, builds the
    wheelhouse once per device platform, places each device's data partition,
    and checks that every device is connected. Safe to run again: a second
    run changes nothing.
    """
    fleet = load_fleet(inventory_path)
    unknown = sorted(set(enrol or []) - {h.name for h in fleet.supernodes})
    if unknown:
        raise FledgeError(
            f"--enrol {unknown[0]}: no such device in the inventory",
            path=fleet.path,
            fix="name devices of the supernodes group",
        )
    hosts = ", ".join(h.name for h in fleet.hosts)
    err.print(f"Provisioning {len(fleet.hosts)} hosts ({hosts}){' in check mode' if check else ''}")
    result = play(
        fleet,
        "deploy",
        "Provisioning",
        output,
        check=check,
        limit=limit,
        tags=tags or [],
        extravars={"supernode_reenrol": enrol} if enrol else None,
        verbosity=verbose,
    )
    if check:
        err.print(f"[green]Dry run done[/]: a real run would make {result.changed} changes.")
        return
    err.print(
        f"[green]Done[/]: {result.changed} changes. Next: fledge round start -i {inventory_path}"
    )
