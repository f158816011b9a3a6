"""`fledge round`: start training runs on the fleet's SuperLink and follow them.

A run's outcome is read from the SuperLink (``flwr ls --run-id``), never
from the exit code of a flwr command; `fledge round start` exits 0 only for
``finished:completed``. See docs/rounds.md.
"""

from __future__ import annotations

import sys
import time
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fledge.commands.fleet import load as load_fleet
from fledge.commands.fleet import superlink as fleet_superlink
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
from fledge.flower.apps import default_app, run_config
from fledge.flower.records import RoundMetrics, RunInfo
from fledge.flower.superlink import SuperLink
from fledge.fsutil import open_state_dir
from fledge.lazy import lazy

if TYPE_CHECKING:
    from ansible_collections.fledge.edge.plugins.plugin_utils import registry
    from fledge import app_packages, control, inventory, results
    from fledge.flower import follow
else:
    registry = lazy("ansible_collections.fledge.edge.plugins.plugin_utils.registry")
    app_packages = lazy("fledge.app_packages")
    control = lazy("fledge.control")
    inventory = lazy("fledge.inventory")
    results = lazy("fledge.results")
    follow = lazy("fledge.flower.follow")

app = typer.Typer(
    help="Start, follow and stop training runs on the fleet's SuperLink.", no_args_is_help=True
)

DEFAULT_TIMEOUT = 1800.0
_DEVICE_CHECK = (
    "on a device, see `systemctl status fledge-supernode` and `journalctl -u fledge-supernode`"
)


# --- start ------------------------------------------------------------------


