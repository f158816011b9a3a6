"""A real lab on the local Docker engine: up, status, SSH, up again, down.

Needs a Docker engine, root (debootstrap, on the first run) and Debian's
mirror; CI has all three, so a missing engine fails this test, never skips it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fledge import inventory, ssh
from fledge.errors import FledgeError
from fledge.lab import engine, fleet
from fledge.main import app

from helpers import RUN_LABEL

pytestmark = pytest.mark.lab
runner = CliRunner()
BIN = Path(sys.executable).parent


def fledge(*args: object) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A unique lab name and directory; the lab is removed even when the test fails."""
    name, directory = f"fledge-t{os.getpid()}", tmp_path / "lab"
    try:
        yield name, directory
    finally:
        fledge("lab", "down", "--name", name, "--dir", directory)


def _status(name: str) -> dict:
    code, out, err = fledge("lab", "status", "--name", name, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def test_lab_up_status_ssh_up_again_down(lab: tuple[str, Path]) -> None:
    name, directory = lab
    code, _, err = fledge(
        "lab", "up", "--nodes", 1, "--name", name, "--dir", directory, "--label", RUN_LABEL
    )
    assert code == 0, err
    assert f"fledge provision --inventory {directory / 'inventory.yml'}" in err

    hosts = _status(name)["hosts"]
    assert [(h["host"], h["role"], h["state"]) for h in hosts] == [
        ("coordinator", "coordinator", "running"),
        ("pi-1", "device", "running"),
    ]
    assert all(h["container"] == f"{name}-{h['host']}" for h in hosts)
    assert (directory.stat().st_mode & 0o777) == 0o700
    assert (directory / "id_ed25519").stat().st_mode & 0o777 == 0o600

    fleet_ = inventory.load(directory / "inventory.yml")
    ports = {h.name: h.port for h in fleet_.hosts}
    assert ports == {h["host"]: h["ssh_port"] for h in hosts}
    assert fleet_.state_dir == directory.resolve() / ".fledge"

    # A real login, the host key checked against the lab's known_hosts.
    for host in fleet_.hosts:
        with ssh.connect(
            "127.0.0.1", host.port, "pi", directory / "id_ed25519", directory / "known_hosts"
        ) as client:
            assert ssh.run(client, "sudo -n true", timeout=60) == (0, "", "")
            assert ssh.run(client, "hostname", timeout=60)[1].strip() == host.name
            assert ssh.run(client, "getent hosts coordinator", timeout=60)[0] == 0
            assert ssh.run(client, "systemctl is-system-running", timeout=60) == (
                0,
                "running\n",
                "",
            )
    # ... and an unknown host key is refused, never trusted on first use.
    (directory / "empty_known_hosts").write_text("")
    with pytest.raises(FledgeError, match="host key"):
        ssh.connect(
            "127.0.0.1",
            ports["pi-1"],
            "pi",
            directory / "id_ed25519",
            directory / "empty_known_hosts",
        )
    (directory / "empty_known_hosts").unlink()

    # Ansible reads the inventory and logs in with the host keys checked.
    env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "True"}
    subprocess.run(
        [BIN / "ansible-inventory", "-i", directory / "inventory.yml", "--list"],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )
    ping = subprocess.run(
        [BIN / "ansible", "all", "-i", directory / "inventory.yml", "-m", "ping", "-b"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr

    # Again: nothing is recreated, ports and keys stay.
    client = engine.connect()
    ids = {h: c.id for h, c in fleet.containers(client, name).items()}
    kept = {f: (directory / f).read_bytes() for f in ("id_ed25519", "known_hosts", "inventory.yml")}
    code, _, err = fledge("lab", "up", "--nodes", 1, "--name", name, "--label", RUN_LABEL)
    assert code == 0, err
    assert {h: c.id for h, c in fleet.containers(client, name).items()} == ids
    assert {f: (directory / f).read_bytes() for f in kept} == kept
    assert "started" not in err

    code, _, err = fledge("lab", "down", "--name", name)
    assert code == 0, err
    label = {"label": f"{fleet.LAB_LABEL}={name}"}
    assert client.containers.list(all=True, filters=label) == []
    assert client.networks.list(filters=label) == []
    assert client.volumes.list(filters=label) == []
    assert not directory.exists()
    assert fledge("lab", "down", "--name", name)[0] == 0  # twice is fine
    code, out, _ = fledge("lab", "status", "--name", name, "--format", "json")
    assert code == 0 and json.loads(out)["hosts"] == []
