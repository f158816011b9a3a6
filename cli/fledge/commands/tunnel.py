"""`fledge tunnel`: the SuperLink's Control API on this machine, for the plain flwr CLI."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from fledge.commands.fleet import load as load_fleet
from fledge.console import Format, FormatOption, InventoryOption, err, handle_errors, print_json
from fledge.flower.superlink import CONFIG_FILE, CONNECTION, FLWR_HOME_NAME, SuperLink
from fledge.fsutil import open_state_dir, private_dir
from fledge.lazy import lazy

if TYPE_CHECKING:
    from fledge import control
else:
    control = lazy("fledge.control")


@handle_errors
def tunnel(
    inventory_path: InventoryOption,
    port: Annotated[
        int,
        typer.Option(
            "--port", min=0, max=65535, help="The port on this machine's loopback (0: a free one)."
        ),
    ] = 0,
    output: FormatOption = Format.text,
) -> None:
    """Open the SuperLink's Control API on this machine, over SSH.

    It answers on this machine's loopback, through SSH to the coordinator, until
    Ctrl-C; the command prints how to use it with the flwr CLI."""
    fleet = load_fleet(inventory_path)
    home = private_dir(open_state_dir(fleet.state_dir) / FLWR_HOME_NAME)
    with control.channel(fleet, port) as address:
        SuperLink.for_inventory(fleet, address, home)
        if output is Format.json:
            document = {"address": address, "flwr_home": str(home), "connection": CONNECTION}
            print_json(document, one_line=True)
        err.print(
            f"The SuperLink's Control API answers at {address} while this runs (Ctrl-C "
            f"closes it). In another shell:\n"
            f"  export FLWR_HOME={escape(str(home))}\n"
            f"  flwr ls {CONNECTION}",
            soft_wrap=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            err.print("Closed the tunnel.")
        finally:
            (home / CONFIG_FILE).unlink(missing_ok=True)
