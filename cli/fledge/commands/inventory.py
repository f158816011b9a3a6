"""`fledge inventory`: write and check fleet inventories."""

from __future__ import annotations

import csv
import io
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
from fledge.lazy import lazy

if TYPE_CHECKING:
    from fledge import scan as scanning
else:
    scanning = lazy("fledge.scan")

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
    fleet = _write_inventory(output, superlinks[0], nodes, {"ansible_user": user} if user else {})
    err.print(
        f"Wrote {escape(display_path(output))}: 1 coordinator, {len(fleet.supernodes)} devices."
    )


def _write_inventory(
    output: Path,
    superlink: inventory.HostSpec,
    nodes: list[inventory.HostSpec],
    all_vars: dict[str, Any],
    command: str = "generate",
) -> inventory.Inventory:
    """Write a new inventory (checked first, written at once) for these hosts."""
    header = (
        f"# fledge fleet inventory (`fledge inventory {command}`); see README.md for the format.\n"
    )
    return inventory.write(
        output, inventory.render(superlink, nodes, all_vars or None, header=header)
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


@app.command("scan")
@handle_errors
def scan_hosts(
    hosts: Annotated[
        list[str],
        typer.Argument(metavar="HOST...", help=f"A host to scan (repeat): {SPEC_HELP}."),
    ],
    user: Annotated[
        str | None,
        typer.Option(
            "--user", "-u", help="SSH user for hosts that name none (default: your user name)."
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            "-k",
            help="The SSH private key to log in with (default: the SSH agent's and ~/.ssh's).",
        ),
    ] = None,
    known_hosts: Annotated[
        Path | None,
        typer.Option(
            "--known-hosts",
            help="The known_hosts file the hosts' keys are checked against "
            f"(default: {scanning.DEFAULT_KNOWN_HOSTS}).",
        ),
    ] = None,
    accept_new_host_key: Annotated[
        bool,
        typer.Option(
            "--accept-new-host-key",
            help="Record in --known-hosts the key of a host it has none for (never replace a "
            "key it has), and say so with the key's fingerprint. Only on a network you trust.",
        ),
    ] = False,
    coordinator: Annotated[
        str | None,
        typer.Option(
            "--coordinator",
            metavar="NAME",
            help="The scanned host that will run the SuperLink: judged and written as the "
            "coordinator (default: none; every host is a device).",
        ),
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option(
            "--runtime",
            help="How the devices will run their SuperNode, which sets what they need: systemd "
            "or container (default: the collection's supernode_runtime).",
        ),
    ] = None,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=1, help="Seconds to log in to a host, and then for it to answer."
        ),
    ] = scanning.DEFAULT_TIMEOUT,
    output_path: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write a new inventory of the hosts reached (needs --coordinator).",
        ),
    ] = None,
    add_to: Annotated[
        Path | None,
        typer.Option(
            "--add-to",
            help="Add the hosts reached to this YAML inventory: devices to supernodes, the "
            "--coordinator to superlink (if it has none). Names it has already are refused.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing --output inventory.")
    ] = False,
    fmt: FormatOption = Format.text,
) -> None:
    """Scan hosts over SSH: what each one is, and whether preflight would refuse it.

    Reports each host's architecture, OS, Python, memory, free disk, Raspberry
    Pi model and clock, and why fledge's preflight checks would refuse it, if
    they would; optionally writes or extends an inventory with the hosts.

    Each HOST is [NAME=][USER@]ADDRESS[:PORT]; an IP address needs a NAME. Host
    keys are checked against --known-hosts. Exits 0 when every host was reached
    and none would be refused, else 1.
    """
    if user is not None and not is_user_name(user):
        raise FledgeError(f"{user!r} is not a valid Linux user name", field="--user", fix=USER_FIX)
    given = [Given(parse_spec(text, "HOST"), False, f"HOST {text!r}") for text in hosts]
    for host in given:
        check_given(host)
    check_unique(given)
    names = [g.spec.name for g in given]
    if coordinator is not None and coordinator not in names:
        raise FledgeError(
            f"--coordinator {coordinator!r} is none of the hosts given",
            field="--coordinator",
            fix=f"name one of them: {', '.join(names)}",
        )
    settings = scanning.preflight_settings()
    if runtime is not None and runtime not in settings.runtimes:
        raise FledgeError(
            f"unknown runtime {runtime!r}",
            field="--runtime",
            fix=f"use one of {', '.join(settings.runtimes)}",
        )
    device_kind = runtime or scanning.default_runtime()
    targets = [
        scanning.Target(spec, inventory.SUPERLINK if spec.name == coordinator else device_kind)
        for spec in (g.spec for g in given)
    ]
    _check_destination(output_path, add_to, force, coordinator, targets)
    access = scanning.Access(
        known_hosts=(known_hosts or scanning.DEFAULT_KNOWN_HOSTS).expanduser(),
        user=user,
        key_file=key.expanduser() if key else None,
        accept_new_host_key=accept_new_host_key,
        timeout=timeout,
    )
    scanning.check_access(access)

    with err.status(f"Scanning {len(targets)} host(s) over SSH ..."):
        results = scanning.scan(targets, access, settings)
    for result in results:
        recorded = result.recorded_key
        if recorded is not None:
            err.print(
                f"Recorded the {recorded.type} key of {escape(result.target.name)} "
                f"({escape(recorded.entry)}) in {escape(display_path(recorded.known_hosts))}: "
                f"{recorded.fingerprint}"
            )

    written: dict[str, Any] | None = None
    write_error: FledgeError | None = None
    destination = output_path or add_to
    if destination is not None:
        try:
            written = _write_scanned(results, output_path, add_to, user, runtime, access)
        except FledgeError as exc:
            write_error = exc
        except OSError as exc:
            write_error = FledgeError(exc.strerror or str(exc), path=destination)

    all_ok = all(r.ok for r in results)
    if fmt is Format.json:
        print_json(
            {
                "hosts": [_scan_row(r) for r in results],
                "ok": all_ok,
                "inventory": written,
                "error": write_error.as_dict() if write_error else None,
            }
        )
    else:
        _print_scan(results, settings)
        if written is not None:
            err.print(
                f"{written['action'].capitalize()} {escape(written['path'])}: {written['note']}"
            )
    if write_error is not None:
        err.print(f"[bold red]error:[/] {escape(str(write_error))}", soft_wrap=True)
    if not all_ok or write_error is not None:
        raise typer.Exit(1)


