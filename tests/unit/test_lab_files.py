"""The files a lab writes: login key, known_hosts and an inventory fledge reads back."""

from __future__ import annotations

import stat
from pathlib import Path
from unittest import mock

import paramiko
import pytest
import yaml

from fledge import inventory
from fledge.errors import FledgeError
from fledge.lab import files, fleet
from fledge.lab.files import Endpoint

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMFsgKZBewdImU5nHtt1VQ0SkoU65bDAhU9oKNMuvHrF"
ECDSA = (
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBL9D97DE7YIsxbrNZCjJGi"
    "nNWTho+qwmU4bha2f0snSmL3cUbWpbi2NySbjUaq6o5PjvOhX95DF4trWjwux/Rro="
)
COORDINATOR = Endpoint("coordinator", 32769, [ED25519, ECDSA])
DEVICES = [Endpoint("pi-1", 32770, [ED25519]), Endpoint("pi-2", 32771, [ED25519])]


def test_known_hosts_names_loopback_ports_like_openssh() -> None:
    text = files.known_hosts_text([COORDINATOR, DEVICES[0]])
    assert text.splitlines() == [
        f"[127.0.0.1]:32769 {ED25519}",
        f"[127.0.0.1]:32769 {ECDSA}",
        f"[127.0.0.1]:32770 {ED25519}",
    ]
    assert files.known_host("10.0.0.5", 22) == "10.0.0.5"


def test_known_hosts_is_what_paramiko_looks_up(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    path.write_text(files.known_hosts_text([COORDINATOR]))
    keys = paramiko.HostKeys(str(path))
    found = keys.lookup("[127.0.0.1]:32769")
    assert found is not None and set(found.keys()) == {"ssh-ed25519", "ecdsa-sha2-nistp256"}
    assert keys.lookup("[127.0.0.1]:32770") is None


def test_the_inventory_reads_back_as_the_lab(tmp_path: Path) -> None:
    path = files.write("fledge-t1", tmp_path, COORDINATOR, DEVICES, fleet_host="coordinator")
    fleet = inventory.load(path)
    assert fleet.superlink.name == "coordinator"
    assert [(h.name, h.address, h.port) for h in fleet.hosts] == [
        ("coordinator", "127.0.0.1", 32769),
        ("pi-1", "127.0.0.1", 32770),
        ("pi-2", "127.0.0.1", 32771),
    ]
    assert fleet.state_dir == tmp_path.resolve() / ".fledge"
    assert fleet.fleet_host == "coordinator"
    assert fleet.superlink.user == "pi"
    assert fleet.superlink.vars["fledge_lab"] == "fledge-t1"
    assert fleet.superlink.vars["ansible_python_interpreter"] == "/usr/bin/python3"
    assert fleet.superlink.vars["ansible_ssh_private_key_file"] == str(
        tmp_path.resolve() / "id_ed25519"
    )
    assert fleet.superlink.vars["ansible_ssh_common_args"] == (
        f"-o UserKnownHostsFile={tmp_path.resolve() / 'known_hosts'} -o StrictHostKeyChecking=yes"
    )
    assert path.read_text().startswith("# Written by `fledge lab up`")
    assert (tmp_path / "known_hosts").read_text() == files.known_hosts_text([COORDINATOR, *DEVICES])


def test_only_emulated_devices_run_docker_without_iptables(tmp_path: Path) -> None:
    emulated = Endpoint("pi-2", 32771, [ED25519], emulated=True)
    path = files.write("t", tmp_path, COORDINATOR, [DEVICES[0], emulated], "coordinator")
    hosts = {h.name: h.vars for h in inventory.load(path).hosts}
    assert hosts["pi-2"]["docker_daemon_options"] == {"iptables": False}
    assert "docker_daemon_options" not in hosts["pi-1"]
    assert "docker_daemon_options" not in hosts["coordinator"]


def test_a_path_with_spaces_stays_one_ssh_argument(tmp_path: Path) -> None:
    directory = tmp_path / "my labs"
    text = files.inventory_text("lab", directory, COORDINATOR, DEVICES, "coordinator")
    args = yaml.safe_load(text)["all"]["vars"]["ansible_ssh_common_args"]
    assert f"UserKnownHostsFile='{directory}/known_hosts'" in args


def test_the_login_key_is_private_openssh_and_kept(tmp_path: Path) -> None:
    public = files.login_key(tmp_path, "fledge-lab-t")
    private = tmp_path / "id_ed25519"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    key = paramiko.PKey.from_path(private)
    assert public == f"ssh-ed25519 {key.get_base64()} fledge-lab-t"
    assert (tmp_path / "id_ed25519.pub").read_text() == public + "\n"
    assert files.login_key(tmp_path, "fledge-lab-t") == public  # once per lab


def test_remove_takes_the_lab_files_and_provisioning_state(tmp_path: Path) -> None:
    directory = tmp_path / "lab"
    files.write("t", directory, COORDINATOR, DEVICES, "coordinator")
    files.login_key(directory, "t")
    (directory / ".fledge" / "ca").mkdir(parents=True)
    (directory / ".fledge" / "ca" / "ca.key").write_text("secret")
    files.remove(directory)
    assert not directory.exists()
    assert files.remove(directory) == []  # twice is fine


def test_remove_keeps_what_the_lab_did_not_write(tmp_path: Path) -> None:
    files.login_key(tmp_path, "t")
    (tmp_path / "notes.txt").write_text("mine")
    files.remove(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_labs_directory_names_its_lab(tmp_path: Path) -> None:
    assert files.lab_name(tmp_path) is None
    files.write("fledge-t1", tmp_path, COORDINATOR, DEVICES, fleet_host="coordinator")
    assert files.lab_name(tmp_path) == "fledge-t1"


def test_down_refuses_the_directory_of_another_lab(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`lab down --dir` with the wrong name must not orphan the other lab's containers."""
    files.write("fledge-t1", tmp_path, COORDINATOR, DEVICES, fleet_host="coordinator")
    client = mock.Mock()
    client.networks.list.return_value = []
    with pytest.raises(FledgeError, match="holds the files of the lab 'fledge-t1'") as caught:
        fleet.down(client, "fledge-lab", tmp_path)
    assert caught.value.fix == f"fledge lab down --name fledge-t1 --dir {tmp_path.resolve()}"
    assert (tmp_path / "inventory.yml").is_file()
    client.containers.list.assert_not_called()