@app.command()
@handle_errors
def start(
    inventory_path: InventoryOption,
    app_dir: Annotated[
        Path | None,
        typer.Option(
            "--app",
            exists=True,
            file_okay=False,
            resolve_path=True,
            help="The Flower app to run (a directory with a pyproject.toml). "
            "Default: fledge's digits app.",
        ),
    ] = None,
    rounds: Annotated[
        int | None,
        typer.Option("--rounds", min=1, help="Federated rounds (the app's num-server-rounds)."),
    ] = None,
    min_nodes: Annotated[
        int | None,
        typer.Option(
            "--min-nodes",
            min=1,
            help="Devices that must be online and take part. "
            "Default: every device in the inventory.",
        ),
    ] = None,
    config_values: Annotated[
        list[str] | None,
        typer.Option(
            "--config",
            "-c",
            metavar="KEY=VALUE",
            help="A value of the app's run config (repeat); VALUE in TOML, e.g. lr=0.1 "
            "or name='a b'. The key must be one the app declares.",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Stop the run after this many seconds.")
    ] = DEFAULT_TIMEOUT,
    node_wait: Annotated[
        float,
        typer.Option(
            "--node-wait",
            min=1,
            help="Stop the run (exit 3) when its app has waited this many seconds for more "
            "devices than are connected.",
        ),
    ] = follow.NODE_WAIT_SECONDS,
    output: FormatOption = Format.text,
) -> None:
    """Start a training run on the fleet and follow it round by round until it ends."""
    flwr_app: Traversable = app_dir if app_dir is not None else default_app()
    fleet = load_fleet(inventory_path)
    needed = min_nodes if min_nodes is not None else len(fleet.supernodes)
    config = run_config(flwr_app, rounds=rounds, min_nodes=needed, values=config_values or [])
    _require_packages(fleet, flwr_app)
    with control.superlink(fleet) as superlink:
        _require_online(superlink, needed, fleet, explicit=min_nodes is not None)
        run_id = superlink.start_run(flwr_app, config.overrides)
        err.print(f"Started run [bold]{run_id}[/] ({escape(config.describe())})")
        progress = _Progress(run_id, config.rounds)
        with err.status(progress):
            outcome = follow.follow(superlink, run_id, timeout, progress, node_wait)
    folder, summary = results.keep(fleet, outcome, config.overrides)
    if output is Format.json:
        print_json(summary.to_json() | {"results": str(folder)})
    else:
        _print_summary(summary)
        _print_results(folder, summary)
    raise typer.Exit(outcome.exit_code)


def _require_packages(fleet: inventory.Inventory, app: Traversable) -> None:
    """Refuse a run whose app would fail to import on some host."""
    found = app_packages.check(fleet, app)
    if found.shortfalls:
        raise app_packages.refusal(fleet, app, found.shortfalls)
    if found.unrecorded:
        err.print(
            f"[yellow]warning:[/] the app's packages were not checked on "
            f"{', '.join(found.unrecorded)}: no provisioning recorded what they have "
            f"(`fledge provision -i {fleet.path}` does)",
            soft_wrap=True,
        )


def _require_online(
    superlink: SuperLink, needed: int, fleet: inventory.Inventory, *, explicit: bool
) -> None:
    online = sum(1 for node in superlink.list_nodes() if node.online)
    if online < needed:
        source = "--min-nodes" if explicit else f"one per device in {display_path(fleet.path)}"
        raise FledgeError(
            f"only {online} devices are connected to the SuperLink; the run needs {needed} "
            f"({source})",
            fix=f"{_DEVICE_CHECK}; `fledge round nodes` lists the connected ones; "
            "or train with fewer devices: --min-nodes N",
        )
    err.print(f"{online} devices connected (the run needs {needed})")


# --- follow -----------------------------------------------------------------


class _Progress:
    """What `round start` shows while it follows a run: a status line under a
    spinner, and each finished round printed once above it.

    Rich renders ``__rich__`` on every refresh, so the clock keeps running
    between polls.
    """

    def __init__(self, run_id: str, total_rounds: int | None) -> None:
        self.run_id = run_id
        self.total_rounds = total_rounds
        self.state = "pending"
        self.started = time.monotonic()
        self.done = 0
        self.waiting_for = ""

    def __rich__(self) -> str:
        done = f", {self.done}{self._of()} rounds done" if self.done else ""
        elapsed = _duration(time.monotonic() - self.started)
        return f"run {self.run_id}: {self.state}{done}{self.waiting_for}, {elapsed}"

    def _of(self) -> str:
        return f"/{self.total_rounds}" if self.total_rounds else ""

    # The follower's observer.

    def status(self, status: str) -> None:
        self.state = status

    def waiting(self, connected: int, required: int) -> None:
        self.waiting_for = f", waiting for {required} devices ({connected} connected)"

    def round_done(self, metrics: RoundMetrics) -> None:
        self.done += 1
        self.waiting_for = ""
        err.print(_round_line(metrics, self._of()))

    def note(self, message: str, *, warning: bool = False) -> None:
        err.print(f"[yellow]{escape(message)}[/]" if warning else escape(message))


# --- output -----------------------------------------------------------------


# Lines of the ServerApp's log shown when a run did not complete.
LOG_TAIL_LINES = 20


def _print_summary(summary: results.Summary) -> None:
    info = summary.info
    if summary.rounds:
        table = Table(title="Rounds", title_justify="left")
        for column in ("round", "nodes", "train loss", "loss", "accuracy"):
            table.add_column(column, justify="right")
        for m in summary.rounds:
            table.add_row(
                str(m.round),
                _value(m.nodes),
                _number(m.train_loss),
                _number(m.loss),
                _percent(m.accuracy),
            )
        err.print(table)
    else:
        err.print("No round finished.")
    colour = "green" if info.completed else "red"
    grid = Table.grid(padding=(0, 2))
    grid.add_row("run", info.run_id)
    grid.add_row("status", f"[{colour}]{escape(info.status)}[/]")
    grid.add_row("details", escape(info.status_details or "-"))
    grid.add_row("app", escape(info.app))
    grid.add_row("duration", _duration(info.elapsed_seconds))
    grid.add_row(
        "traffic",
        f"{_bytes(info.inbound_bytes)} in, {_bytes(info.outbound_bytes)} out",
    )
    err.print(grid)


def _print_results(folder: Path, summary: results.Summary) -> None:
    """Where the results folder is, what it lacks, and the log's end after a failure."""
    if summary.files:
        names = ", ".join(summary.files[:5]) + (", ..." if len(summary.files) > 5 else "")
        err.print(f"The ServerApp wrote {len(summary.files)} files: {escape(names)}")
    if summary.files_error:
        err.print(
            f"[yellow]warning:[/] the ServerApp's files were not fetched: "
            f"{escape(summary.files_error)}",
            soft_wrap=True,
        )
    if not summary.info.completed:
        log = (folder / results.LOG).read_text().rstrip().splitlines()
        if log:
            err.print(f"The ServerApp's log ends with ({len(log)} lines in all):")
            for line in log[-LOG_TAIL_LINES:]:
                err.print(f"  {escape(line)}", soft_wrap=True, highlight=False)
    err.print(f"Results: [bold]{escape(display_path(folder))}[/]", soft_wrap=True)


def _round_line(m: RoundMetrics, of: str) -> str:
    return (
        f"round {m.round}{of}: nodes {_value(m.nodes)}, train loss {_number(m.train_loss)}, "
        f"loss {_number(m.loss)}, accuracy {_percent(m.accuracy)}"
    )


def _value(value: Any) -> str:
    return "-" if value is None else str(value)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def _bytes(count: int) -> str:
    if count < 1000:
        return f"{count} B"
    size = count / 1000
    for unit in ("kB", "MB"):
        if size < 1000:
            return f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"


# --- list, stop, nodes ------------------------------------------------------


@app.command("list")
@handle_errors
def list_runs(inventory_path: InventoryOption, output: FormatOption = Format.text) -> None:
    """List the runs on the fleet's SuperLink."""
    with fleet_superlink(inventory_path) as (fleet, superlink):
        runs = superlink.list_runs()
    saved = results.saved_runs(fleet.state_dir)

    def folder(run: RunInfo) -> Path | None:
        return results.folder(fleet.state_dir, run.run_id) if run.run_id in saved else None

    if output is Format.json:
        print_json(
            {
                "runs": [
                    run.to_json() | {"results": str(path) if (path := folder(run)) else None}
                    for run in runs
                ]
            }
        )
        return
    if not runs:
        err.print("No runs on the SuperLink yet. Start one: fledge round start")
        return
    table = Table()
    # IDs and states are what people copy and compare: never cut them short.
    for column in ("run", "app", "status", "duration", "submitted", "results"):
        table.add_column(column, no_wrap=column in ("run", "status"))
    for run in runs:
        path = folder(run)
        table.add_row(
            run.run_id,
            escape(run.app),
            escape(run.status),
            _duration(run.elapsed_seconds),
            run.pending_at or "-",
            escape(display_path(path)) if path else "-",
        )
    err.print(table)


RunArgument = Annotated[int, typer.Argument(help="The run (see `fledge round list`).")]


@app.command()
@handle_errors
def show(
    run_id: RunArgument, inventory_path: InventoryOption, output: FormatOption = Format.text
) -> None:
    """Show a run's summary again, from its results folder on this controller."""
    fleet = load_fleet(inventory_path)
    folder, summary = results.load(fleet.state_dir, str(run_id))
    if output is Format.json:
        print_json(summary.to_json() | {"results": str(folder)})
        return
    _print_summary(summary)
    _print_results(folder, summary)
    contents = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
    err.print("In it: " + escape(", ".join(map(str, contents))), soft_wrap=True)


@app.command()
@handle_errors
def logs(
    run_id: RunArgument,
    inventory_path: InventoryOption,
    follow_log: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing the log until the run ends.")
    ] = False,
) -> None:
    """Print a run's ServerApp log, as the SuperLink keeps it (any run, not only fledge's)."""
    with fleet_superlink(inventory_path) as (_, superlink):
        info = superlink.run_info(str(run_id))  # an unknown run fails here, clearly
        if not follow_log:
            _write(superlink.run_log(info.run_id))
            return
        shown = ""
        try:
            while True:
                finished = superlink.run_info(info.run_id).finished
                log = superlink.run_log(info.run_id)
                # A log only grows; text that does not extend what is shown is
                # a request the SuperLink held back (empty): wait for the next.
                if log.startswith(shown):
                    _write(log[len(shown) :])
                    shown = log
                if finished:
                    return
                time.sleep(LOG_POLL_SECONDS)
        except KeyboardInterrupt:
            raise typer.Exit(follow.EXIT_INTERRUPTED) from None


