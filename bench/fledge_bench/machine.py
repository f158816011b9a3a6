"""What the figures were measured on: CPU, cores, memory, kernel, Docker, the versions."""

from __future__ import annotations

import os
import platform
import shutil
from importlib import metadata
from pathlib import Path

from fledge_bench.measure import BenchError, run

DOCKER_TIMEOUT = 30.0
START_DOCKER = (
    "start one: scripts/setup installs and starts a Docker engine (or `systemctl start docker`)"
)


def cpu_model(cpuinfo: str) -> str:
    """The CPU's name from /proc/cpuinfo (x86: "model name"; ARM boards: "Model", "Hardware")."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and value.strip():
            fields.setdefault(key.strip().lower(), value.strip())
    for key in ("model name", "model", "hardware", "cpu model"):
        if key in fields:
            return fields[key]
    return platform.processor() or platform.machine() or "unknown"


def memory_bytes(meminfo: str) -> int | None:
    """MemTotal from /proc/meminfo, in bytes."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            number, _, unit = line.split(":", 1)[1].strip().partition(" ")
            return int(number) * (1024 if unit.strip().lower() == "kb" else 1)
    return None


def os_name(os_release: str) -> str:
    for line in os_release.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.system()


def docker_version() -> str:
    """The Docker engine's version; BenchError saying how to start one when none answers."""
    if shutil.which("docker") is None:
        raise BenchError(f"the docker command is not installed: {START_DOCKER}")
    result = run(["docker", "version", "--format", "{{.Server.Version}}"], timeout=DOCKER_TIMEOUT)
    version = result.stdout.strip()
    if not result.ok or not version:
        raise BenchError(f"cannot reach a Docker engine ({result.tail(3)}): {START_DOCKER}")
    return version


def describe() -> dict[str, str]:
    """The machine, for people: every value a string."""
    memory = memory_bytes(_read("/proc/meminfo"))
    try:
        docker = docker_version()
    except BenchError:
        docker = "not reachable"
    return {
        "cpu": cpu_model(_read("/proc/cpuinfo")),
        "cores": str(os.cpu_count() or "unknown"),
        "memory": f"{memory / 2**30:.1f} GiB" if memory else "unknown",
        "os": os_name(_read("/etc/os-release")),
        "kernel": platform.release(),
        "docker": docker,
        "python": platform.python_version(),
        "ansible-core": _version("ansible-core"),
        "flwr": _version("flwr"),
        "fledge": _version("fledge-edge"),
    }


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""
