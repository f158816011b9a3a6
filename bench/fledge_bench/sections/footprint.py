"""What fledge takes on a device: memory idle and during training, and disk, in both runtimes.

Memory is the resident memory (VmRSS) of the processes of a systemd unit:
the unit's cgroup (``systemctl show -p ControlGroup``) lists them in
``cgroup.procs`` (cgroup v2, or v1's systemd and memory hierarchies), each
process's ``/proc/PID/status`` has its VmRSS. Read for the SuperNode
(``fledge-supernode``; in the container runtime also the processes of its
container, from ``docker top``), the Docker engine (``docker.service`` and
``containerd.service``: 0 when it is not running, as it may be
socket-activated) and the node exporter. Idle: the median of 5 readings a
second apart. During a run: the peak of readings every 0.5 s while a
3-round run goes. Disk: ``du -sx /opt/fledge``; for the container runtime
also the SuperNode image's size as Docker counts it.

pi-1 keeps the systemd runtime; pi-2 is switched to the container runtime
(``host_vars/pi-2.yml``: ``supernode_runtime: container``, the lab's own
root file system image as the base, as tests/integration/test_container_runtime.py
does it), measured, and switched back.

Ratios compare with what a Raspberry Pi with 1 GB of memory can spare for
fledge: 1024 MiB less about 200 MiB for the OS. Preflight's requirements
(collection/roles/preflight/defaults/main.yml) are printed beside the figures.
"""

from __future__ import annotations

import statistics
import threading
import time
from types import TracebackType

import yaml

from fledge.collection import collection_dir
from fledge_bench import probes
from fledge_bench.lab import PROVISION_TIMEOUT, Fleet
from fledge_bench.measure import BenchError
from fledge_bench.measure import run as run_process
from fledge_bench.model import MIB, Row, ratio
from fledge_bench.sections import report
from fledge_bench.sections.rounds import ROUNDS, fledge_round

SECTION = "footprint"
PI_MEMORY_MIB = 1024
PI_OS_MIB = 200  # an assumption: Raspberry Pi OS Lite with its services, idle
PI_SPARE_MIB = PI_MEMORY_MIB - PI_OS_MIB
SPARE = f"ratio to the ~{PI_SPARE_MIB} MiB a 1 GB Pi can spare"
SUPERNODE = "fledge-supernode"  # the unit, and in the container runtime the container
ENGINE = ("docker.service", "containerd.service")
EXPORTER = ("prometheus-node-exporter.service",)
IDLE_SAMPLES = 5
IDLE_INTERVAL = 1.0
PEAK_INTERVAL = 0.5
SAMPLE_TIMEOUT = 30.0
INSTALL_DIR = "/opt/fledge"
SYSTEMD_HOST, CONTAINER_HOST = "pi-1", "pi-2"


def preflight_requirements() -> dict[str, dict[str, int]]:
    """What preflight requires of each kind of host (disk_mb, memory_mb), as the
    collection fledge runs declares it."""
    defaults = collection_dir() / "roles" / "preflight" / "defaults" / "main.yml"
    return dict(yaml.safe_load(defaults.read_text())["preflight_requirements"])


def requirement(requirements: dict[str, dict[str, int]], runtime: str, key: str) -> str:
    value = requirements.get(runtime, {}).get(key)
    return f"preflight requires {value} MB for a {runtime} device" if value else ""


class MemoryProbe:
    """The processes of some systemd units (and a container) on one lab host."""

    def __init__(
        self, fleet: Fleet, host: str, units: tuple[str, ...], container: str | None = None
    ) -> None:
        self.fleet = fleet
        self.host = host
        self.container = container
        mounts = fleet.exec(host, probes.MOUNTS)
        groups = probes.parse_control_groups(fleet.exec(host, probes.control_groups_command(units)))
        self.dirs = [d for group in groups for d in probes.cgroup_dirs(group, mounts)]

    def sample(self) -> list[probes.ProcessMemory]:
        if not self.dirs and not self.container:
            return []  # not running
        command = probes.processes_command(self.dirs, self.container)
        return probes.parse_processes(self.fleet.exec(self.host, command, SAMPLE_TIMEOUT))

    def idle(self) -> tuple[float, list[probes.ProcessMemory]]:
        """The median of a few readings, and the reading closest to it."""
        readings = []
        for index in range(IDLE_SAMPLES):
            if index:
                time.sleep(IDLE_INTERVAL)
            readings.append(self.sample())
        totals = [probes.total_mib(r) for r in readings]
        middle = statistics.median(totals)
        closest = min(range(len(totals)), key=lambda i: abs(totals[i] - middle))
        return middle, readings[closest]


class PeakSampler:
    """Reads a probe every ``interval`` seconds in a thread of its own; keeps the peak."""

    def __init__(self, probe: MemoryProbe, interval: float = PEAK_INTERVAL) -> None:
        self.probe = probe
        self.interval = interval
        self.peak = 0.0
        self.peak_processes: list[probes.ProcessMemory] = []
        self.samples = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=SAMPLE_TIMEOUT + 60)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                processes = self.probe.sample()
            except BenchError as exc:
                self.error = str(exc)
            else:
                self.samples += 1
                total = probes.total_mib(processes)
                if total > self.peak:
                    self.peak, self.peak_processes = total, processes
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


