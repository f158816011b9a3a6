"""`fledge inventory`: write and check fleet inventories."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fledge import inventory
from fledge.addresses import is_valid_address, split_host_port
from fledge.console import (
    Format,
    FormatOption,
    InventoryOption,
    display_path,
    err,
    handle_errors,
    print_json,
)
from fledge.errors import FledgeError

app = typer.Typer(help="Write and check fleet inventories.", no_args_is_help=True)

SPEC_HELP = (
    "NAME=[USER@]ADDRESS[:PORT], e.g. pi-1=pi@192.168.1.21 (NAME= may be left out for a DNS name)"
)
CSV_COLUMNS = ("role", "name", "address", "user", "port")


def parse_spec(spec: str, option: str) -> inventory.HostSpec:
    """Parse ``NAME=[USER@]ADDRESS[:PORT]`` as given on the command line."""
    name, sep, target = spec.partition("=")
    if not sep:
        name, target = "", spec
    user, sep, address = target.rpartition("@")
    try:
        host, port = split_host_port(address)
    except ValueError as exc:
        raise FledgeError(f"{option} {spec!r}: {exc}", fix=f"write it as {SPEC_HELP}") from None
    if not is_valid_address(host):
        raise FledgeError(
            f"{option} {spec!r}: '{host}' is not an IP address or host name",
            fix=f"write it as {SPEC_HELP}",
        )
    if not name:
        if host.replace(".", "").isdigit() or ":" in host:
            raise FledgeError(
                f"{option} {spec!r}: an IP address needs a name", fix=f"write it as {SPEC_HELP}"
            )
        name = host
    return inventory.HostSpec(name=name, address=host, user=user or None, port=port)


def read_hosts_file(path: Path) -> tuple[list[inventory.HostSpec], list[inventory.HostSpec]]:
    """Read a CSV file with the columns role,name,address,user,port (user and port may be empty)."""
    superlinks, devices = [], []
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
            columns = rows[0].keys() if rows else ()
    except OSError as exc:
        raise FledgeError(f"cannot read the hosts file: {exc.strerror}", path=path) from None
    missing = [c for c in ("role", "name", "address") if c not in columns]
    if missing:
        raise FledgeError(
            f"missing column(s) {', '.join(missing)}",
            path=path,
            line=1,
            fix=f"start the file with the header line {','.join(CSV_COLUMNS)}",
        )
    for number, row in enumerate(rows, start=2):
        port = (row.get("port") or "").strip()
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise FledgeError(
                f"'{port}' is not a port number",
                path=path,
                line=number,
                field="port",
                fix="use a number between 1 and 65535, or leave it empty for 22",
            )
        spec = inventory.HostSpec(
            name=row["name"].strip(),
            address=row["address"].strip(),
            user=(row.get("user") or "").strip() or None,
            port=int(port) if port else None,
        )
        role = row["role"].strip()
        if role == "superlink":
            superlinks.append(spec)
        elif role in ("supernode", "device"):
            devices.append(spec)
        else:
            raise FledgeError(
                f"unknown role '{role}'",
                path=path,
                line=number,
                field="role",
                fix="use superlink (the coordinator) or supernode (a device)",
            )
    return superlinks, devices


@app.command()
@handle_errors
def generate(
    superlink: Annotated[
        str | None, typer.Option("--superlink", "-s", help=f"The coordinator: {SPEC_HELP}.")
    ] = None,
    devices: Annotated[
        list[str] | None,
        typer.Option("--device", "-d", help=f"A device (repeat): {SPEC_HELP}."),
    ] = None,
    hosts_file: Annotated[
        Path | None,
        typer.Option(
            "--hosts-file", help="A CSV file with the columns role,name,address,user,port."
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="SSH user for hosts that name none (e.g. pi)."),
    ] = None,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The inventory file to write.")
    ] = Path("inventory.yml"),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing inventory.")
    ] = False,
) -> None:
    """Write an inventory for a coordinator and devices.

    The result is a plain Ansible inventory (groups superlink and supernodes)
    that `fledge provision` and `ansible-playbook` both read.
    """
    superlinks = [parse_spec(superlink, "--superlink")] if superlink else []
    nodes = [parse_spec(d, "--device") for d in devices or []]
    if hosts_file:
        more_superlinks, more_nodes = read_hosts_file(hosts_file)
        superlinks += more_superlinks
        nodes += more_nodes
    if user:  # said once for all hosts, not again on each
        superlinks, nodes = (
            [replace(h, user=None) if h.user == user else h for h in hosts]
            for hosts in (superlinks, nodes)
        )
    if len(superlinks) != 1:
        raise FledgeError(
            f"an inventory needs exactly one coordinator, got {len(superlinks)}",
            fix="give --superlink once (or one row with role superlink in --hosts-file)",
        )
    if not nodes:
        raise FledgeError(
            "an inventory needs at least one device", fix="give --device for each device"
        )
    if output.exists() and not force:
        raise FledgeError(
            "the file exists", path=output, fix="choose another --output, or pass --force"
        )
    header = (
        "# fledge fleet inventory (`fledge inventory generate`); see README.md for the format.\n"
    )
    fleet = inventory.write(
        output,
        inventory.render(
            superlinks[0], nodes, {"ansible_user": user} if user else None, header=header
        ),
    )
    err.print(
        f"Wrote {escape(display_path(output))}: 1 coordinator, {len(fleet.supernodes)} devices."
    )


@app.command()
@handle_errors
def check(inventory_path: InventoryOption, output: FormatOption = Format.text) -> None:
    """Validate an inventory and list its hosts."""
    fleet = inventory.load(inventory_path)
    rows = [
        {"name": h.name, "role": h.group, "address": h.address, "port": h.port, "user": h.user}
        for h in fleet.hosts
    ]
    if output is Format.json:
        print_json(
            {
                "inventory": str(fleet.path),
                "state_dir": str(fleet.state_dir),
                "hosts": rows,
                "superlink": {
                    "fleet_host": fleet.fleet_host,
                    "port": fleet.superlink_port,
                    "control_address": fleet.control_address,
                },
            }
        )
        return
    table = Table(title=escape(display_path(fleet.path)), title_justify="left")
    for column in ("name", "role", "address", "port", "user"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(escape(str(row[c] or "")) for c in ("name", "role", "address", "port", "user"))
        )
    err.print(table)
    err.print(
        f"Devices reach the SuperLink at {fleet.fleet_host}:{fleet.superlink_port}; "
        f"this controller at {fleet.control_address}."
    )
