"""`fledge lab`: a local fleet of containers that behave like Raspberry Pis."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import click
import typer
from rich.table import Table

from fledge.console import Format, FormatOption, display_path, err, handle_errors, print_json
from fledge.errors import FledgeError
from fledge.lazy import lazy
from fledge.progress import ConsoleReporter

if TYPE_CHECKING:
    from fledge.lab import engine, files, fleet, image
else:
    engine = lazy("fledge.lab.engine")
    files = lazy("fledge.lab.files")
    fleet = lazy("fledge.lab.fleet")
    image = lazy("fledge.lab.image")

app = typer.Typer(
    help="A local virtual fleet: Docker containers that behave like Raspberry Pi OS hosts.",
    no_args_is_help=True,
)


NameOption = Annotated[
    str, typer.Option("--name", help="The lab's name (prefix of its containers).")
]
DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Where the lab's inventory, known_hosts and login key live "
        "\\[default: ./fledge-lab, or where the lab already keeps them].",
        show_default=False,
    ),
]


@app.command()
@handle_errors
def up(
    nodes: Annotated[
        int, typer.Option("--nodes", "-n", min=1, help="How many devices (pi-1 .. pi-N).")
    ] = 2,
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch",
            click_type=click.Choice(image.ARCHES),
            help="The devices' architecture; arm64 is emulated with QEMU. "
            "\\[default: the engine's]",
        ),
    ] = None,
    name: NameOption = fleet.DEFAULT_NAME,
    directory: DirOption = None,
    mirror: Annotated[
        str,
        typer.Option(
            "--mirror",
            envvar=image.MIRROR_ENV,
            show_envvar=True,
            help="Debian mirror for building the base image.",
        ),
    ] = image.DEFAULT_MIRROR,
    base_image: Annotated[
        str | None,
        typer.Option(
            "--base-image",
            metavar="IMAGE",
            help="Build on this Debian 12 image (pulled if needed), "
            "not with debootstrap (needs root).",
        ),
    ] = None,
    labels: Annotated[
        list[str] | None,
        typer.Option(
            "--label",
            metavar="KEY=VALUE",
            help="A label on everything the lab creates (repeat), to find your labs again.",
        ),
    ] = None,
) -> None:
    """Start (or repair) a coordinator and N devices; write an inventory for them."""
    client = engine.connect()
    with engine.engine_errors():
        hosts, inventory = fleet.up(
            client,
            name,
            nodes,
            directory,
            arch,
            mirror,
            base_image,
            _parse_labels(labels or []),
            ConsoleReporter(),
        )
    _print_table(name, hosts)
    # soft_wrap: the command stays one line, to copy and paste.
    err.print(
        f"next: [bold]fledge provision --inventory {display_path(inventory)}[/]", soft_wrap=True
    )


@app.command()
@handle_errors
def status(name: NameOption = fleet.DEFAULT_NAME, output: FormatOption = Format.text) -> None:
    """Show the lab's hosts; exit 1 if one of them is not running."""
    client = engine.connect()
    with engine.engine_errors():
        hosts = fleet.hosts(client, name)
    if output is Format.json:
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
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="The lab's name (prefix of its containers) \\[default: the one whose "
            "inventory is in --dir, else fledge-lab].",
            show_default=False,
        ),
    ] = None,
    directory: DirOption = None,
    images: Annotated[
        bool, typer.Option("--images", help="Also remove the cached fledge-lab images.")
    ] = False,
    label: Annotated[
        str | None,
        typer.Option(
            "--label",
            metavar="KEY[=VALUE]",
            help="Remove every lab that carries this label (from `lab up --label`), "
            "not the one named.",
        ),
    ] = None,
) -> None:
    """Remove the lab's containers, volumes, network and files."""
    if label is not None and directory is not None:
        raise FledgeError(
            "--dir names one lab's directory, and --label may match several labs",
            field="--dir",
            fix="leave out --dir: each lab's files go from where that lab keeps them",
        )
    client = engine.connect()
    with engine.engine_errors():
        if label is not None:
            names = fleet.labelled(client, label)
        else:
            names = [name or (directory and files.lab_name(directory)) or fleet.DEFAULT_NAME]
        if not names:
            err.print(f"nothing to remove: no lab carries the label {label}")
        for lab in names:
            removed = fleet.down(client, lab, directory)
            for item in removed:
                err.print(f"removed {item}")
            if not removed:
                err.print(f"nothing to remove: there is no lab named '{lab}'")
        if images:
            gone, in_use = image.remove_images(client)
            for tag in gone:
                err.print(f"removed image {tag}")
            for tag in in_use:
                err.print(f"[yellow]kept image {tag}:[/] another lab still uses it")


def _parse_labels(labels: list[str]) -> dict[str, str]:
    parsed = {}
    for item in labels:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FledgeError(
                f"'{item}' is not KEY=VALUE", field="--label", fix="write it as --label KEY=VALUE"
            )
        parsed[key] = value
    return parsed


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