def _check_destination(
    output_path: Path | None,
    add_to: Path | None,
    force: bool,
    coordinator: str | None,
    targets: list[scanning.Target],
) -> None:
    """Refuse an --output or --add-to that could not take the hosts, before any is scanned."""
    if output_path is not None and add_to is not None:
        raise FledgeError(
            "--output and --add-to both given",
            field="--add-to",
            fix="write a new inventory (--output) or add to one (--add-to), not both",
        )
    if output_path is not None:
        if coordinator is None:
            raise FledgeError(
                "a new inventory needs a coordinator",
                field="--output",
                fix="say which scanned host runs the SuperLink with --coordinator NAME, or add "
                "the devices to an existing inventory with --add-to",
            )
        if len(targets) < 2:
            raise FledgeError(
                "a new inventory needs at least one device besides the coordinator",
                field="--output",
                fix="scan the devices too",
            )
        _check_output(output_path, force)
    if add_to is not None:
        groups = _by_group([t.spec for t in targets], coordinator)
        scanning.check_extendable(
            add_to, {group: [s.name for s in specs] for group, specs in groups.items()}
        )


def _by_group(
    specs: list[inventory.HostSpec], coordinator: str | None
) -> dict[str, list[inventory.HostSpec]]:
    """Hosts by the inventory group they go in."""
    groups: dict[str, list[inventory.HostSpec]] = {}
    for spec in specs:
        group = inventory.SUPERLINK if spec.name == coordinator else inventory.SUPERNODES
        groups.setdefault(group, []).append(spec)
    return groups


def _write_scanned(
    results: list[scanning.Result],
    output_path: Path | None,
    add_to: Path | None,
    user: str | None,
    runtime: str | None,
    access: scanning.Access,
) -> dict[str, Any]:
    """Write or extend the inventory with the hosts reached; what was done, for the report."""
    reached = [r for r in results if r.reached]
    missed = [r.target.name for r in results if not r.reached]
    skipped = f" (not reached, left out: {', '.join(missed)})" if missed else ""
    coordinator = next((r for r in results if r.target.kind == inventory.SUPERLINK), None)

    def spec(result: scanning.Result, user_per_host: bool) -> inventory.HostSpec:
        host = result.target.spec
        if user and host.user is None and user_per_host:
            host = replace(host, user=user)
        elif user and host.user == user and not user_per_host:
            host = replace(host, user=None)  # said once, in all.vars
        if runtime is not None and result.target.kind != inventory.SUPERLINK:
            host = replace(host, vars={**host.vars, "supernode_runtime": runtime})
        return host

    if output_path is not None:
        assert coordinator is not None  # _check_destination
        if not coordinator.reached:
            raise FledgeError(
                f"no inventory written: the coordinator {coordinator.target.name} was not reached",
                path=output_path,
                fix="fix what kept it out (above) and scan again",
            )
        nodes = [spec(r, False) for r in reached if r is not coordinator]
        if not nodes:
            raise FledgeError(
                "no inventory written: no device was reached",
                path=output_path,
                fix="fix what kept them out (above) and scan again",
            )
        all_vars: dict[str, Any] = {"ansible_user": user} if user else {}
        if access.key_file is not None:
            all_vars["ansible_ssh_private_key_file"] = str(access.key_file.resolve())
        if access.known_hosts != scanning.DEFAULT_KNOWN_HOSTS.expanduser():
            # Ansible then checks host keys against the file this scan did.
            all_vars["ansible_ssh_common_args"] = (
                f"-o UserKnownHostsFile={shlex.quote(str(access.known_hosts.resolve()))} "
                "-o StrictHostKeyChecking=yes"
            )
        fleet = _write_inventory(output_path, spec(coordinator, False), nodes, all_vars, "scan")
        return {
            "action": "wrote",
            "path": str(output_path),
            "hosts": [h.name for h in fleet.hosts],
            "note": f"1 coordinator, {len(fleet.supernodes)} devices{skipped}.",
        }
    assert add_to is not None
    if not reached:
        raise FledgeError(
            "nothing added: no host was reached", path=add_to, fix="fix what kept them out (above)"
        )
    coordinator_name = coordinator.target.name if coordinator is not None else None
    additions = _by_group([spec(r, True) for r in reached], coordinator_name)
    _, lost_comments = scanning.extend_inventory(add_to, additions)
    added = [s.name for specs in additions.values() for s in specs]
    note = f"added {', '.join(added)}{skipped}."
    if lost_comments:
        note += " Comments after the file's first lines were not kept."
    return {"action": "extended", "path": str(add_to), "hosts": added, "note": note}


