"""`fledge logs`: the journals of the fleet's services, read from the hosts over SSH."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer
from rich.markup import escape

from fledge.commands.fleet import load as load_fleet
from fledge.console import InventoryOption, display_path, err, handle_errors
from fledge.errors import FledgeError
from fledge.fsutil import new_private_dir, open_state_dir, private_dir
from fledge.inventory import Host, Inventory
from fledge.lazy import lazy

if TYPE_CHECKING:
    from fledge import journal
else:
    journal = lazy("fledge.journal")

LOGS_DIR = "logs"
# The exit code of a command ended with Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED = 130


@handle_errors
def logs(
    inventory_path: InventoryOption,
    hosts: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[HOST]...",
            help="Hosts of the inventory: a device shows its SuperNode's journal, the "
            "coordinator its SuperLink's.",
            show_default=False,
        ),
    ] = None,
    all_devices: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Every device of the inventory, one file each (see --output-dir).",
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="TIME",
            help="Entries from TIME on, as journalctl reads it: '2026-12-01 10:00', "
            "'yesterday', '-1h', '30 min ago'.",
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Keep showing new entries until Ctrl-C; with several hosts each line "
            "starts with its host. Not with files (--all, --output-dir).",
        ),
    ] = False,
    lines: Annotated[
        int | None,
        typer.Option("--lines", "-n", min=0, help="Only the last N entries of each journal."),
    ] = None,
    output_dir: Annotated[
        Path | None,
        typer.Option(
            "--output-dir",
            file_okay=False,
            help="Write one file per host, <host>.log, into DIR (created if missing; "
            "files of the same hosts are replaced). Default with --all: "
            "<state dir>/logs/<UTC time>/.",
        ),
    ] = None,
) -> None:
    """The journals of the SuperNodes (devices) and of the SuperLink (coordinator).

    A device's journal is its SuperNode's, with the output of its ClientApps.
    Read over SSH as Ansible logs in, with `sudo -n journalctl` (the login user
    need not be in the systemd-journal group). One host goes to stdout; several
    go to stdout one after the other, each line starting with its host; --all
    (or --output-dir) writes one file per host, and a host that fails is
    reported without stopping the others. Exits 1 when a host failed, 130 on
    Ctrl-C. See docs/operations.md.
    """
    fleet = load_fleet(inventory_path)
    if since is not None:
        journal.check_since(since)
    chosen = _choose(fleet, hosts or [], all_devices)
    to_files = all_devices or output_dir is not None
    if to_files and follow:
        raise FledgeError(
            "--follow shows journals as they grow and cannot write them to files",
            field="--follow",
            fix="follow named hosts on this terminal: "
            f"fledge logs {' '.join(host.name for host in chosen)} --follow",
        )
    query = journal.Query(since=since, lines=lines, follow=follow)
    try:
        if to_files:
            failed = _to_files(fleet, chosen, query, output_dir)
        elif follow and len(chosen) > 1:
            failed = _follow_all(chosen, query)
        else:
            failed = _to_stdout(chosen, query)
    except KeyboardInterrupt:
        err.print("Stopped.")
        raise typer.Exit(INTERRUPTED) from None
    if failed:
        raise typer.Exit(1)


def _choose(fleet: Inventory, names: Sequence[str], all_devices: bool) -> list[Host]:
    example = f"fledge logs {fleet.supernodes[0].name} --lines 50"
    if all_devices and names:
        raise FledgeError(
            "name hosts or give --all (every device), not both",
            field="--all",
            fix=f"for some hosts: {example}",
        )
    if all_devices:
        return list(fleet.supernodes)
    if not names:
        raise FledgeError(
            "which hosts? Name them, or give --all for every device",
            fix=f"for example: {example}",
        )
    return journal.select(fleet, names)


# --- stdout -------------------------------------------------------------------


def _to_stdout(hosts: Sequence[Host], query: journal.Query) -> int:
    """Each host's journal in turn; each line after its host when there are several."""
    out = _stdout()
    width = max(len(host.name) for host in hosts)
    failed = 0
    for host in hosts:
        prefix = f"{host.name:<{width}} | ".encode() if len(hosts) > 1 else b""
        try:
            with journal.open_journal(host, query) as entries:
                for line in entries:
                    out.write(prefix + line)
                    if query.follow:
                        out.flush()
        except (FledgeError, *journal.SESSION_ERRORS) as exc:
            if isinstance(exc, BrokenPipeError):  # `fledge logs pi-1 | head`
                _quiet_stdout()
                return failed
            failed += 1
            _report(host.name, exc)
        out.flush()
    return failed


def _follow_all(hosts: Sequence[Host], query: journal.Query) -> int:
    out = _stdout()
    width = max(len(host.name) for host in hosts)
    failed: set[str] = set()
    with contextlib.closing(journal.follow_all(hosts, query)) as lines:
        for line in lines:
            if line.error is not None:
                failed.add(line.host)
                err.print(
                    f"[bold red]error:[/] {escape(line.host)}: {escape(line.error)}",
                    soft_wrap=True,
                )
                continue
            try:
                out.write(f"{line.host:<{width}} | ".encode() + line.text)
                out.flush()
            except BrokenPipeError:
                _quiet_stdout()
                break
    return len(failed)


def _stdout() -> BinaryIO:
    sys.stdout.flush()
    return sys.stdout.buffer


def _quiet_stdout() -> None:
    """Whoever read stdout is gone: later writes (and Python's at exit) go nowhere."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _report(host: str, exc: BaseException) -> None:
    err.print(
        f"[bold red]error:[/] {escape(host)}: {escape(journal.describe(exc))}", soft_wrap=True
    )


# --- files --------------------------------------------------------------------


def _to_files(
    fleet: Inventory, hosts: Sequence[Host], query: journal.Query, output_dir: Path | None
) -> int:
    folder = _folder(fleet, output_dir)
    err.print(f"Writing {len(hosts)} journals into {escape(display_path(folder))}", soft_wrap=True)
    failed = 0
    for written in journal.write_all(hosts, query, folder):
        if written.error is not None:
            failed += 1
            err.print(
                f"[bold red]error:[/] {escape(written.host)}: {escape(written.error)}",
                soft_wrap=True,
            )
        else:
            err.print(
                f"{escape(written.host)}: {escape(display_path(written.path))} "
                f"({written.size} bytes)",
                soft_wrap=True,
            )
    done = len(hosts) - failed
    colour = "green" if not failed else "yellow"
    err.print(
        f"[{colour}]{done} of {len(hosts)} journals[/] in {escape(display_path(folder))}",
        soft_wrap=True,
    )
    return failed


def _folder(fleet: Inventory, output_dir: Path | None) -> Path:
    """The folder the files go to: the one given, else a new one in the state dir."""
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        return output_dir
    parent = private_dir(open_state_dir(fleet.state_dir) / LOGS_DIR)
    return new_private_dir(parent, dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ"))
