"""The `fledge` command: one Typer sub-app per command group."""

from __future__ import annotations

from typing import Annotated

import typer

from fledge import __version__
from fledge.commands import certs, fleet, inventory, lab, logs, node, provision, round, tunnel

app = typer.Typer(
    name="fledge",
    help="Federated learning on fleets of edge Linux devices (Raspberry Pis first).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(lab.app, name="lab")
app.add_typer(inventory.app, name="inventory")
app.add_typer(certs.app, name="certs")
app.add_typer(round.app, name="round")
app.add_typer(node.app, name="node")
app.add_typer(fleet.app, name="fleet")
app.command()(provision.provision)
app.command()(tunnel.tunnel)
app.command()(logs.logs)


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