def run(case: str, fleet: Fleet) -> list[Row]:
    if fleet.size < 2:
        raise BenchError("the footprint needs two devices (one per runtime)")
    requirements = preflight_requirements()
    rows = measure_runtime(case, fleet, SYSTEMD_HOST, "systemd", requirements)
    base = _rootfs_image()
    if base is None:
        rows.append(
            Row(SECTION, f"{case}, container runtime", "everything", None, "", None,
                "skipped: the lab's Debian root file system image (the container's base) is "
                "missing; a lab built with --base-image has none"),
        )  # fmt: skip
        return rows
    try:
        rows.append(_switch(case, fleet, "container", base))
        rows += measure_runtime(case, fleet, CONTAINER_HOST, "container", requirements)
    except BenchError as exc:  # the systemd runtime's figures stand on their own
        rows.append(Row.error(SECTION, f"{case}, container runtime ({CONTAINER_HOST})", str(exc)))
    try:
        rows.append(_switch(case, fleet, "systemd", base))
    except BenchError as exc:
        rows.append(Row.error(SECTION, f"{case}, back to systemd ({CONTAINER_HOST})", str(exc)))
    finally:
        fleet.host_vars(CONTAINER_HOST, None)
    return rows


def measure_runtime(
    case: str, fleet: Fleet, host: str, runtime: str, requirements: dict[str, dict[str, int]]
) -> list[Row]:
    """Memory idle and during a run, and disk, of one device in one runtime."""
    case = f"{case}, {runtime} runtime ({host})"
    container = SUPERNODE if runtime == "container" else None
    supernode = MemoryProbe(fleet, host, (SUPERNODE,), container)
    idle, idle_processes = supernode.idle()
    engine, engine_processes = MemoryProbe(fleet, host, ENGINE).idle()
    exporter, exporter_processes = MemoryProbe(fleet, host, EXPORTER).idle()
    engine_note = probes.describe(engine_processes)
    if not any(p.name == "dockerd" for p in engine_processes):
        engine_note += "; dockerd not running (socket-activated: it starts when first used)"
    total = idle + engine + exporter
    rows = [
        Row(SECTION, case, "SuperNode, idle", idle, "MiB", ratio(idle, PI_SPARE_MIB),
            f"{SPARE}; {probes.describe(idle_processes)} (MiB)"),
        Row(SECTION, case, "Docker engine, idle", engine, "MiB", ratio(engine, PI_SPARE_MIB),
            f"{engine_note} (MiB)"),
        Row(SECTION, case, "node exporter, idle", exporter, "MiB", ratio(exporter, PI_SPARE_MIB),
            probes.describe(exporter_processes) if exporter_processes
            else "not running (fledge_monitoring off)"),
        Row(SECTION, case, "all of fledge's services, idle", total, "MiB",
            ratio(total, PI_SPARE_MIB),
            f"{SPARE}; {requirement(requirements, runtime, 'memory_mb')} in all"),
    ]  # fmt: skip
    try:
        rows.append(peak(case, fleet, host, supernode))
    except BenchError as exc:  # the idle and disk figures stand on their own
        rows.append(Row.error(SECTION, case, str(exc)))
    disk = probes.parse_du(fleet.exec(host, probes.du_command(INSTALL_DIR))) * 1024 / MIB
    rows.append(
        Row(SECTION, case, f"disk, {INSTALL_DIR}", disk, "MiB", None,
            requirement(requirements, runtime, "disk_mb") + " free"),
    )  # fmt: skip
    if container:
        image = fleet.exec(host, ["docker", "inspect", "--format", "{{.Image}}", container]).strip()
        size = fleet.exec(host, ["docker", "image", "inspect", "--format", "{{.Size}}", image])
        rows.append(
            Row(SECTION, case, "disk, the SuperNode image", int(size.strip()) / MIB, "MiB", None,
                "as Docker counts it: its layers unpacked"),
        )  # fmt: skip
    return rows


def peak(case: str, fleet: Fleet, host: str, supernode: MemoryProbe) -> Row:
    """The SuperNode's peak memory while a run goes."""
    with PeakSampler(supernode) as sampler:
        fledge_round(fleet)
    if sampler.samples == 0:
        raise BenchError(f"no reading of {host}'s memory during the run: {sampler.error}")
    return Row(
        SECTION, case, f"SuperNode, peak during a {ROUNDS}-round run", sampler.peak, "MiB",
        ratio(sampler.peak, PI_SPARE_MIB),
        f"{SPARE}; {sampler.samples} readings every {PEAK_INTERVAL} s; at the peak: "
        f"{probes.describe(sampler.peak_processes)} (MiB)",
    )  # fmt: skip


def _switch(case: str, fleet: Fleet, runtime: str, base: str) -> Row:
    """Put pi-2 on ``runtime`` with `fledge provision --limit pi-2`; how long that took."""
    fleet.host_vars(
        CONTAINER_HOST,
        "---\n# Written by bench/run (footprint), removed afterwards.\n"
        f"supernode_runtime: {runtime}\nsupernode_container_base_image: {base}\n",
    )
    result = fleet.fledge(
        "provision", "-i", fleet.inventory, "--limit", CONTAINER_HOST, "--format", "json",
        timeout=PROVISION_TIMEOUT[fleet.kind],
    )  # fmt: skip
    doc = report(result, f"switching {CONTAINER_HOST} to the {runtime} runtime")
    return Row(
        SECTION, case, f"switch {CONTAINER_HOST} to the {runtime} runtime", result.wall, "s", None,
        f"fledge provision --limit {CONTAINER_HOST}: {doc.get('changed', '?')} changes"
        + ("; includes building the SuperNode image on the controller" if runtime == "container"
           else ""),
    )  # fmt: skip


def _rootfs_image() -> str | None:
    """The tag of the lab's Debian 12 root file system image, if the engine has it."""
    from fledge.lab.image import rootfs_tag

    arch = run_process(
        ["docker", "version", "--format", "{{.Server.Arch}}"], timeout=30
    ).stdout.strip()
    tag = rootfs_tag(arch or "amd64")
    found = run_process(["docker", "image", "inspect", "--format", "{{.Id}}", tag], timeout=30)
    return tag if found.ok else None