LOG_POLL_SECONDS = 2.0


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


@app.command()
@handle_errors
def fetch(
    run_id: RunArgument,
    host_name: Annotated[str, typer.Argument(metavar="HOST", help="The device (or coordinator).")],
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH...",
            help="Files or directories in the run's working directory on that host.",
        ),
    ],
    inventory_path: InventoryOption,
) -> None:
    """Copy named files a run's app wrote on a device into the run's results folder.

    A device's files stay on it unless asked for by name: they may hold its
    data. The ServerApp's files come with every run that `round start` follows.
    """
    fleet = load_fleet(inventory_path)
    host = fleet.host(host_name)
    try:
        members = [results.member_path(p) for p in paths]
    except ValueError as exc:
        raise FledgeError(
            str(exc), fix="give paths relative to the run's working directory"
        ) from None
    folder = results.folder(open_state_dir(fleet.state_dir), str(run_id))
    if host is fleet.superlink:
        dest, runs_dir = folder / results.FILES, "_superlink_runs_dir"
    else:
        dest, runs_dir = folder / results.DEVICES / host.name, "_supernode_runs_dir"
    copied = results.fetch_run_dir(host, runs_dir, str(run_id), dest, members)
    for name in copied:
        err.print(escape(display_path(dest / name)), soft_wrap=True)
    err.print(
        f"Copied {len(copied)} files from {escape(host.name)} into {escape(display_path(dest))}"
    )


