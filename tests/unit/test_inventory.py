"""Inventory loading: good input is read exactly, bad input names file, line, host and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from fledge import inventory
from fledge.errors import FledgeError

GOOD = """\
all:
  vars:
    ansible_user: pi
  children:
    superlink:
      hosts:
        coordinator:
          ansible_host: 192.168.1.10
    supernodes:
      vars:
        ansible_port: 2200
      hosts:
        pi-1:
          ansible_host: 192.168.1.21
        pi-2:
          ansible_host: pi-2.local
          ansible_port: 2222
          ansible_user: admin
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pis.yml"
    path.write_text(text)
    return path


def load_error(tmp_path: Path, text: str) -> FledgeError:
    with pytest.raises(FledgeError) as caught:
        inventory.load(write(tmp_path, text))
    return caught.value


def test_good_inventory_is_read_with_precedence(tmp_path: Path) -> None:
    fleet = inventory.load(write(tmp_path, GOOD))
    assert fleet.superlink.name == "coordinator"
    assert fleet.superlink.address == "192.168.1.10"
    assert fleet.superlink.port == 22
    assert [h.name for h in fleet.supernodes] == ["pi-1", "pi-2"]
    pi1, pi2 = fleet.supernodes
    assert (pi1.address, pi1.port, pi1.user) == (
        "192.168.1.21",
        2200,
        "pi",
    )  # group var wins over default
    assert (pi2.address, pi2.port, pi2.user) == ("pi-2.local", 2222, "admin")  # host var wins
    assert fleet.state_dir == tmp_path / ".fledge"
    assert fleet.control_address == "192.168.1.10:8000"
    assert fleet.fleet_host == "192.168.1.10"


def test_superlink_addresses_and_certificate_names(tmp_path: Path) -> None:
    text = GOOD.replace(
        "          ansible_host: 192.168.1.10\n",
        "          ansible_host: 127.0.0.1\n"
        "          superlink_fleet_host: coordinator.lan\n"
        "          superlink_port: 9443\n"
        "          superlink_control_address: 127.0.0.1:18443\n"
        "          superlink_tls_extra_sans: [fl.example.org]\n",
    )
    fleet = inventory.load(write(tmp_path, text))
    assert fleet.superlink_port == 9443
    assert fleet.fleet_host == "coordinator.lan"
    assert fleet.control_address == "127.0.0.1:18443"
    assert fleet.superlink_sans == [
        "coordinator",
        "127.0.0.1",
        "coordinator.lan",
        "fl.example.org",
        "localhost",
    ]


def test_shipped_example_inventory_loads() -> None:
    example = Path(__file__).parents[2] / "inventories" / "example.yml"
    fleet = inventory.load(example)
    assert fleet.supernodes


@pytest.mark.parametrize(
    ("old", "new", "line", "host", "field", "words"),
    [
        ("ansible_port: 2222", "ansible_port: 70000", 17, "pi-2", "ansible_port", "not a port"),
        ("ansible_port: 2222", "ansible_port: ssh", 17, "pi-2", "ansible_port", "not a port"),
        (
            "ansible_host: pi-2.local",
            "ansible_host: pi_2..local",
            16,
            "pi-2",
            "ansible_host",
            "not an IP",
        ),
        (
            "ansible_host: 192.168.1.21",
            "ansible_host: 192.168.1.300",
            14,
            "pi-1",
            "ansible_host",
            "not an IP",
        ),
        (
            "ansible_user: admin",
            "ansible_user: 'Bad User'",
            18,
            "pi-2",
            "ansible_user",
            "user name",
        ),
    ],
)
def test_bad_host_fields_name_file_line_host_and_field(
    tmp_path: Path, old: str, new: str, line: int, host: str, field: str, words: str
) -> None:
    error = load_error(tmp_path, GOOD.replace(old, new))
    assert (error.path, error.line, error.host, error.field) == (
        tmp_path / "pis.yml",
        line,
        host,
        field,
    )
    assert words in error.message
    assert error.fix
    assert f"{tmp_path / 'pis.yml'}:{line}" in str(error)


def test_duplicate_host_name_in_one_group(tmp_path: Path) -> None:
    error = load_error(tmp_path, GOOD.replace("        pi-2:\n", "        pi-1:\n"))
    assert error.line == 15
    assert "'pi-1' appears twice" in error.message


def test_same_host_in_both_groups(tmp_path: Path) -> None:
    error = load_error(tmp_path, GOOD.replace("        pi-2:\n", "        coordinator:\n"))
    assert error.host == "coordinator"
    assert "both 'superlink' and 'supernodes'" in error.message


def test_unknown_group(tmp_path: Path) -> None:
    text = GOOD + "    workers:\n      hosts:\n        w1:\n"
    error = load_error(tmp_path, text)
    assert "unknown group 'workers'" in error.message
    assert error.line == 19


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("all:\n  children:\n    supernodes:\n      hosts:\n        pi-1:\n", "exactly one host"),
        (
            "all:\n  children:\n    superlink:\n      hosts:\n        c:\n",
            "'supernodes' group has no hosts",
        ),
        ("- just\n- a list\n", "YAML mapping"),
        ("all:\n  hosts:\n    pi-1:\n", "no role"),
        ("all:\n  children: [\n", "not valid YAML"),
    ],
)
def test_structural_errors(tmp_path: Path, text: str, words: str) -> None:
    assert words in load_error(tmp_path, text).message


def test_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(FledgeError) as caught:
        inventory.load(tmp_path / "nope.yml")
    assert "fledge inventory generate" in caught.value.fix


def test_relative_state_dir_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    ansible_user: pi\n", "    ansible_user: pi\n    fledge_state_dir: state\n"
    )
    error = load_error(tmp_path, text)
    assert error.field == "fledge_state_dir"


def test_render_then_load_round_trips(tmp_path: Path) -> None:
    text = inventory.render(
        inventory.HostSpec("coordinator", "10.0.0.1"),
        [
            inventory.HostSpec("pi-1", "10.0.0.21", user="pi", port=2222),
            inventory.HostSpec("pi-2.lan", "pi-2.lan"),
        ],
        {"ansible_user": "pi"},
    )
    fleet = inventory.write(tmp_path / "out.yml", text)
    assert [(h.name, h.address, h.port, h.user) for h in fleet.hosts] == [
        ("coordinator", "10.0.0.1", 22, "pi"),
        ("pi-1", "10.0.0.21", 2222, "pi"),
        ("pi-2.lan", "pi-2.lan", 22, "pi"),
    ]


def test_write_refuses_bad_text_and_leaves_no_file(tmp_path: Path) -> None:
    text = inventory.render(
        inventory.HostSpec("c", "10.0.0.1", port=99999), [inventory.HostSpec("d", "10.0.0.2")]
    )
    with pytest.raises(FledgeError):
        inventory.write(tmp_path / "out.yml", text)
    assert list(tmp_path.iterdir()) == []
