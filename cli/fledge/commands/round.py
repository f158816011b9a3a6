"""`fledge round`: start training runs on the fleet's SuperLink and follow them.

A run's outcome is read from the SuperLink (``flwr ls --run-id``), never
from the exit code of a flwr command; `fledge round start` exits 0 only for
``finished:completed``. See docs/rounds.md.
"""

from __future__ import annotations

import time
import tomllib
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fledge import inventory
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
from fledge.flower import (
    Flower,
    RoundMetrics,
    RunInfo,
    default_app,
    parse_round_metrics,
    read_app_config,
)

app = typer.Typer(
    help="Start, follow and stop training runs on the fleet's SuperLink.", no_args_is_help=True
)

# Each poll costs two flwr calls of ~1.5 s CPU each; 5 s apart keeps the
# controller light while rounds (tens of seconds) still show up promptly.
POLL_SECONDS = 5.0
# How long a stopped run may take to report finished:stopped.
STOP_WAIT_SECONDS = 30.0
DEFAULT_TIMEOUT = 1800.0
EXIT_FAILED = 1
EXIT_TIMEOUT = 124  # as timeout(1)
EXIT_INTERRUPTED = 130  # 128 + SIGINT
ROUNDS_KEY = "num-server-rounds"
MIN_NODES_KEY = "min-nodes"
# Before a run is running its ServerApp has logged nothing, and a log
# request would only wait.
_LOGGING_STATE = "running"
_DEVICE_CHECK = (
    "on a device, see `systemctl status fledge-supernode` and `journalctl -u fledge-supernode`"
)


@dataclass(frozen=True)
class Outcome:
    info: RunInfo
    rounds: list[RoundMetrics]
    stopped_by: str | None  # "timeout", "interrupt" or None


def _connect(inventory_path: Path) -> tuple[inventory.Inventory, Flower]:
    fleet = inventory.load(inventory_path)
    flower = Flower.for_inventory(fleet)
    if flower.insecure:
        err.print(
            "[yellow]warning:[/] fledge_tls is false for the SuperLink: talking to "
            f"{escape(flower.address)} without TLS; anyone on the path can read and change it"
        )
    return fleet, flower


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
    config: Annotated[
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
    output: FormatOption = Format.text,
) -> None:
    """Start a training run on the fleet and follow it round by round until it ends."""
    fleet, flower = _connect(inventory_path)
    flwr_app: Traversable = app_dir if app_dir is not None else default_app()
    needed = min_nodes if min_nodes is not None else len(fleet.supernodes)
    overrides, total_rounds = _run_config(flwr_app, rounds, needed, config or [])
    _require_online(flower, needed, fleet, explicit=min_nodes is not None)
    run_id = flower.start_run(flwr_app, overrides)
    err.print(f"Started run [bold]{run_id}[/] ({escape(_describe(overrides))})")
    outcome = _follow(flower, run_id, total_rounds, timeout)
    if output is Format.json:
        print_json(_summary_json(outcome))
    else:
        _print_summary(outcome)
    raise typer.Exit(_exit_code(outcome))


def _run_config(
    flwr_app: Traversable, rounds: int | None, min_nodes: int, values: list[str]
) -> tuple[dict[str, Any], int | None]:
    """Run-config overrides for the keys the app declares, and the rounds to expect.

    flwr rejects an override for a key the app does not declare, so
    min-nodes is passed only where it exists; --rounds on an app without
    num-server-rounds is an error rather than silently ignored.
    """
    config = read_app_config(flwr_app)
    overrides: dict[str, Any] = {}
    for item in values:
        key, value = _config_item(item)
        if key not in config:
            raise FledgeError(
                f"--config {item}: the app declares no '{key}' in its run config",
                path=str(flwr_app / "pyproject.toml"),
                field=key,
                fix=f"use one of {', '.join(sorted(config)) or '(none)'}, or add '{key}' "
                "to [tool.flwr.app.config]",
            )
        overrides[key] = value
    if rounds is not None:
        if ROUNDS_KEY not in config:
            raise FledgeError(
                f"--rounds needs the app to declare '{ROUNDS_KEY}' in its run config",
                path=str(flwr_app / "pyproject.toml"),
                field=ROUNDS_KEY,
                fix=f"add {ROUNDS_KEY} to [tool.flwr.app.config] and use it in the ServerApp, "
                "or leave out --rounds",
            )
        overrides[ROUNDS_KEY] = rounds
    if MIN_NODES_KEY in config:
        overrides[MIN_NODES_KEY] = min_nodes
    total = overrides.get(ROUNDS_KEY, config.get(ROUNDS_KEY))
    return overrides, total if isinstance(total, int) else None


