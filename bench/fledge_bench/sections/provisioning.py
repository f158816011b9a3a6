"""Provisioning a fresh lab fleet with a cold controller cache.

Measured: `fledge provision -i INVENTORY --format json` on hosts as `fledge
lab up` made them, with an empty controller cache (the fleet's own
XDG_CACHE_HOME, where pip's cache lives too; the fleet's later runs keep
it). Wall time; the controller's CPU time (user + system of fledge and
every process it waited for: Ansible's workers, ssh, pip); the bytes fetched
from the package index (the size of the wheelhouse archives in the cache
after the run: pip downloaded exactly those wheels, which the archive holds
unpacked); and per host, the bytes fetched from Debian's mirror (what apt
added to its package archive and lists, compared with a listing taken
before; the lists are stored unpacked, so they count more than was
downloaded) and all bytes the host received on its network interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fledge_bench import probes
from fledge_bench.lab import PROVISION_TIMEOUT, Fleet
from fledge_bench.measure import Result
from fledge_bench.model import MB, Row, plural, ratio
from fledge_bench.sections import report

SECTION = "provisioning"
WHEELHOUSE = Path("fledge") / "wheelhouse"


@dataclass(frozen=True)
class Provisioned:
    """A fleet's first provisioning, as measured."""

    wall: float
    cpu: float
    index_bytes: int
    archives: int
    apt: dict[str, probes.AptBytes]
    received: dict[str, int | None]


def wheelhouse_bytes(cache: Path) -> tuple[int, int]:
    """The size and number of the wheelhouse archives in a controller cache
    (``$XDG_CACHE_HOME``), leaving out their checksums, locks and scratch files."""
    folder = cache / WHEELHOUSE
    archives = [
        path
        for path in (folder.iterdir() if folder.is_dir() else [])
        if path.is_file() and not path.name.startswith(".") and path.suffix != ".sha256"
    ]
    return sum(path.stat().st_size for path in archives), len(archives)


def provision(fleet: Fleet) -> Provisioned:
    """Provision ``fleet`` for the first time, measuring what it costs."""
    apt_before = {h: probes.parse_sizes(fleet.exec(h, probes.APT_FILES)) for h in fleet.hosts}
    rx_before = {h: probes.parse_rx(fleet.exec(h, probes.RX_BYTES)) for h in fleet.hosts}
    result = fleet.fledge(
        "provision", "-i", fleet.inventory, "--format", "json",
        timeout=PROVISION_TIMEOUT[fleet.kind],
    )  # fmt: skip
    report(result, f"fledge provision of {fleet.name}")
    index_bytes, archives = wheelhouse_bytes(fleet.cache)
    apt, rx = {}, {}
    for host in fleet.hosts:
        after = probes.parse_sizes(fleet.exec(host, probes.APT_FILES))
        apt[host] = probes.apt_fetched(apt_before[host], after)
        rx_after = probes.parse_rx(fleet.exec(host, probes.RX_BYTES))
        rx[host] = probes.received(rx_before[host], rx_after, probes.LAB_INTERFACE)
    return Provisioned(result.wall, result.cpu, index_bytes, archives, apt, rx)


def rows(
    case: str,
    fleet: Fleet,
    up: Result,
    measured: Provisioned,
    baseline: tuple[str, Provisioned] | None,
) -> list[Row]:
    """The section's rows for one fleet; ``baseline`` is the fleet the ratios compare with
    (the smallest native one), named."""
    base_name, base = baseline if baseline else (case, measured)
    against = f"ratio to {base_name}"
    found = [
        Row(SECTION, case, "fledge lab up (not provisioning)", up.wall, "s",
            notes="starting the containers; includes building the lab image when not cached"),
        Row(SECTION, case, "fledge provision, wall", measured.wall, "s",
            ratio(measured.wall, base.wall), against),
        Row(SECTION, case, "controller CPU (user+sys)", measured.cpu, "s",
            ratio(measured.cpu, base.cpu),
            f"{against}; {measured.cpu / measured.wall:.0%} of one core over the run"),
        Row(SECTION, case, "from the package index", measured.index_bytes / MB, "MB",
            notes=f"{plural(measured.archives, 'wheelhouse archive')} in the cold cache after "
            "the run (what pip downloaded; once per device platform, for the whole fleet)"),
    ]  # fmt: skip
    fleet_apt = 0
    for host in fleet.hosts:
        apt = measured.apt[host]
        fleet_apt += apt.total
        rx = measured.received[host]
        found.append(
            Row(SECTION, case, f"from Debian's mirror, {host}", apt.total / MB, "MB",
                notes=f".deb {apt.archives / MB:.1f} MB + package lists {apt.lists / MB:.1f} MB "
                "(lists as stored, unpacked)"
                + (f"; {rx / MB:.1f} MB received by the host in all" if rx is not None else "")),
        )  # fmt: skip
    devices = [measured.apt[h].total for h in fleet.devices]
    found.append(
        Row(SECTION, case, "from Debian's mirror, whole fleet", fleet_apt / MB, "MB",
            notes=f"per device {sum(devices) / len(devices) / MB:.1f} MB on average"),
    )  # fmt: skip
    return found
