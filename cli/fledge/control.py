"""The operator's way to the SuperLink's Control API: SSH to the coordinator.

The SuperLink answers its Control API on the coordinator's loopback only;
its proxy passes the Fleet API and /health to the network, nothing else.
fledge reaches the Control API through an SSH tunnel to the coordinator,
logging in as Ansible does (the inventory's host, port, user and key) with
the host key checked against the same known_hosts, so the operator's SSH
access is the credential. A coordinator that is this machine
(``ansible_connection: local``) is reached directly.
"""

from __future__ import annotations

import contextlib
import getpass
import shlex
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fledge import ssh
from fledge.errors import FledgeError
from fledge.flower.superlink import FLWR_HOME_NAME, SuperLink
from fledge.fsutil import open_state_dir, private_dir
from fledge.inventory import Host, Inventory, ssh_options

# OpenSSH's own defaults, when the inventory names no known_hosts file.
DEFAULT_KNOWN_HOSTS = (Path("~/.ssh/known_hosts"), Path("/etc/ssh/ssh_known_hosts"))
_SSH_ARGS = ("ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_ssh_args")
# Seconds to log in before giving up (a coordinator that is down).
LOGIN_TIMEOUT = 20.0


@contextlib.contextmanager
def channel(fleet: Inventory, local_port: int = 0) -> Iterator[str]:
    """``127.0.0.1:PORT`` where the Control API answers while the block runs."""
    coordinator = fleet.superlink
    remote = ("127.0.0.1", int(coordinator.vars["superlink_local_port"]))
    if coordinator.vars.get("ansible_connection") == "local":
        yield f"{remote[0]}:{remote[1]}"
        return
    user, key_file, known_hosts = ssh_login(coordinator)
    client = ssh.connect(
        coordinator.address, coordinator.port, user, key_file, known_hosts, timeout=LOGIN_TIMEOUT
    )
    with client, ssh.forward(client, remote, local_port) as port:
        yield f"127.0.0.1:{port}"


@contextlib.contextmanager
def superlink(fleet: Inventory) -> Iterator[SuperLink]:
    """The fleet's SuperLink through :func:`channel`, with a FLWR_HOME of this
    process's own (another fledge command may hold its own channel)."""
    with channel(fleet) as address:
        homes = private_dir(open_state_dir(fleet.state_dir) / FLWR_HOME_NAME)
        with tempfile.TemporaryDirectory(dir=homes, prefix="command-") as home:
            yield SuperLink.for_inventory(fleet, address, Path(home))


def ssh_login(host: Host) -> tuple[str, Path | None, list[Path]]:
    """User, private key and known_hosts files as Ansible's ssh connection uses them."""
    user = host.user or getpass.getuser()
    key = host.vars.get("ansible_ssh_private_key_file") or host.vars.get("ansible_private_key_file")
    options = {
        name.lower(): value
        for args in _SSH_ARGS
        for name, value in ssh_options(str(host.vars.get(args) or ""))
    }
    for unsupported in ("proxyjump", "proxycommand"):
        if unsupported in options:
            raise FledgeError(
                f"fledge reaches {host.name} over SSH itself and does not follow {unsupported}",
                host=host.name,
                field="ansible_ssh_common_args",
                fix=f"make {host.name} reachable from this controller directly, or run fledge "
                "on a machine that reaches it",
            )
    listed = options.get("userknownhostsfile")
    files = [Path(f) for f in shlex.split(listed)] if listed else list(DEFAULT_KNOWN_HOSTS)
    known = [f.expanduser() for f in files if f.expanduser().is_file()]
    if not known:
        raise FledgeError(
            f"no known_hosts file to check the host key of {host.name} against",
            host=host.name,
            fix=f"add the key of {host.name} to ~/.ssh/known_hosts (or the file "
            "UserKnownHostsFile= names in ansible_ssh_common_args), read over a channel you trust",
        )
    return user, Path(str(key)).expanduser() if key else None, known
