"""`fledge provision`: run the deploy playbook on the fleet."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from fledge import collection, inventory
from fledge.console import Format, FormatOption, InventoryOption, err, handle_errors, print_json
from fledge.fsutil import open_state_dir
from fledge.progress import PlaybookProgress, recap_table
from fledge.runner import run_playbook


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
    fleet = inventory.load(inventory_path)
    open_state_dir(fleet.state_dir)
    hosts = ", ".join(h.name for h in fleet.hosts)
    err.print(f"Provisioning {len(fleet.hosts)} hosts ({hosts}){' in check mode' if check else ''}")
    with PlaybookProgress(err) as progress:
        result = run_playbook(
            collection.playbook("deploy"),
            fleet.path,
            fleet.state_dir,
            check=check,
            limit=limit,
            tags=tags or [],
            verbosity=verbose,
            on_event=progress.handle,
        )
    err.print(recap_table(result, "Provisioning summary" + (" (check mode)" if check else "")))
    for failure in result.failures:
        err.print(
            f"[red]{escape(failure.host)}[/]: {escape(failure.task)}\n  {escape(failure.message)}"
        )
    if result.output_tail:
        err.print(escape(result.output_tail))
    if output is Format.json:
        print_json(
            {
                "succeeded": result.succeeded,
                "check": check,
                "changed": result.changed,
                "hosts": {h: vars(r) | {"succeeded": r.succeeded} for h, r in result.recap.items()},
                "failures": [vars(f) for f in result.failures],
                "artifacts": str(result.artifacts),
            }
        )
    if not result.succeeded:
        err.print(f"Provisioning failed; the full log is in {result.artifacts}/stdout")
        raise typer.Exit(1)
    if check:
        err.print(f"[green]Dry run done[/]: a real run would make {result.changed} changes.")
        return
    err.print(
        f"[green]Done[/]: {result.changed} changes. Next: fledge round start -i {inventory_path}"
    )
