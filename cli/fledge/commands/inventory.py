"""`fledge inventory`: write and check fleet inventories."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fledge import inventory
from fledge.addresses import (
    is_host_name,
    is_ip,
    is_user_name,
    is_valid_address,
    parse_port,
    split_host_port,
)
from fledge.commands.fleet import load as load_fleet
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
from fledge.fsutil import read_utf8

app = typer.Typer(help="Write and check fleet inventories.", no_args_is_help=True)

SPEC_HELP = (
    "NAME=[USER@]ADDRESS[:PORT], e.g. pi-1=pi@192.168.1.21 (NAME= may be left out for a DNS name)"
)
CSV_COLUMNS = ("role", "name", "address", "user", "port")
REQUIRED_COLUMNS = ("role", "name", "address")
ROLES = {"superlink": True, "supernode": False, "device": False}  # role: is the coordinator
NAME_FIX = "use letters, digits, '.', '_' and '-', starting with a letter or digit"
USER_FIX = "give the login user on the device, for example pi"


@dataclass(frozen=True)
class Given:
    """A host as the operator gave it, and where: an option, or a line of the hosts file."""

    spec: inventory.HostSpec
    coordinator: bool
    where: str
    path: Path | None = None
    line: int | None = None

    def fail(self, message: str, column: str, fix: str) -> FledgeError:
        """An error about one of its fields, pointing where the operator wrote it."""
        if self.path is None:
            return FledgeError(f"{self.where}: {message}", fix=fix)
        return FledgeError(message, path=self.path, line=self.line, field=column, fix=fix)


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
    if not name and is_ip(host):
        raise FledgeError(
            f"{option} {spec!r}: an IP address needs a name", fix=f"write it as {SPEC_HELP}"
        )
    return inventory.HostSpec(name=name or host, address=host, user=user or None, port=port)


def read_hosts_file(path: Path) -> list[Given]:
    """Read a CSV file with the columns role,name,address,user,port (user and port may be empty).

    Spreadsheets write such files: a UTF-8 byte-order mark is fine, blank
    lines are skipped, and every error names the line as an editor counts it.
    """
    try:
        text = read_utf8(path, fix="save it as UTF-8 (in Excel: Save As, CSV UTF-8)")
    except OSError as exc:
        raise FledgeError(f"cannot read the hosts file: {exc.strerror}", path=path) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, list[str]]] = []
    line = 1  # where the next row starts; a quoted field may span lines
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                rows.append((line, cells))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise FledgeError(f"not a CSV file: {exc}", path=path, line=reader.line_num) from None
    header = [cell.strip() for cell in rows[0][1]] if rows else []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise FledgeError(
            f"missing column(s) {', '.join(missing)}",
            path=path,
            line=rows[0][0] if rows else 1,
            fix=f"start the file with the header line {','.join(CSV_COLUMNS)}",
        )
    return [_read_row(path, number, header, cells) for number, cells in rows[1:]]


def _read_row(path: Path, line: int, header: list[str], cells: list[str]) -> Given:
    if len(cells) != len(header):
        # A missing or extra comma shifts every field after it: never guess.
        raise FledgeError(
            f"{len(cells)} fields, but the header has {len(header)} ({','.join(header)})",
            path=path,
            line=line,
            fix="give every row all the header's columns; leave user and port empty, "
            "not out (e.g. supernode,pi-1,10.0.0.21,,)",
        )
    row = {column: cell.strip() for column, cell in zip(header, cells, strict=True)}
    if row["role"] not in ROLES:
        raise FledgeError(
            f"unknown role '{row['role']}'",
            path=path,
            line=line,
            field="role",
            fix="use superlink (the coordinator) or supernode (a device)",
        )
    try:
        port = parse_port(row["port"]) if row.get("port") else None
    except ValueError as exc:
        raise FledgeError(
            str(exc),
            path=path,
            line=line,
            field="port",
            fix="use a number between 1 and 65535, or leave it empty for 22",
        ) from None
    spec = inventory.HostSpec(
        name=row["name"], address=row["address"], user=row.get("user") or None, port=port
    )
    return Given(spec, ROLES[row["role"]], f"{display_path(path)}:{line}", path, line)


def check_given(given: Given) -> None:
    """Refuse a host whose name, address or user the inventory could not hold as given."""
    spec = given.spec
    if not is_host_name(spec.name):
        raise given.fail(f"{spec.name!r} is not a usable host name", "name", NAME_FIX)
    if not is_valid_address(spec.address):
        raise given.fail(
            f"{spec.address!r} is not an IP address or host name",
            "address",
            f"give the device's IP address or DNS name, without a port ({SPEC_HELP})",
        )
    if spec.user is not None and not is_user_name(spec.user):
        raise given.fail(f"{spec.user!r} is not a valid Linux user name", "user", USER_FIX)


def check_unique(hosts: list[Given]) -> None:
    """Refuse a name given twice: the inventory would keep one host and drop the other."""
    first: dict[str, Given] = {}
    for given in hosts:
        seen = first.setdefault(given.spec.name, given)
        if seen is not given:
            raise given.fail(
                f"the name {given.spec.name!r} is given twice: {seen.where} and {given.where}",
                "name",
                "give each host its own name (the coordinator's too)",
            )


def _hosts_given(superlink: str | None, devices: list[str], hosts_file: Path | None) -> list[Given]:
    """Every host from the options and the hosts file, checked, in the order given."""
    options = [("--superlink", superlink)] if superlink else []
    options += [("--device", device) for device in devices]
    hosts = [
        Given(parse_spec(text, option), option == "--superlink", f"{option} {text!r}")
        for option, text in options
    ]
    if hosts_file:
        hosts += read_hosts_file(hosts_file)
    for given in hosts:
        check_given(given)
    check_unique(hosts)
    return hosts


def _check_output(output: Path, force: bool) -> None:
    """Refuse an --output that cannot take the inventory, before anything is written."""
    problem, fix = None, ""
    if output.is_dir():
        problem, fix = "this is a directory", "give a file's path, e.g. DIR/inventory.yml"
    elif output.exists() and not force:
        problem, fix = "the file exists", "choose another --output, or pass --force"
    elif not output.parent.is_dir():
        problem = f"there is no directory {display_path(output.parent)} to write it in"
        fix = f"create it first (mkdir -p {output.parent}), or choose another --output"
    if problem:
        raise FledgeError(problem, path=output, field="--output", fix=fix)


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
    if user is not None and not is_user_name(user):
        raise FledgeError(f"{user!r} is not a valid Linux user name", field="--user", fix=USER_FIX)
    hosts = _hosts_given(superlink, devices or [], hosts_file)
    superlinks = [g.spec for g in hosts if g.coordinator]
    nodes = [g.spec for g in hosts if not g.coordinator]
    if user:  # said once for all hosts, not again on each
        superlinks, nodes = (
            [replace(h, user=None) if h.user == user else h for h in specs]
            for specs in (superlinks, nodes)
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
    _check_output(output, force)
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
    fleet = load_fleet(inventory_path)
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
                    "tls": fleet.tls,
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
        f"Devices reach the SuperLink at {fleet.fleet_host}:{fleet.superlink_port}; this "
        f"controller reaches its Control API over SSH to {fleet.superlink.name}."
    )
