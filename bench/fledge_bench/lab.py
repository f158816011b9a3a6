"""The suite's lab fleets: started with `fledge lab up`, labelled, always removed.

Every lab carries the label ``io.fledge.bench=<run>``: :class:`Labs` removes
each lab it started when the suite ends, however it ends (a failure, Ctrl-C,
SIGTERM), then every lab with this run's label, in case one was interrupted
while it started. ``--keep`` leaves them up and says how to remove them;
``fledge lab down --label io.fledge.bench`` removes every bench lab left.

Each fleet has a controller cache of its own (``XDG_CACHE_HOME`` for the
fledge and Ansible processes that work on it, fledge's cache being
``$XDG_CACHE_HOME/fledge``): empty for its first provisioning, which is the
point, then kept for its re-runs (which would otherwise download again).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from fledge_bench.measure import BenchError, Result, run, shielded

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
LABEL = "io.fledge.bench"
NAME_PREFIX = "bench-"
# Seconds. Starting a lab may build its image first (debootstrap: about 100 s
# natively, up to 12 minutes emulated on a loaded machine), then boot it.
UP_TIMEOUT = {"native": 1800.0, "arm64": 3600.0}
DOWN_TIMEOUT = 300.0
STATUS_TIMEOUT = 60.0
# Provisioning a fresh fleet; an emulated arm64 device is several times slower.
PROVISION_TIMEOUT = {"native": 2400.0, "arm64": 7200.0}
EXEC_TIMEOUT = 120.0

Log = Callable[[str], None]


def run_label() -> str:
    """This run's value of the label: unique enough to tell two runs apart."""
    return f"{LABEL}={os.getpid()}-{int(time.time())}"


@dataclass(frozen=True)
class Fleet:
    """A lab fleet: a coordinator and devices pi-1 .. pi-N."""

    name: str
    size: int
    arch: str | None  # None: the engine's own
    directory: Path
    cache: Path  # its XDG_CACHE_HOME
    mplconfig: Path  # matplotlib's, shared and warm (see suite.py)

    @property
    def inventory(self) -> Path:
        return self.directory / "inventory.yml"

    @property
    def devices(self) -> list[str]:
        return [f"pi-{i}" for i in range(1, self.size + 1)]

    @property
    def hosts(self) -> list[str]:
        return ["coordinator", *self.devices]

    @property
    def emulated(self) -> bool:
        return self.arch == "arm64"

    @property
    def kind(self) -> str:
        return "arm64" if self.emulated else "native"

    def env(self) -> dict[str, str]:
        """The environment of every fledge and Ansible process working on this fleet."""
        env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "XDG_CACHE_HOME": str(self.cache),
            "MPLCONFIGDIR": str(self.mplconfig),
            "NO_COLOR": "1",
        }
        env.pop("FLEDGE_INVENTORY", None)  # the inventory is always given
        env.pop("PIP_CACHE_DIR", None)  # pip's cache is cold too (under XDG_CACHE_HOME)
        return env

    def fledge(self, *args: object, timeout: float) -> Result:
        """The installed `fledge` command, on this fleet's environment."""
        return run([BIN / "fledge", *map(str, args)], timeout=timeout, env=self.env())

    def container(self, host: str) -> str:
        return f"{self.name}-{host}"

    def exec(self, host: str, command: Sequence[str], timeout: float = EXEC_TIMEOUT) -> str:
        """``command`` as root on ``host`` through the Docker engine (not the network); its
        output. timeout(1) bounds it inside the container too: killing the docker client
        would leave it running there."""
        result = run(
            ["docker", "exec", self.container(host), "timeout", str(int(timeout)), *command],
            timeout=timeout + 30,
        )
        return result.check(f"`{' '.join(command)[:80]}` on {host}").stdout

    def host_vars(self, host: str, text: str | None) -> None:
        """Write (or, with None, remove) ``host_vars/<host>.yml`` beside the inventory."""
        path = self.directory / "host_vars" / f"{host}.yml"
        if text is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)


