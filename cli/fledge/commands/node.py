"""`fledge node`: the fleet's devices as the SuperLink knows them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from fledge.commands.fleet import load as load_fleet
from fledge.commands.playbooks import play
from fledge.console import Format, FormatOption, InventoryOption, err, handle_errors
from fledge.errors import FledgeError

app = typer.Typer(help="The fleet's devices as nodes of the SuperLink.", no_args_is_help=True)


@app.command()
@handle_errors
def revoke(
    hosts: Annotated[list[str], typer.Argument(metavar="HOST...", help="The devices to revoke.")],
    inventory_path: InventoryOption,
    output: FormatOption = Format.text,
) -> None:
    """Revoke devices: the SuperLink refuses their key, their SuperNode and key go.

    From now on the SuperLink refuses their key; their SuperNode stops and
    their key is deleted.

    A device that cannot be reached (a stolen one) is revoked all the same: the
    SuperLink and this controller's record come first. Provisioning then refuses
    the device until asked to enrol it again (`fledge provision --enrol HOST`).
    """
    fleet = load_fleet(inventory_path)
    devices = {h.name for h in fleet.supernodes}
    unknown = [h for h in hosts if h not in devices]
    if unknown:
        raise FledgeError(
            f"{unknown[0]} is not a device of this fleet",
            path=fleet.path,
            fix=f"name devices of the supernodes group: {', '.join(sorted(devices))}",
        )
    err.print(f"Revoking {', '.join(hosts)}")
    result = play(fleet, "revoke", "Revocation", output, extravars={"revoke_hosts": hosts})
    unreachable = sorted(host for host, recap in result.recap.items() if recap.unreachable)
    for host in unreachable:
        err.print(
            f"[yellow]{escape(host)} could not be reached:[/] the SuperLink refuses its key, "
            "but its SuperNode and key stay on it until it is reset"
        )
    err.print(
        f"[green]Revoked[/] {', '.join(hosts)}. To enrol again, with a new key: "
        f"fledge provision -i {inventory_path} --enrol HOST"
    )
