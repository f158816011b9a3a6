"""`fledge provision`: run the deploy playbook on the fleet."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fledge.commands.fleet import load as load_fleet
from fledge.commands.playbooks import failed_last_time, play
from fledge.console import Format, FormatOption, InventoryOption, err, handle_errors
from fledge.errors import FledgeError
from fledge.lazy import lazy

if TYPE_CHECKING:
    from fledge import app_packages
else:
    app_packages = lazy("fledge.app_packages")


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
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="Only the hosts that failed or could not be reached in the last provisioning.",
        ),
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Run every task on every host, also on hosts unchanged since their last "
            "complete provisioning (which are otherwise checked in one pass and skipped).",
        ),
    ] = False,
    apps: Annotated[
        list[Path] | None,
        typer.Option(
            "--app",
            metavar="DIR",
            exists=True,
            file_okay=False,
            resolve_path=True,
            help="Also install what this Flower app needs ([project].dependencies), on every "
            "host, now and in every later provisioning (repeat).",
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
    if retry_failed:
        if limit:
            raise FledgeError(
                "--retry-failed chooses the hosts itself",
                field="--limit",
                fix="give one of --retry-failed and --limit",
            )
        limit = ",".join(failed_last_time(fleet, "deploy"))
        err.print(f"Retrying the hosts that failed last time: {limit}")
    extravars: dict[str, Any] = {"supernode_reenrol": enrol} if enrol else {}
    if full:
        extravars["fledge_full"] = True
    if apps:
        addition = app_packages.add(fleet, apps)
        if addition.added:
            err.print(f"Adding the apps' packages to the fleet: {', '.join(addition.added)}")
        # A dry run shows them installed, and records nothing.
        extravars["_common_app_packages"] = addition.lines
        if not check:
            addition.save()
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
        extravars=extravars or None,
        verbosity=verbose,
    )
    if check:
        err.print(f"[green]Dry run done[/]: a real run would make {result.changed} changes.")
        return
    err.print(
        f"[green]Done[/]: {result.changed} changes. Next: fledge round start -i {inventory_path}"
    )
