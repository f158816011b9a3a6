"""The lab's containers: one coordinator and N devices on a private bridge.

Everything the lab creates carries the label ``io.fledge.lab=<name>``, so
``status`` and ``down`` find it again from the engine alone; the network also
records the directory that holds the lab's files.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from fledge.ansible_vars import role_defaults
from fledge.errors import FledgeError
from fledge.fsutil import private_dir
from fledge.lab import files, image, node
from fledge.lab.engine import native_arch
from fledge.lab.report import SILENT, Reporter
from fledge.lazy import lazy

if TYPE_CHECKING:
    import docker
    import docker.types
    from docker.models.containers import Container
    from docker.models.networks import Network

    from fledge import ssh
else:
    docker = lazy("docker")
    ssh = lazy("fledge.ssh")

DEFAULT_NAME = "fledge-lab"
DEFAULT_DIR = Path("fledge-lab")
LAB_LABEL = "io.fledge.lab"
HOST_LABEL = "io.fledge.host"
DIR_LABEL = "io.fledge.lab.dir"
COORDINATOR = "coordinator"
DEVICE_PREFIX = "pi-"
SSH = "22/tcp"
# Emulated devices boot several times slower.
BOOT_TIMEOUT = 120.0
# Another process may take a free port between our probe and Docker binding it.
PORT_ATTEMPTS = 5
EMULATED_BOOT_TIMEOUT = 600.0
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,47}$")
_DEVICE = re.compile(rf"^{DEVICE_PREFIX}(\d+)$")


@dataclass(frozen=True)
class LabHost:
    """One lab host as the engine reports it."""

    host: str
    container: str
    state: str
    arch: str | None
    image: str
    ssh_port: int | None
    superlink_port: int | None

    @property
    def role(self) -> str:
        return COORDINATOR if self.host == COORDINATOR else "device"

    @classmethod
    def of(cls, container: Container) -> LabHost:
        return cls(
            host=container.labels[HOST_LABEL],
            container=str(container.name),
            state=container.status,
            arch=container.labels.get(image.ARCH_LABEL),
            image=container.attrs["Config"]["Image"],
            ssh_port=_published(container, SSH),
            superlink_port=_published(container, _superlink()),
        )


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise FledgeError(
            f"'{name}' cannot name a lab",
            field="--name",
            fix="use up to 48 letters, digits, '_', '.' and '-', starting with a letter or digit",
        )


def device_names(nodes: int) -> list[str]:
    return [f"{DEVICE_PREFIX}{i}" for i in range(1, nodes + 1)]


def containers(client: docker.DockerClient, lab: str) -> dict[str, Container]:
    """The lab's containers by host name, coordinator first, then pi-1, pi-2, ..."""
    found = client.containers.list(all=True, filters={"label": f"{LAB_LABEL}={lab}"})
    return {
        c.labels[HOST_LABEL]: c for c in sorted(found, key=lambda c: _order(c.labels[HOST_LABEL]))
    }


def hosts(client: docker.DockerClient, lab: str) -> list[LabHost]:
    return [LabHost.of(c) for c in containers(client, lab).values()]


def network(client: docker.DockerClient, lab: str) -> Network | None:
    found = [
        n for n in client.networks.list(filters={"label": f"{LAB_LABEL}={lab}"}) if n.name == lab
    ]
    return found[0] if found else None


def lab_dir(client: docker.DockerClient, lab: str, directory: Path | None) -> Path:
    """The lab's directory: as given, else as recorded at creation, else the default."""
    net = network(client, lab)
    return (directory or (_recorded_dir(net) if net else DEFAULT_DIR)).resolve()


def up(
    client: docker.DockerClient,
    lab: str,
    nodes: int,
    directory: Path | None = None,
    arch: str | None = None,
    mirror: str = image.DEFAULT_MIRROR,
    base_image: str | None = None,
    labels: Mapping[str, str] | None = None,
    report: Reporter = SILENT,
) -> tuple[list[LabHost], Path]:
    """Create or repair the lab; return its hosts and the inventory's path.

    ``labels`` go on everything the lab creates, besides fledge's own (a test
    suite marks its labs so that it can find and remove them later).
    """
    check_name(lab)
    labels = check_labels(labels or {})
    if nodes < 1:
        raise FledgeError(
            "a lab needs at least one device", field="--nodes", fix="pass --nodes 1 or more"
        )
    native = native_arch(client)
    arch = arch or native
    if arch not in image.ARCHES:
        raise FledgeError(
            f"unknown architecture '{arch}'",
            field="--arch",
            fix=f"use one of {', '.join(image.ARCHES)}",
        )
    if arch != native:
        image.require_emulation(arch)
    directory = private_dir(_ensure_network(client, lab, directory, labels), field="--dir")
    wanted = {COORDINATOR: native, **{name: arch for name in device_names(nodes)}}
    existing = containers(client, lab)
    _check_reused(existing, wanted, base_image, report)
    _remove_surplus(existing, wanted, report)

    for container in existing.values():
        if container.status != "running":
            container.start()
            report.note(f"restarted {container.name}")
    missing = [host for host in wanted if host not in existing]
    images = {
        a: image.ensure_image(client, a, mirror, base_image, report)
        for a in {wanted[h] for h in missing}
    }
    for host in missing:
        existing[host] = _create(client, lab, host, images[wanted[host]], labels)
        report.note(f"started {lab}-{host}")
    running = {host: existing[host] for host in wanted}
    node.wait_booted(running, EMULATED_BOOT_TIMEOUT if arch != native else BOOT_TIMEOUT, report)

    emulated = {host for host, a in wanted.items() if a != native}
    inventory_path = _grant_access(lab, directory, running, emulated, report)
    return [LabHost.of(c) for c in running.values()], inventory_path