def _scan_row(result: scanning.Result) -> dict[str, Any]:
    """One host of `inventory scan --format json`."""
    facts, target, recorded = result.facts, result.target, result.recorded_key
    clock = facts.clock if facts else None
    return {
        "name": target.name,
        "address": target.spec.address,
        "port": target.port,
        "user": result.user,
        "kind": target.kind,
        "verdict": result.verdict,
        "reasons": list(result.reasons),
        "error": result.error.as_dict() if result.error else None,
        "architecture": facts.architecture if facts else None,
        "userland": facts.userland if facts else None,
        "os": facts.os if facts else None,
        "codename": facts.codename if facts else None,
        "python": facts.python if facts else None,
        "memory_mb": facts.memory_mb if facts else None,
        "disk_mb": facts.disk_mb if facts else None,
        "pi_model": facts.pi_model if facts else None,
        "systemd": facts.systemd if facts else None,
        "clock_offset_s": round(clock.offset, 3) if clock else None,
        "clock_uncertainty_s": round(clock.uncertainty, 3) if clock else None,
        "host_key_recorded": (
            {"type": recorded.type, "sha256": recorded.fingerprint} if recorded else None
        ),
    }


def _print_scan(results: list[scanning.Result], settings: scanning.Preflight) -> None:
    table = Table(title="fledge inventory scan", title_justify="left", expand=True)
    for column in ("host", "machine", "OS"):
        table.add_column(column, ratio=2, overflow="fold")
    # Numbers whole: they are what the verdicts compare.
    for column, width in (("python", 6), ("memory MB", 6), ("disk MB", 7), ("clock", 8)):
        table.add_column(column, justify="right", no_wrap=True, min_width=width)
    table.add_column("verdict", ratio=4)
    for result in results:
        facts, target = result.facts, result.target
        host = (
            f"{escape(target.name)}\n"
            f"[dim]{escape(f'{result.user}@{target.spec.address}:{target.port}')}[/]"
        )
        if facts is None:
            error = result.error.message if result.error else "not reached"
            table.add_row(host, *[""] * 6, f"[red]unreachable: {escape(error)}[/]")
            continue
        machine = facts.architecture or "?"
        if facts.userland and settings.architectures.get(facts.userland) != machine:
            machine += f" ({facts.userland} userland)"
        if facts.pi_model:
            machine += f"\n{facts.pi_model}"
        os_name = facts.os or "?"
        if facts.codename and facts.codename not in os_name:
            os_name += f" ({facts.codename})"
        verdict = (
            "[green]ok[/]"
            if result.ok
            else "\n".join(f"[red]{escape(reason)}[/]" for reason in result.reasons)
        )
        table.add_row(
            host,
            escape(machine),
            escape(os_name),
            escape(facts.python or "none"),
            "?" if facts.memory_mb is None else str(facts.memory_mb),
            "?" if facts.disk_mb is None else str(facts.disk_mb),
            f"{facts.clock.offset:+.2f} s" if facts.clock else "?",
            verdict,
        )
    err.print(table)
    for result in results:
        if result.error is not None and result.error.fix:
            err.print(f"{escape(result.target.name)}: fix: {escape(result.error.fix)}")
    ok = sum(r.ok for r in results)
    refused = sum(r.reached and not r.ok for r in results)
    unreached = sum(not r.reached for r in results)
    err.print(
        f"{ok} of {len(results)} host(s) ok; {refused} would be refused by preflight; "
        f"{unreached} not reached."
    )
