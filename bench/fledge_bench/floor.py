"""The floor for training rounds: plain Flower on this machine, no fledge.

The same app as `fledge round start` runs (fledge's digits app, the same
data partitions), on a plain local SuperLink and N plain local SuperNodes on
loopback, started exactly as tests/integration/test_round_local.py starts
them (flower-superlink and flower-supernode from this virtual environment,
each with its own FLWR_HOME, a node config giving each device its data).
The run is started with `flwr run` and timed until `flwr ls --run-id`
reports it finished, polling every 0.5 s. Insecure by default (the floor);
with ``tls``, a CA and server certificate made as fledge's provisioning
makes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ansible_collections.fledge.edge.plugins.plugin_utils.partitions import write_partitions
from ansible_collections.fledge.edge.plugins.plugin_utils.pki import ensure_server_cert
from fledge_bench.lab import REPO
from fledge_bench.measure import BenchError, run

VENV_BIN = Path(sys.executable).parent
APP = REPO / "cli" / "fledge" / "apps" / "digits"
CONNECTION = "floor"
START_TIMEOUT = 120.0
CALL_TIMEOUT = 120.0
POLL_INTERVAL = 0.5


@dataclass(frozen=True)
class FloorRun:
    wall: float  # `flwr run` started .. `flwr ls` reports the run finished
    elapsed: float | None  # the SuperLink's own running time of the run
    status: str
    polls: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def last_json(text: str) -> dict[str, Any] | None:
    """The last JSON object flwr printed (it may print other lines before it)."""
    decoder = json.JSONDecoder()
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("{")]
    for index in reversed(starts):
        try:
            doc, _ = decoder.raw_decode("".join(lines[index:]))
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            return doc
    return None


class LocalFlower:
    """A SuperLink and ``devices`` SuperNodes as local processes, stopped on exit."""

    def __init__(self, root: Path, devices: int, tls: bool) -> None:
        self.root = root
        self.devices = [f"pi-{i}" for i in range(1, devices + 1)]
        self.tls = tls
        self.port = free_port()
        self.ca: Path | None = None
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.cli_home = root / "cli"

    def __enter__(self) -> LocalFlower:
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def run_app(self, rounds: int, timeout: float) -> FloorRun:
        """Start the digits app for ``rounds`` rounds and wait until it has finished."""
        app = self.root / "app" / "digits"
        shutil.rmtree(app, ignore_errors=True)
        # flwr writes into the app it is given: a copy.
        shutil.copytree(APP, app, ignore=shutil.ignore_patterns("__pycache__"))
        config = ["-c", f"num-server-rounds={rounds}", "-c", f"min-nodes={len(self.devices)}"]
        start = time.perf_counter()
        started = self._flwr("run", str(app), CONNECTION, *config)
        run_id = str(started.get("run-id") or "")
        if not run_id:
            raise BenchError(f"flwr run started no run: {started}")
        polls = 0
        while True:
            info = self._flwr("ls", CONNECTION, "--run-id", run_id)["runs"][0]
            polls += 1
            status = str(info.get("status", ""))
            if status.startswith("finished"):
                wall = time.perf_counter() - start
                break
            if time.perf_counter() - start > timeout:
                raise BenchError(
                    f"the floor's run did not finish within {timeout:.0f} s\n{self.logs()}"
                )
            self.check_alive()
            time.sleep(POLL_INTERVAL)
        elapsed = info.get("elapsed")
        return FloorRun(wall, float(elapsed) if elapsed is not None else None, status, polls)

    def stop(self) -> None:
        for _, proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=10)
            _signal_group(proc, signal.SIGKILL)  # the ServerApp, ClientApps, SuperExecs
        self.procs = []

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise BenchError(f"the floor's {name} exited with {proc.returncode}\n{self.logs()}")

    def logs(self) -> str:
        tails = []
        for name, _ in self.procs:
            log = self.root / name / "output.log"
            text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            tails.append(f"--- {name} ---\n{text}")
        return "\n".join(tails)

    # Starting.

    def _start(self) -> None:
        data = write_partitions(self.root / "data", self.devices).paths
        if self.tls:
            pki_dir = self.root / "pki"
            pki_dir.mkdir(mode=0o700)
            pki = ensure_server_cert(pki_dir, "localhost", ["127.0.0.1", "localhost"])
            self.ca = pki.ca_path
            trust = ["--ssl-ca-certfile", str(pki.ca_path), "--ssl-certfile", str(pki.cert_path)]
            trust += ["--ssl-keyfile", str(pki.key_path)]
        else:
            trust = ["--insecure"]
        self._daemon(
            "superlink", "flower-superlink", *trust, "--host", "127.0.0.1",
            "--port", str(self.port), "--disable-runtime-dependency-installation",
        )  # fmt: skip
        self._wait("the SuperLink", self._healthy)
        for index, device in enumerate(self.devices):
            self._daemon(
                device, "flower-supernode",
                *(["--root-certificates", str(self.ca)] if self.ca else ["--insecure"]),
                "--superlink", f"127.0.0.1:{self.port}", "--port", str(free_port()),
                "--node-config", f"data-path='{data[device].parent}' partition-id={index}",
            )  # fmt: skip
        self._write_cli_config()
        self._wait(f"{len(self.devices)} SuperNodes", self._all_online)

    def _daemon(self, name: str, *command: str) -> None:
        home = self.root / name
        home.mkdir()
        env = {
            **os.environ,
            # The daemons start flower-superexec and the app processes by bare name.
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "FLWR_HOME": str(home),
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "FLWR_TELEMETRY_ENABLED": "0",
        }
        with open(home / "output.log", "wb") as out:
            proc = subprocess.Popen(
                [str(VENV_BIN / command[0]), *command[1:]],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs.append((name, proc))

    def _write_cli_config(self) -> None:
        self.cli_home.mkdir(exist_ok=True)
        trust = f"root-certificates = {json.dumps(str(self.ca))}" if self.ca else "insecure = true"
        (self.cli_home / "config.toml").write_text(
            f'[superlink]\ndefault = "{CONNECTION}"\n\n'
            f'[superlink.{CONNECTION}]\naddress = "127.0.0.1:{self.port}"\n{trust}\n'
        )

    def _wait(self, what: str, ready: Any) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            if ready():
                return
            time.sleep(0.5)
        raise BenchError(f"the floor: timed out waiting for {what}\n{self.logs()}")

    def _healthy(self) -> bool:
        scheme = "https" if self.ca else "http"
        context = ssl.create_default_context(cafile=str(self.ca)) if self.ca else None
        try:
            with urllib.request.urlopen(
                f"{scheme}://127.0.0.1:{self.port}/health", context=context, timeout=2
            ) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def _all_online(self) -> bool:
        nodes = self._flwr("supernode", "ls", CONNECTION).get("nodes", [])
        return sum(node.get("status") == "online" for node in nodes) >= len(self.devices)

    def _flwr(self, *args: str) -> dict[str, Any]:
        env = {
            **os.environ,
            "FLWR_HOME": str(self.cli_home),
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "FLWR_TELEMETRY_ENABLED": "0",
        }
        result = run([VENV_BIN / "flwr", *args, "--format", "json"], timeout=CALL_TIMEOUT, env=env)
        doc = last_json(result.stdout)
        if doc is None or doc.get("success") is not True:
            reason = (doc or {}).get("error-message") or result.tail()
            raise BenchError(f"flwr {args[0]} failed: {reason}")
        return doc


def measure(root: Path, devices: int, rounds: int, *, tls: bool, timeout: float) -> FloorRun:
    """One run of the floor: start Flower, run the app, stop Flower."""
    with LocalFlower(root, devices, tls) as flower:
        return flower.run_app(rounds, timeout)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)
