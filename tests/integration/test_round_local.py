"""`fledge round` against a real fleet on loopback: one SuperLink, two SuperNodes, real TLS.

No Docker needed: the daemons run as local processes, each with its own
FLWR_HOME, on free ports, and are killed (whole process groups) afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ansible_collections.fledge.edge.plugins.plugin_utils.partitions import write_partitions
from ansible_collections.fledge.edge.plugins.plugin_utils.pki import ensure_server_cert
from fledge import control, inventory

VENV_BIN = Path(sys.executable).parent
DEVICES = ("pi-1", "pi-2")
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Daemons:
    """Flower daemons started in their own process groups, with their output in files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, *command: str) -> None:
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

    def check_alive(self) -> None:
        for name, proc in self.procs:
            assert proc.poll() is None, f"{name} exited with {proc.returncode}\n{self.logs()}"

    def logs(self) -> str:
        tails = [
            (name, (self.root / name / "output.log").read_text(errors="replace")[-3000:])
            for name, _ in self.procs
        ]
        return "\n".join(f"--- {name} ---\n{tail}" for name, tail in tails)

    def stop(self) -> None:
        for _, proc in self.procs:
            _signal_group(proc, signal.SIGTERM)
        for _, proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=10)
            # The group also holds flower-superexec and app processes.
            _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def wait_until(what: str, check: Callable[[], bool], daemons: Daemons) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        daemons.check_alive()
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}\n{daemons.logs()}")


def superlink_healthy(port: int, ca: Path) -> bool:
    context = ssl.create_default_context(cafile=str(ca))
    try:
        with urllib.request.urlopen(
            f"https://127.0.0.1:{port}/health", context=context, timeout=2
        ) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An inventory whose SuperLink and two devices run on this machine."""
    root = tmp_path_factory.mktemp("local-fleet")
    port = free_port()
    path = root / "inventory.yml"
    path.write_text(
        "all:\n  children:\n"
        "    superlink:\n      hosts:\n"
        # The coordinator is this machine: fledge dials the SuperLink's port directly.
        f"        coordinator: {{ansible_host: 127.0.0.1, ansible_connection: local, "
        f"superlink_local_port: {port}}}\n"
        "    supernodes:\n      hosts:\n" + "".join(f"        {device}:\n" for device in DEVICES)
    )
    # The certificate names what provisioning would put in it (loopback included).
    fleet = inventory.load(path)
    pki = ensure_server_cert(fleet.state_dir / "pki", fleet.superlink.name, fleet.superlink_sans)
    data = write_partitions(fleet.state_dir / "data", DEVICES).paths
    daemons = Daemons(root)
    try:
        daemons.start(
            "superlink",
            "flower-superlink",
            "--ssl-ca-certfile",
            str(pki.ca_path),
            "--ssl-certfile",
            str(pki.cert_path),
            "--ssl-keyfile",
            str(pki.key_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--disable-runtime-dependency-installation",
        )
        wait_until("the SuperLink", lambda: superlink_healthy(port, pki.ca_path), daemons)
        for index, device in enumerate(DEVICES):
            daemons.start(
                device,
                "flower-supernode",
                "--root-certificates",
                str(pki.ca_path),
                "--superlink",
                f"127.0.0.1:{port}",
                "--port",
                str(free_port()),
                "--node-config",
                f"data-path='{data[device].parent}' partition-id={index}",
            )
        with control.superlink(fleet) as superlink:
            wait_until(
                "both SuperNodes",
                lambda: sum(node.online for node in superlink.list_nodes()) == len(DEVICES),
                daemons,
            )
        yield path
    finally:
        daemons.stop()


def fledge(*args: object, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fledge", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_two_rounds_complete_and_learn(fleet: Path) -> None:
    result = fledge(
        "round", "start", "-i", fleet, "--rounds", 2, "--timeout", 200, "--format", "json"
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["status"] == "finished:completed", doc
    assert [r["round"] for r in doc["rounds"]] == [1, 2]
    assert all(r["nodes"] == len(DEVICES) for r in doc["rounds"])
    assert doc["rounds"][-1]["accuracy"] > 0.8  # chance is 0.1
    assert doc["app"] == "fledge/fledge-digits==1.0.0"
    assert doc["network_bytes"]["total"] > 0
    assert "round 2/2" in result.stderr

    listed = fledge("round", "list", "-i", fleet, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    assert doc["run_id"] in [run["run_id"] for run in json.loads(listed.stdout)["runs"]]


def test_more_devices_than_are_connected_is_refused(fleet: Path) -> None:
    result = fledge("round", "start", "-i", fleet, "--min-nodes", 3, "--format", "json")
    assert result.returncode == 1
    assert "needs 3" in json.loads(result.stdout)["error"]
    message = " ".join(result.stderr.split())
    assert "only 2 devices are connected" in message and "needs 3" in message


def test_nodes_lists_both_devices(fleet: Path) -> None:
    result = fledge("round", "nodes", "-i", fleet, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["devices"], doc["online"]) == (2, 2)


GATED_APP = Path(__file__).resolve().parents[1] / "apps" / "gated"


def test_stop_ends_a_run_in_progress(fleet: Path) -> None:
    """`fledge round stop` on a real SuperLink: the run, held at its gate, ends stopped."""
    started = subprocess.Popen(
        [sys.executable, "-m", "fledge", "round", "start", "-i", str(fleet),
         "--app", str(GATED_APP), "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        run_id = None
        deadline = time.monotonic() + START_TIMEOUT
        while run_id is None and time.monotonic() < deadline:
            listed = fledge("round", "list", "-i", fleet, "--format", "json")
            running = [r for r in json.loads(listed.stdout)["runs"] if r["status"] == "running"]
            run_id = running[0]["run_id"] if running else None
            time.sleep(1)
        assert run_id, "the gated run never reached 'running'"
        stopped = fledge("round", "stop", run_id, "-i", fleet)
        assert stopped.returncode == 0, stopped.stderr
        out, err = started.communicate(timeout=120)
    finally:
        started.kill()
    assert started.returncode == 1, err
    doc = json.loads(out)
    assert (doc["run_id"], doc["status"]) == (run_id, "finished:stopped")