class Labs:
    """The labs of one run of the suite, removed when it ends unless ``keep``."""

    def __init__(self, root: Path, label: str, keep: bool, log: Log) -> None:
        self.root = root
        self.label = label
        self.keep = keep
        self.log = log
        self.mplconfig = root / "matplotlib"
        self._up: dict[str, Fleet] = {}

    def __enter__(self) -> Labs:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with shielded():
            self.close()

    def up(self, size: int, arch: str | None = None) -> tuple[Fleet, Result]:
        """Start a lab of ``size`` devices; the fleet and how `fledge lab up` went."""
        name = f"{NAME_PREFIX}{arch}-{size}" if arch else f"{NAME_PREFIX}{size}"
        fleet = Fleet(
            name, size, arch, self.root / name, self.root / f"cache-{name}", self.mplconfig
        )
        self._refuse_existing(fleet)
        fleet.cache.mkdir(parents=True)
        self._up[name] = fleet  # from now on, removed at the end whatever happens
        args: list[object] = ["lab", "up", "--nodes", size, "--name", name]
        args += ["--dir", fleet.directory, "--label", self.label]
        if arch:
            args += ["--arch", arch]
        self.log(f"starting the lab {name} ({size} device{'s' if size > 1 else ''})")
        result = fleet.fledge(*args, timeout=UP_TIMEOUT[fleet.kind]).check(f"fledge lab up {name}")
        return fleet, result

    def fleets(self) -> list[Fleet]:
        """The labs started and not removed yet."""
        return list(self._up.values())

    def down(self, fleet: Fleet) -> None:
        """Remove ``fleet`` now (unless the suite keeps its labs), and its cache."""
        if self.keep:
            return
        with shielded():
            self._down(fleet)

    def close(self) -> None:
        if self.keep:
            if self._up:
                self.log(
                    "kept the labs "
                    + ", ".join(f"{f.name} (inventory {f.inventory})" for f in self._up.values())
                    + f"; remove them with `fledge lab down --label {self.label}`"
                )
            return
        for fleet in list(self._up.values()):
            self._down(fleet)
        # Anything of this run that a lab up interrupted early may have left.
        try:
            swept = run(
                [BIN / "fledge", "lab", "down", "--label", self.label], timeout=DOWN_TIMEOUT
            )
            if not swept.ok:
                self.log(f"fledge lab down --label {self.label} failed:\n{swept.tail()}")
        except BenchError as exc:
            self.log(f"fledge lab down --label {self.label}: {exc}")
        shutil.rmtree(self.root, ignore_errors=True)

    def _down(self, fleet: Fleet) -> None:
        self.log(f"removing the lab {fleet.name}")
        try:
            result = run(
                [BIN / "fledge", "lab", "down", "--name", fleet.name, "--dir", fleet.directory],
                timeout=DOWN_TIMEOUT,
            )
            if not result.ok:
                self.log(f"could not remove the lab {fleet.name}:\n{result.tail()}")
        except BenchError as exc:
            self.log(f"could not remove the lab {fleet.name}: {exc}")
        self._up.pop(fleet.name, None)
        shutil.rmtree(fleet.cache, ignore_errors=True)

    def _refuse_existing(self, fleet: Fleet) -> None:
        """A lab of that name from an earlier run (with --keep) would be reused, not fresh."""
        status = run(
            [BIN / "fledge", "lab", "status", "--name", fleet.name, "--format", "json"],
            timeout=STATUS_TIMEOUT,
        )
        try:
            hosts = json.loads(status.stdout).get("hosts", [])
        except json.JSONDecodeError:
            raise BenchError(f"fledge lab status failed:\n{status.tail()}") from None
        if hosts:
            raise BenchError(
                f"a lab named {fleet.name} exists already (an earlier run with --keep?): "
                f"`fledge lab down --name {fleet.name}` removes it"
            )