def down(client: docker.DockerClient, lab: str, directory: Path | None = None) -> list[str]:
    """Remove the lab's containers, volumes, network and files; say what went."""
    directory = lab_dir(client, lab, directory)
    owner = files.lab_name(directory)
    if owner is not None and owner != lab:
        raise FledgeError(
            f"{directory} holds the files of the lab '{owner}', not of '{lab}'",
            field="--dir",
            fix=f"fledge lab down --name {owner} --dir {directory}",
        )
    removed = []
    for container in containers(client, lab).values():
        container.remove(force=True, v=True)
        removed.append(f"container {container.name}")
    for volume in client.volumes.list(filters={"label": f"{LAB_LABEL}={lab}"}):
        volume.remove(force=True)
        removed.append(f"volume {volume.short_id}")
    net = network(client, lab)
    if net is not None:
        net.remove()
        removed.append(f"network {net.name}")
    removed += [str(path) for path in files.remove(directory)]
    return removed


def labelled(client: docker.DockerClient, label: str) -> list[str]:
    """The labs that carry ``label`` (``KEY`` or ``KEY=VALUE``): their containers or network do."""
    filters: dict[str, Any] = {"label": [LAB_LABEL, label]}  # Docker requires every one
    names = {c.labels[LAB_LABEL] for c in client.containers.list(all=True, filters=filters)}
    names |= {n.attrs["Labels"][LAB_LABEL] for n in client.networks.list(filters=filters)}
    return sorted(names)


def check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Labels a user may add: not fledge's own, which say what a lab is."""
    reserved = [key for key in labels if key.startswith("io.fledge.lab") or key == HOST_LABEL]
    if reserved:
        raise FledgeError(
            f"the label {reserved[0]} is fledge's own",
            field="--label",
            fix="choose another key (io.fledge.lab* and io.fledge.host are reserved)",
        )
    return dict(labels)


def _superlink() -> str:
    """The coordinator's SuperLink port as the fleet's defaults declare it (lab
    inventories keep the default): the proxy's, published on the controller's loopback, where
    tests and people can see what the network sees of the coordinator."""
    return f"{role_defaults('common')['superlink_port']}/tcp"


def _order(host: str) -> tuple[int, int]:
    device = _DEVICE.match(host)
    return (1, int(device.group(1))) if device else (0, 0)


def _published(container: Container, port: str) -> int | None:
    bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(port)
    return int(bindings[0]["HostPort"]) if bindings else None


def _required_port(container: Container, port: str, host: str) -> int:
    published = _published(container, port)
    if published is None:
        raise FledgeError(
            f"the container {container.name} publishes no host port for {port}",
            host=host,
            fix="`fledge lab down` then `fledge lab up` recreates it with its ports",
        )
    return published


def _recorded_dir(net: Network) -> Path:
    return Path(net.attrs["Labels"][DIR_LABEL])


def _ensure_network(
    client: docker.DockerClient, lab: str, directory: Path | None, labels: Mapping[str, str]
) -> Path:
    """Create the lab's bridge (recording its directory) or check that it matches."""
    net = network(client, lab)
    if net is None:
        directory = (directory or DEFAULT_DIR).resolve()
        client.networks.create(
            lab, driver="bridge", labels={**labels, LAB_LABEL: lab, DIR_LABEL: str(directory)}
        )
        return directory
    recorded = _recorded_dir(net)
    if directory is not None and directory.resolve() != recorded:
        raise FledgeError(
            f"the lab '{lab}' keeps its files in {recorded}, not {directory.resolve()}",
            field="--dir",
            fix=f"leave out --dir, or `fledge lab down --name {lab}` first",
        )
    return recorded


def _remove_surplus(
    existing: dict[str, Container], wanted: dict[str, str], report: Reporter
) -> None:
    for host in [h for h in existing if h not in wanted]:
        container = existing.pop(host)
        container.remove(force=True, v=True)
        report.note(f"removed {container.name}: the lab now has {len(wanted) - 1} device(s)")


