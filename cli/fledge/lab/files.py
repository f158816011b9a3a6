"""The files a lab leaves for the controller: login key, known_hosts, inventory."""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fledge import inventory
from fledge.fsutil import PRIVATE_FILE, atomic_write
from fledge.inventory import HostSpec
from fledge.lazy import lazy

if TYPE_CHECKING:
    import yaml
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
else:
    yaml = lazy("yaml")
    serialization = lazy("cryptography.hazmat.primitives.serialization")
    ed25519 = lazy("cryptography.hazmat.primitives.asymmetric.ed25519")

KEY_NAME = "id_ed25519"
KNOWN_HOSTS = "known_hosts"
INVENTORY = "inventory.yml"
# Where provisioning keeps the lab fleet's state (its CA among it): in the
# lab's directory, so that `fledge lab down` removes it with the rest.
STATE_DIR = ".fledge"
LAB_HOST = "127.0.0.1"


@dataclass(frozen=True)
class Endpoint:
    """Where the controller reaches one lab host: its published SSH port and keys."""

    host: str
    ssh_port: int
    host_keys: Sequence[str]
    # Runs under QEMU (an arm64 device on an x86 machine).
    emulated: bool = False


def login_key(directory: Path, comment: str) -> str:
    """The lab's login public key; the key pair is made on first use and kept."""
    private, public = directory / KEY_NAME, directory / f"{KEY_NAME}.pub"
    if private.exists():
        key = serialization.load_ssh_private_key(private.read_bytes(), password=None)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        atomic_write(
            private,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.OpenSSH,
                serialization.NoEncryption(),
            ),
            PRIVATE_FILE,
        )
    text = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
        + f" {comment}"
    )
    atomic_write(public, text + "\n")
    return text


def known_host(address: str, port: int) -> str:
    """The name OpenSSH and paramiko look a host up by."""
    return address if port == 22 else f"[{address}]:{port}"


def known_hosts_text(endpoints: Iterable[Endpoint], address: str = LAB_HOST) -> str:
    return "".join(
        f"{known_host(address, e.ssh_port)} {key}\n" for e in endpoints for key in e.host_keys
    )


def inventory_text(
    lab: str,
    directory: Path,
    coordinator: Endpoint,
    devices: Iterable[Endpoint],
    fleet_host: str,
) -> str:
    """The lab's inventory: hosts on loopback ports, keys checked against known_hosts."""
    directory = directory.resolve()
    # Ansible splits these options with shlex: quoted, a path may hold spaces.
    known_hosts = shlex.quote(str(directory / KNOWN_HOSTS))
    all_vars = {
        "ansible_user": "pi",
        "ansible_ssh_private_key_file": str(directory / KEY_NAME),
        "ansible_ssh_common_args": (
            f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=yes"
        ),
        "ansible_python_interpreter": "/usr/bin/python3",
        "fledge_lab": lab,
        "fledge_state_dir": str(directory / STATE_DIR),
        # The lab shows everything: node exporter on every host, Prometheus on
        # the coordinator (loopback there: `fledge lab` users reach it by SSH).
        "fledge_monitoring": True,
    }
    superlink = HostSpec(
        coordinator.host,
        LAB_HOST,
        port=coordinator.ssh_port,
        vars={
            "superlink_fleet_host": fleet_host,
            "monitoring_scrape_address": coordinator.host,
        },
    )
    # Prometheus on the coordinator reaches each host by its name on the lab
    # network; the controller reaches them all as 127.0.0.1.
    supernodes = [
        HostSpec(d.host, LAB_HOST, port=d.ssh_port, vars=_device_vars(d)) for d in devices
    ]
    header = (
        f"# Written by `fledge lab up` for the lab '{lab}' and rewritten on every\n"
        f"# `fledge lab up`: edits here are lost. `fledge lab down --name {lab}` removes it.\n"
    )
    return inventory.render(superlink, supernodes, all_vars, header)


def _device_vars(device: Endpoint) -> dict:
    host_vars: dict = {"monitoring_scrape_address": device.host}
    if device.emulated:
        # QEMU's user mode cannot program the kernel's packet filter, and a
        # Docker engine that cannot set up its iptables rules does not start.
        # fledge's SuperNode container uses the host's network: no NAT needed.
        host_vars["docker_daemon_options"] = {"iptables": False}
    return host_vars


def write(
    lab: str,
    directory: Path,
    coordinator: Endpoint,
    devices: Sequence[Endpoint],
    fleet_host: str,
) -> Path:
    """Write known_hosts and the inventory (validated); return the inventory's path."""
    atomic_write(directory / KNOWN_HOSTS, known_hosts_text([coordinator, *devices]))
    path = directory / INVENTORY
    inventory.write(path, inventory_text(lab, directory, coordinator, devices, fleet_host))
    return path


def lab_name(directory: Path) -> str | None:
    """The lab whose inventory lies in ``directory`` (its ``fledge_lab``), if any."""
    try:
        doc = yaml.safe_load((directory / INVENTORY).read_text(encoding="utf-8"))
        name = doc["all"]["vars"]["fledge_lab"]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) else None


def remove(directory: Path) -> list[Path]:
    """Remove what the lab and provisioning wrote into ``directory``, then it if empty."""
    removed = []
    for name in (INVENTORY, KNOWN_HOSTS, KEY_NAME, f"{KEY_NAME}.pub"):
        path = directory / name
        if path.exists():
            path.unlink()
            removed.append(path)
    state = directory / STATE_DIR
    if state.is_dir():
        shutil.rmtree(state)
        removed.append(state)
    if directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        removed.append(directory)
    return removed
