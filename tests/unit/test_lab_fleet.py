"""`fledge lab` without a Docker engine: what it refuses and how it says so.

Fakes stand in for the Docker SDK's client only; everything of fledge's runs.
"""

from __future__ import annotations

from pathlib import Path

import docker
import pytest
from typer.testing import CliRunner

from fledge.errors import FledgeError
from fledge.lab import engine, fleet, image
from fledge.main import app

runner = CliRunner()


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A DOCKER_HOST where nothing listens: the real SDK fails to connect."""
    address = f"unix://{tmp_path}/docker.sock"
    monkeypatch.setenv("DOCKER_HOST", address)
    return address


def test_no_engine_names_the_socket_and_how_to_get_one(no_engine: str) -> None:
    with pytest.raises(FledgeError) as caught:
        engine.connect()
    assert no_engine in caught.value.message and "DOCKER_HOST" in caught.value.message
    assert "apt-get install docker.io" in caught.value.fix
    assert "systemctl start docker" in caught.value.fix


@pytest.mark.parametrize("command", [["up"], ["status"], ["down"]])
def test_every_lab_command_exits_1_without_an_engine(no_engine: str, command: list[str]) -> None:
    result = runner.invoke(app, ["lab", *command, "--name", "fledge-nothing"])
    assert result.exit_code == 1
    assert "cannot reach a Docker engine" in result.stderr
    assert "apt-get install docker.io" in result.stderr


def test_a_socket_without_permission_points_at_the_docker_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse() -> None:
        raise docker.errors.DockerException(
            "Error while fetching server API version: ('Connection aborted.', "
            "PermissionError(13, 'Permission denied'))"
        )

    monkeypatch.setattr(docker, "from_env", refuse)
    with pytest.raises(FledgeError) as caught:
        engine.connect()
    assert "docker group" in caught.value.fix


class _Container:
    def __init__(self, host: str) -> None:
        self.labels = {fleet.LAB_LABEL: "t", fleet.HOST_LABEL: host}


class _Client:
    """The parts of docker.DockerClient the checks before any change use."""

    def __init__(self, arch: str = "amd64", hosts: tuple[str, ...] = ()) -> None:
        self.arch = arch
        self.hosts = hosts
        self.containers = self

    def version(self) -> dict[str, str]:
        return {"Arch": self.arch}

    def list(self, all: bool, filters: dict[str, str]) -> list[_Container]:
        assert filters == {"label": f"{fleet.LAB_LABEL}=t"}
        return [_Container(h) for h in self.hosts]


def test_arm64_devices_need_qemu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(image, "BINFMT_DIR", tmp_path)  # nothing registered
    with pytest.raises(FledgeError) as caught:
        fleet.up(_Client("amd64"), "t", 1, tmp_path, arch="arm64")
    assert "qemu-aarch64" in caught.value.message
    assert "apt-get install qemu-user-static binfmt-support" in caught.value.fix


@pytest.mark.parametrize(
    ("name", "nodes", "arch", "field"),
    [
        ("-bad", 1, None, "--name"),
        ("a b", 1, None, "--name"),
        ("ok", 0, None, "--nodes"),
        ("ok", 1, "riscv64", "--arch"),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(
    tmp_path: Path, name: str, nodes: int, arch: str | None, field: str
) -> None:
    with pytest.raises(FledgeError) as caught:
        fleet.up(_Client(), name, nodes, tmp_path, arch=arch)
    assert caught.value.field == field


def test_hosts_come_in_fleet_order() -> None:
    client = _Client(hosts=("pi-10", "pi-2", "coordinator", "pi-1"))
    assert list(fleet.containers(client, "t")) == ["coordinator", "pi-1", "pi-2", "pi-10"]


def test_devices_are_named_like_pis() -> None:
    assert fleet.device_names(3) == ["pi-1", "pi-2", "pi-3"]
