"""The `fledge` command: one Typer sub-app or command per module of fledge.commands.

A command's module is imported only when that command runs (or shows its own
help): `fledge --help` lists them from :data:`COMMANDS` without importing any,
which saves about 40% of its start-up (docs/benchmarks.md). A unit test keeps
each summary equal to the first line of the command's own help.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any, NamedTuple

import click
import typer
from typer.core import TyperGroup

from fledge import __version__


class Command(NamedTuple):
    attribute: str  # in fledge.commands.<name>: a Typer app (a group) or a function
    summary: str  # the line `fledge --help` shows


COMMANDS = {
    "provision": Command(
        "provision", "Install and configure Flower on every host of the fleet, with TLS."
    ),
    "tunnel": Command("tunnel", "Open the SuperLink's Control API on this machine, over SSH."),
    "logs": Command(
        "logs", "The journals of the SuperNodes (devices) and of the SuperLink (coordinator)."
    ),
    "lab": Command(
        "app", "A local virtual fleet: Docker containers that behave like Raspberry Pi OS hosts."
    ),
    "inventory": Command("app", "Write and check fleet inventories."),
    "certs": Command("app", "The fleet's certificate authority and TLS certificates."),
    "round": Command("app", "Start, follow and stop training runs on the fleet's SuperLink."),
    "node": Command("app", "The fleet's devices as nodes of the SuperLink."),
    "fleet": Command("app", "The fleet as a whole: every host at a glance."),
}


def load(name: str) -> click.Command:
    """The click command of ``fledge NAME``, its module imported."""
    command = COMMANDS[name]
    target: Any = getattr(importlib.import_module(f"fledge.commands.{name}"), command.attribute)
    if isinstance(target, typer.Typer):
        loaded: click.Command = typer.main.get_group(target)
    else:  # a function: a command of its own (completion is the top level's)
        single = typer.Typer(add_completion=False)
        single.command(name=name)(target)
        loaded = typer.main.get_command(single)
    loaded.name = name
    return loaded


class _Commands(TyperGroup):
    """The top-level group: commands listed from COMMANDS, loaded when one runs."""

    _listing = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if self._listing:  # for the help's list: its name and summary are all it needs
            return click.Command(cmd_name, short_help=COMMANDS[cmd_name].summary)
        return load(cmd_name)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="fledge",
    cls=_Commands,
    help="Federated learning on fleets of edge Linux devices (Raspberry Pis first).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fledge {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Provision Flower on a fleet over SSH and run federated training on it."""