def _check_reused(
    existing: dict[str, Container],
    wanted: dict[str, str],
    base_image: str | None,
    report: Reporter,
) -> None:
    """Refuse to mix architectures; point out hosts on an outdated image."""
    for host, container in existing.items():
        if host not in wanted:
            continue  # about to go
        built_for = container.labels.get(image.ARCH_LABEL)
        if built_for != wanted[host]:
            raise FledgeError(
                f"{host} runs {built_for}, not {wanted[host]}",
                host=host,
                field="--arch",
                fix=f"pass --arch {built_for}, or `fledge lab down` first to change architecture",
            )
        if container.labels.get(image.RECIPE_LABEL) != image.recipe_hash(wanted[host], base_image):
            report.note(
                f"note: {host} runs an image from another recipe; "
                "`fledge lab down` then `fledge lab up` recreates it"
            )


def _free_port() -> int:
    """A loopback port that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _create(
    client: docker.DockerClient, lab: str, host: str, tag: str, labels: Mapping[str, str]
) -> Container:
    """Start one lab host, retrying when another process took its chosen ports first."""
    for attempt in range(PORT_ATTEMPTS):
        try:
            return _run(client, lab, host, tag, labels)
        except docker.errors.APIError as exc:
            if "port is already allocated" not in str(exc) or attempt == PORT_ATTEMPTS - 1:
                raise
            # Docker created the container before it failed to start it.
            with contextlib.suppress(docker.errors.NotFound):
                client.containers.get(f"{lab}-{host}").remove(force=True, v=True)
    raise AssertionError("unreachable")


def _run(
    client: docker.DockerClient, lab: str, host: str, tag: str, extra: Mapping[str, str]
) -> Container:
    labels = {**extra, LAB_LABEL: lab, HOST_LABEL: host}
    # Fixed host ports, not Docker's ephemeral ones: those change when the
    # container restarts, and a lab host must survive a reboot like a Pi.
    ports = {SSH: ("127.0.0.1", _free_port())}
    if host == COORDINATOR:
        ports[_superlink()] = ("127.0.0.1", _free_port())
    try:
        return client.containers.run(
            tag,
            detach=True,
            name=f"{lab}-{host}",
            hostname=host,
            labels=labels,
            network=lab,
            networking_config={lab: client.api.create_endpoint_config(aliases=[host])},
            ports=ports,
            # The settings that boot systemd here (docs/lab.md): --privileged
            # fails without CAP_SYS_RESOURCE; SYS_TIME goes so that no lab host
            # can set the machine's clock.
            cap_add=["ALL"],
            cap_drop=["SYS_RESOURCE", "SYS_TIME"],
            security_opt=["seccomp=unconfined", "apparmor=unconfined"],
            cgroupns="host",
            volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
            # /tmp allows exec as on Raspberry Pi OS (there it is on the root file system).
            tmpfs={"/run": "", "/run/lock": "", "/tmp": "exec"},
            # Docker inside a device then gets overlay2 (it cannot stack it on overlay).
            mounts=[docker.types.Mount("/var/lib/docker", None, type="volume", labels=labels)],
            # Docker's types list "always" and "on-failure" only; the engine
            # also takes "unless-stopped": a lab someone stopped stays stopped.
            restart_policy=cast(Any, {"Name": "unless-stopped"}),
        )
    except docker.errors.APIError as exc:
        if exc.status_code == 409:
            raise FledgeError(
                f"a container named {lab}-{host} exists but is not part of the lab '{lab}'",
                fix=f"remove it (`docker rm -f {lab}-{host}`) or choose another --name",
            ) from None
        raise


def _grant_access(
    lab: str,
    directory: Path,
    running: dict[str, Container],
    emulated: set[str],
    report: Reporter,
) -> Path:
    """Install the login key, record host keys, write the inventory, prove SSH works."""
    public_key = files.login_key(directory, comment=f"fledge-lab-{lab}")
    endpoints = []
    for host, container in running.items():
        node.check_units(container, host, ["ssh.service"])
        node.install_login_key(container, host, public_key)
        container.reload()
        endpoints.append(
            files.Endpoint(
                host,
                _required_port(container, SSH, host),
                node.host_keys(container, host),
                emulated=host in emulated,
            )
        )
    coordinator, *devices = endpoints
    path = files.write(lab, directory, coordinator, devices, fleet_host=COORDINATOR)
    with report.step("checking SSH logins (host keys checked, sudo -n true)") as waiting:
        for endpoint in endpoints:
            waiting.update(endpoint.host)
            _check_ssh(directory, endpoint)
    return path


def _check_ssh(directory: Path, endpoint: files.Endpoint) -> None:
    client = ssh.connect(
        files.LAB_HOST,
        endpoint.ssh_port,
        "pi",
        directory / files.KEY_NAME,
        directory / files.KNOWN_HOSTS,
        wait=30,
    )
    with client:
        status, _, stderr = ssh.run(client, "sudo -n true", timeout=30)
    if status != 0:
        raise FledgeError(
            f"pi cannot use sudo without a password: {stderr.strip()}",
            host=endpoint.host,
            fix="check /etc/sudoers.d/010_pi-nopasswd in the lab image",
        )