@app.command()
@handle_errors
def stop(
    run_id: Annotated[int, typer.Argument(help="The run to stop (see `fledge round list`).")],
    inventory_path: InventoryOption,
) -> None:
    """Stop a run on the fleet's SuperLink."""
    with fleet_superlink(inventory_path) as (_, superlink):
        superlink.stop_run(str(run_id))
    err.print(f"Stopped run {run_id}")


@app.command()
@handle_errors
def nodes(inventory_path: InventoryOption, output: FormatOption = Format.text) -> None:
    """List the SuperLink's nodes with the device each one is, and the devices it lacks."""
    with fleet_superlink(inventory_path) as (fleet, superlink):
        known = superlink.list_nodes()
    hosts = {e.node_id: host for host, e in registry.read_all(fleet.state_dir).items() if e.node_id}
    rows = [node.to_json() | {"host": hosts.get(node.node_id)} for node in known]
    seen = {row["host"] for row in rows if row["status"] != "unregistered"}
    missing = [h.name for h in fleet.supernodes if h.name not in seen]
    online = sum(1 for node in known if node.online)
    if output is Format.json:
        print_json(
            {"devices": len(fleet.supernodes), "online": online, "nodes": rows, "missing": missing}
        )
        return
    table = Table()
    for column in ("host", "node id", "status", "online since", "offline since"):
        table.add_column(column, no_wrap=column in ("host", "node id"))
    for row in rows:
        colour = {"online": "green", "unregistered": "dim"}.get(row["status"], "yellow")
        table.add_row(
            escape(row["host"] or "(no host)"),
            row["node_id"],
            f"[{colour}]{escape(row['status'])}[/]",
            row["online_at"] or "-",
            row["offline_at"] or "-",
        )
    for host in missing:
        table.add_row(escape(host), "-", "[red]not registered[/]", "-", "-")
    err.print(table)
    err.print(f"{online} of {len(fleet.supernodes)} devices in the inventory are online")
    if online < len(fleet.supernodes):
        err.print(f"To find out why, {_DEVICE_CHECK}.")