def _config_item(item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE in TOML, as flwr reads it; a bare word is a string."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise FledgeError(
            f"--config {item!r} is not KEY=VALUE", fix="write it as --config KEY=VALUE"
        )
    try:
        return key.strip(), tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return key.strip(), text


def _require_online(
    flower: Flower, needed: int, fleet: inventory.Inventory, *, explicit: bool
) -> None:
    online = sum(1 for node in flower.list_nodes() if node.online)
    if online < needed:
        source = "--min-nodes" if explicit else f"one per device in {display_path(fleet.path)}"
        raise FledgeError(
            f"only {online} devices are connected to the SuperLink; the run needs {needed} "
            f"({source})",
            fix=f"{_DEVICE_CHECK}; `fledge round nodes` lists the connected ones; "
            "or train with fewer devices: --min-nodes N",
        )
    err.print(f"{online} devices connected (the run needs {needed})")


def _describe(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "the app's own run config"


# --- follow -----------------------------------------------------------------


class _Progress:
    """The status line under the spinner, and each round printed once above it.

    Rich renders ``__rich__`` on every refresh, so the clock keeps running
    between polls.
    """

    def __init__(self, run_id: str, total_rounds: int | None) -> None:
        self.run_id = run_id
        self.total_rounds = total_rounds
        self.state = "pending"
        self.started = time.monotonic()
        self.shown: set[int] = set()

    def __rich__(self) -> str:
        done = f", {len(self.shown)}{self._of()} rounds done" if self.shown else ""
        elapsed = _duration(time.monotonic() - self.started)
        return f"run {self.run_id}: {self.state}{done}, {elapsed}"

    def _of(self) -> str:
        return f"/{self.total_rounds}" if self.total_rounds else ""

    def announce(self, rounds: list[RoundMetrics], *, final: bool) -> None:
        """Print rounds not shown yet, once their metrics are complete.

        A round is complete when it has evaluation results, when a later
        round has begun (Flower's log reports train and evaluate apart), or
        when the run is over.
        """
        for index, metrics in enumerate(rounds):
            complete = (
                final
                or index < len(rounds) - 1
                or metrics.loss is not None
                or metrics.accuracy is not None
            )
            if complete and metrics.round not in self.shown:
                self.shown.add(metrics.round)
                err.print(_round_line(metrics, self._of()))


def _follow(flower: Flower, run_id: str, total_rounds: int | None, timeout: float) -> Outcome:
    """Poll the run until it finishes; stop it on timeout or Ctrl-C."""
    progress = _Progress(run_id, total_rounds)
    deadline = time.monotonic() + timeout
    stopped_by = None
    with err.status(progress):
        try:
            while True:
                info = flower.run_info(run_id)
                progress.state = info.status
                if info.finished:
                    break
                if info.status == _LOGGING_STATE:
                    progress.announce(parse_round_metrics(flower.run_log(run_id)), final=False)
                if time.monotonic() >= deadline:
                    stopped_by = "timeout"
                    err.print(f"[yellow]Run {run_id} passed --timeout ({timeout:g} s)[/]")
                    break
                time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            stopped_by = "interrupt"
            err.print("[yellow]Interrupted[/]")
        if stopped_by is not None:
            progress.state = "stopping"
            info = _stop(flower, run_id)
        # The final status and log, read after the run has ended.
        rounds = parse_round_metrics(flower.run_log(run_id))
    progress.announce(rounds, final=True)
    return Outcome(info, rounds, stopped_by)


def _stop(flower: Flower, run_id: str) -> RunInfo:
    """Stop the run and wait (bounded) until the SuperLink reports it finished."""
    err.print(f"Stopping run {run_id}")
    try:
        flower.stop_run(run_id)
    except FledgeError as exc:
        # Most often the run finished in the meantime; its status tells.
        err.print(f"[yellow]warning:[/] {escape(str(exc))}")
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while True:
        info = flower.run_info(run_id)
        if info.finished or time.monotonic() >= deadline:
            return info
        time.sleep(POLL_SECONDS)


def _exit_code(outcome: Outcome) -> int:
    if outcome.info.completed:
        return 0
    if outcome.stopped_by == "timeout":
        return EXIT_TIMEOUT
    if outcome.stopped_by == "interrupt":
        return EXIT_INTERRUPTED
    return EXIT_FAILED


# --- output -----------------------------------------------------------------


def _summary_json(outcome: Outcome) -> dict[str, Any]:
    info = outcome.info
    return {
        "run_id": info.run_id,
        "status": info.status,
        "status_details": info.status_details,
        "app": info.app,
        "rounds": [metrics.to_json() for metrics in outcome.rounds],
        "elapsed_seconds": info.elapsed_seconds,
        "network_bytes": info.network_bytes,
    }


def _print_summary(outcome: Outcome) -> None:
    info = outcome.info
    if outcome.rounds:
        table = Table(title="Rounds", title_justify="left")
        for column in ("round", "nodes", "train loss", "loss", "accuracy"):
            table.add_column(column, justify="right")
        for m in outcome.rounds:
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
    summary = Table.grid(padding=(0, 2))
    summary.add_row("run", info.run_id)
    summary.add_row("status", f"[{colour}]{escape(info.status)}[/]")
    summary.add_row("details", escape(info.status_details or "-"))
    summary.add_row("app", escape(info.app))
    summary.add_row("duration", _duration(info.elapsed_seconds))
    summary.add_row(
        "traffic",
        f"{_bytes(info.inbound_bytes)} in, {_bytes(info.outbound_bytes)} out",
    )
    err.print(summary)


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
    _, flower = _connect(inventory_path)
    runs = flower.list_runs()
    if output is Format.json:
        print_json({"runs": [run.to_json() for run in runs]})
        return
    if not runs:
        err.print("No runs on the SuperLink yet. Start one: fledge round start")
        return
    table = Table()
    # IDs and states are what people copy and compare: never cut them short.
    for column in ("run", "app", "status", "duration", "submitted"):
        table.add_column(column, no_wrap=column in ("run", "status"))
    for run in runs:
        table.add_row(
            run.run_id,
            escape(run.app),
            escape(run.status),
            _duration(run.elapsed_seconds),
            run.pending_at or "-",
        )
    err.print(table)


@app.command()
@handle_errors
def stop(
    run_id: Annotated[int, typer.Argument(help="The run to stop (see `fledge round list`).")],
    inventory_path: InventoryOption,
) -> None:
    """Stop a run on the fleet's SuperLink."""
    _, flower = _connect(inventory_path)
    flower.stop_run(str(run_id))
    err.print(f"Stopped run {run_id}")


@app.command()
@handle_errors
def nodes(inventory_path: InventoryOption, output: FormatOption = Format.text) -> None:
    """List the SuperNodes connected to the fleet's SuperLink."""
    fleet, flower = _connect(inventory_path)
    known = flower.list_nodes()
    online = sum(1 for node in known if node.online)
    if output is Format.json:
        print_json(
            {
                "devices": len(fleet.supernodes),
                "online": online,
                "nodes": [node.to_json() for node in known],
            }
        )
        return
    table = Table()
    for column in ("node id", "status", "online since", "offline since"):
        table.add_column(column, no_wrap=column == "node id")
    for node in known:
        colour = "green" if node.online else "yellow"
        table.add_row(
            node.node_id,
            f"[{colour}]{escape(node.status)}[/]",
            node.online_at or "-",
            node.offline_at or "-",
        )
    err.print(table)
    err.print(f"{online} of {len(fleet.supernodes)} devices in the inventory are online")
    if online < len(fleet.supernodes):
        err.print(f"To find out why, {_DEVICE_CHECK}.")
