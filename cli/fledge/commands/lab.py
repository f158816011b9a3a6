"""`fledge lab`: a local fleet of containers that behave like Raspberry Pis."""

from __future__ import annotations

from dataclasses import asdict
from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from fledge.console import FORMAT_OPTION, Format, display_path, err, handle_errors, print_json
from fledge.errors import FledgeError
from fledge.lab import engine, fleet, image

app = typer.Typer(
    help="A local virtual fleet: Docker containers that behave like Raspberry Pi OS hosts.",
    no_args_is_help=True,
)


Arch = StrEnum("Arch", {arch: arch for arch in image.ARCHES})


NAME_OPTION = typer.Option(
    fleet.DEFAULT_NAME, "--name", help="The lab's name (prefix of its containers)."
)
DIR_HELP = (
    "Where the lab's inventory, known_hosts and login key live "
    "\\[default: ./fledge-lab, or where the lab already keeps them]."
)


@app.command()
@handle_errors
def up(
    nodes: int = typer.Option(2, "--nodes", "-n", min=1, help="How many devices (pi-1 .. pi-N)."),
    arch: Arch | None = typer.Option(
        None,
        "--arch",
        help="The devices' architecture; arm64 is emulated with QEMU. \\[default: the engine's]",
    ),
    name: str = NAME_OPTION,
    directory: Path | None = typer.Option(None, "--dir", help=DIR_HELP, show_default=False),
    mirror: str = typer.Option(
        image.DEFAULT_MIRROR,
        "--mirror",
        envvar=image.MIRROR_ENV,
        show_envvar=True,
        help="Debian mirror for building the base image.",
    ),
    base_image: str | None = typer.Option(
        None,
        "--base-image",
        metavar="IMAGE",
        help="Build on this Debian 12 image (pulled if needed), not with debootstrap (needs root).",
    ),
) -> None:
    """Start (or repair) a coordinator and N devices; write an inventory for them."""
    client = engine.connect()
    with engine.engine_errors():
        hosts, inventory = fleet.up(
            client, name, nodes, directory, arch.value if arch else None, mirror, base_image
        )
    _print_table(name, hosts)
    # soft_wrap: the command stays one line, to copy and paste.
    err.print(
        f"next: [bold]fledge provision --inventory {display_path(inventory)}[/]", soft_wrap=True
    )


@app.command()
@handle_errors
def status(name: str = NAME_OPTION, format: Format = FORMAT_OPTION) -> None:
    """Show the lab's hosts; exit 1 if one of them is not running."""
    client = engine.connect()
    with engine.engine_errors():
        hosts = fleet.hosts(client, name)
    if format is Format.json:
        print_json({"lab": name, "hosts": [asdict(h) | {"role": h.role} for h in hosts]})
    elif not hosts:
        err.print(f"there is no lab named '{name}'; start one with `fledge lab up --name {name}`")
    else:
        _print_table(name, hosts)
    stopped = [h.host for h in hosts if h.state != "running"]
    if stopped:
        raise FledgeError(
            f"not running: {', '.join(stopped)}", fix=f"`fledge lab up --name {name}` starts them"
        )


@app.command()
@handle_errors
def down(
    name: str = NAME_OPTION,
    directory: Path | None = typer.Option(None, "--dir", help=DIR_HELP, show_default=False),
    images: bool = typer.Option(
        False, "--images", help="Also remove the cached fledge-lab images."
    ),
) -> None:
    """Remove the lab's containers, volumes, network and files."""
    client = engine.connect()
    with engine.engine_errors():
        removed = fleet.down(client, name, directory)
        for item in removed:
            err.print(f"removed {item}")
        if not removed:
            err.print(f"nothing to remove: there is no lab named '{name}'")
        if images:
            gone, in_use = image.remove_images(client)
            for tag in gone:
                err.print(f"removed image {tag}")
            for tag in in_use:
                err.print(f"[yellow]kept image {tag}:[/] another lab still uses it")


def _print_table(name: str, hosts: list[fleet.LabHost]) -> None:
    # Container names follow from host names (title); --format json has every field.
    table = Table(
        title=f"lab {name}: containers {name}-<host>, images {image.REPOSITORY}:<tag>",
        title_justify="left",
        box=None,
        padding=(0, 2, 0, 0),
        pad_edge=False,
    )
    for column in ("host", "role", "state", "arch", "ssh", "superlink", "tag"):
        table.add_column(column, no_wrap=True)
    for h in hosts:
        state = h.state if h.state == "running" else f"[red]{h.state}[/]"
        table.add_row(
            h.host,
            h.role,
            state,
            h.arch or "?",
            str(h.ssh_port or "-"),
            str(h.superlink_port or "-"),
            h.image.removeprefix(f"{image.REPOSITORY}:"),
        )
    err.print(table)
