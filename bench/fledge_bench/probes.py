"""What the suite reads on a lab host, as commands to run there and parsers of what they print.

The commands run as root through ``docker exec`` (the suite's own lab
containers, see ``lab.Fleet.exec``); the parsers are plain functions of text,
tested on samples.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from fledge_bench.model import MIB

# apt's downloads: the packages it fetched, and the package lists.
APT_ARCHIVES = "/var/cache/apt/archives/"
APT_LISTS = "/var/lib/apt/lists/"
APT_FILES = [
    "sh",
    "-c",
    f"find {APT_ARCHIVES} {APT_LISTS} -type f -printf '%s %p\\n' 2>/dev/null; true",
]
# Bytes received per network interface.
RX_BYTES = [
    "sh",
    "-c",
    'for i in /sys/class/net/*; do echo "${i##*/} $(cat "$i/statistics/rx_bytes")"; done',
]
LAB_INTERFACE = "eth0"  # a lab host's one interface on the lab's bridge
MOUNTS = ["cat", "/proc/self/mounts"]
# The processes of systemd units (the directories of their cgroups, given as
# arguments after a container name, "" for none) and of a Docker container,
# each with its /proc/PID/status, after a line "== PID".
PROCESSES = [
    "sh",
    "-c",
    'c="$1"; shift; '
    '{ for d in "$@"; do [ -d "$d" ] && find "$d" -name cgroup.procs -exec cat {} +; done; '
    '[ -n "$c" ] && docker top "$c" -eo pid | tail -n +2; } 2>/dev/null '
    '| sort -un | while read -r p; do s=$(cat "/proc/$p/status" 2>/dev/null) '
    '&& printf "== %s\\n%s\\n" "$p" "$s"; done; true',
    "sh",
]


def control_groups_command(units: Iterable[str]) -> list[str]:
    return ["systemctl", "show", "--property=ControlGroup", *units]


def processes_command(directories: Iterable[str], container: str | None = None) -> list[str]:
    return [*PROCESSES, container or "", *directories]


# apt


@dataclass(frozen=True)
class AptBytes:
    archives: int  # .deb files apt downloaded
    lists: int  # package lists, as stored (unpacked: the download was compressed)

    @property
    def total(self) -> int:
        return self.archives + self.lists


def parse_sizes(text: str) -> dict[str, int]:
    """``SIZE PATH`` lines (find -printf '%s %p\\n') as {path: size}."""
    sizes = {}
    for line in text.splitlines():
        size, _, path = line.strip().partition(" ")
        if path and size.isdigit():
            sizes[path] = int(size)
    return sizes


def apt_fetched(before: Mapping[str, int], after: Mapping[str, int]) -> AptBytes:
    """What apt added between two listings of its files: new or changed files only (the
    lab's image keeps the packages debootstrap fetched when it was built)."""
    new = {path: size for path, size in after.items() if before.get(path) != size}
    archives = sum(
        size
        for path, size in new.items()
        if path.startswith(APT_ARCHIVES) and path.endswith(".deb")
    )
    lists = sum(
        size
        for path, size in new.items()
        if path.startswith(APT_LISTS) and PurePosixPath(path).name != "lock"
    )
    return AptBytes(archives, lists)


def parse_rx(text: str) -> dict[str, int]:
    """``INTERFACE BYTES`` lines as {interface: bytes received}."""
    received = {}
    for line in text.splitlines():
        name, _, count = line.strip().partition(" ")
        if count.strip().isdigit():
            received[name] = int(count)
    return received


def received(before: Mapping[str, int], after: Mapping[str, int], interface: str) -> int | None:
    if interface not in before or interface not in after:
        return None
    return after[interface] - before[interface]


# Memory of systemd units


def parse_control_groups(text: str) -> list[str]:
    """The cgroups in ``systemctl show --property=ControlGroup UNIT...``, in order; a unit
    that is not running has none (an empty value) and is left out."""
    groups = []
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key == "ControlGroup" and value:
            groups.append(value)
    return groups


def cgroup_dirs(control_group: str, mounts: str) -> list[str]:
    """The directories that list the processes of ``control_group`` (a path from the root
    of the hierarchy, as systemd reports it), in every hierarchy that tracks them.

    cgroup v2 (pure, at /sys/fs/cgroup, or hybrid, at /sys/fs/cgroup/unified) and
    cgroup v1's own systemd hierarchy (``name=systemd``) hold every unit's processes;
    v1's memory hierarchy too when systemd accounts memory. Reading all and dropping
    duplicates works on each kind of host.
    """
    roots = []
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        mountpoint, fstype, options = fields[1], fields[2], fields[3].split(",")
        if fstype == "cgroup2" or (
            fstype == "cgroup" and ("name=systemd" in options or "memory" in options)
        ):
            roots.append(mountpoint.rstrip("/"))
    return [root + control_group for root in roots]


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    name: str
    rss_kib: int


def parse_vmrss(status: str) -> int | None:
    """VmRSS from a /proc/PID/status, in KiB (kernel threads have none)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def parse_processes(text: str) -> list[ProcessMemory]:
    """The output of :data:`PROCESSES`: each process with its name and resident memory."""
    processes = []
    for block in ("\n" + text).split("\n== ")[1:]:
        head, _, status = block.partition("\n")
        if not head.strip().isdigit():
            continue
        name = next(
            (
                line.split(":", 1)[1].strip()
                for line in status.splitlines()
                if line.startswith("Name:")
            ),
            "?",
        )
        processes.append(ProcessMemory(int(head), name, parse_vmrss(status) or 0))
    return processes


def total_mib(processes: Iterable[ProcessMemory]) -> float:
    return sum(p.rss_kib for p in processes) * 1024 / MIB


def describe(processes: Iterable[ProcessMemory]) -> str:
    """ "flower-supernod 134, flower-superexe 124" (MiB each), largest first."""
    ordered = sorted(processes, key=lambda p: -p.rss_kib)
    return ", ".join(f"{p.name} {p.rss_kib / 1024:.0f}" for p in ordered) or "no processes"


# Disk


def du_command(path: str) -> list[str]:
    return ["du", "-skx", path]


def parse_du(text: str) -> int:
    """``du -sk`` output: KiB."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("du printed nothing")
    return int(lines[-1].split()[0])
