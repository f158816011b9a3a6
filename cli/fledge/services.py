"""The services fledge's roles install on a fleet's hosts, and commands that ask
about them as root, the way Ansible's become runs them (``sudo -n``).

The unit names are the roles' (collection/roles/*/tasks): the superlink role
installs ``fledge-superlink`` and its proxy ``fledge-superlink-proxy`` on the
coordinator; the supernode role installs ``fledge-supernode`` on each device
in both runtimes (in the container runtime that unit runs the docker client in
the foreground, so the SuperNode's output is still that unit's journal).
"""

from __future__ import annotations

from collections.abc import Sequence

from fledge import remote
from fledge.errors import FledgeError
from fledge.inventory import SUPERLINK, Host

SUPERLINK_UNIT = "fledge-superlink.service"
SUPERLINK_PROXY_UNIT = "fledge-superlink-proxy.service"
SUPERNODE_UNIT = "fledge-supernode.service"
# The supernode role's container (its _supernode_container_name).
SUPERNODE_CONTAINER = "fledge-supernode"


def units(host: Host) -> tuple[str, ...]:
    """The units that must be active on ``host`` for the fleet to work."""
    if host.group == SUPERLINK:
        return (SUPERLINK_UNIT, SUPERLINK_PROXY_UNIT)
    return (SUPERNODE_UNIT,)


def main_unit(host: Host) -> str:
    """The unit running Flower on ``host``: the SuperLink, or the SuperNode."""
    return SUPERLINK_UNIT if host.group == SUPERLINK else SUPERNODE_UNIT


def runtime(host: Host) -> str | None:
    """How a device runs its SuperNode (``supernode_runtime``); None for the coordinator."""
    return None if host.group == SUPERLINK else str(host.vars.get("supernode_runtime", "systemd"))


class SudoPasswordRequired(FledgeError):
    """sudo on a host asked for a password: fledge never types one (it would hang)."""

    def __init__(self, host: str, what: str) -> None:
        super().__init__(
            f"sudo needs a password there, so fledge cannot {what}",
            host=host,
            fix=remote.SUDO_FIX,
        )


def run_as_root(
    shell: remote.Shell, host: Host, argv: Sequence[str], *, what: str, timeout: float
) -> tuple[int, str, str]:
    """Run ``argv`` as root through ``sudo -n``: (exit status, stdout, stderr).

    Raises SudoPasswordRequired, naming ``what`` fledge was doing, when sudo
    wants a password.
    """
    status, out, err = shell.run(remote.sudo(argv), timeout=timeout)
    if status != 0 and remote.needs_password(err):
        raise SudoPasswordRequired(host.name, what)
    return status, out, err
