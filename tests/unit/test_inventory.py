"""Inventory loading: read as Ansible reads it; bad input names file, line, host and field."""

from __future__ import annotations

import subprocess
import sys
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
    assert fleet.fleet_host == "192.168.1.10"


def test_superlink_addresses_and_certificate_names(tmp_path: Path) -> None:
    text = GOOD.replace(
        "          ansible_host: 192.168.1.10\n",
        "          ansible_host: 127.0.0.1\n"
        "          superlink_fleet_host: coordinator.lan\n"
        "          superlink_port: 9443\n"
        "          superlink_tls_extra_sans: [fl.example.org]\n",
    )
    fleet = inventory.load(write(tmp_path, text))
    assert fleet.superlink_port == 9443
    assert fleet.fleet_host == "coordinator.lan"
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
    assert "duplicate mapping key 'pi-1'" in error.message


def test_same_host_in_both_groups(tmp_path: Path) -> None:
    error = load_error(tmp_path, GOOD.replace("        pi-2:\n", "        coordinator:\n"))
    assert error.host == "coordinator"
    assert "both 'superlink' and 'supernodes'" in error.message


def test_other_groups_and_their_hosts_are_not_the_fleet(tmp_path: Path) -> None:
    """An inventory shared with other automation: hosts outside both groups are left alone."""
    text = GOOD + "    workers:\n      hosts:\n        w1:\n"
    fleet = inventory.load(write(tmp_path, text))
    assert [h.name for h in fleet.hosts] == ["coordinator", "pi-1", "pi-2"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("all:\n  children:\n    supernodes:\n      hosts:\n        pi-1:\n", "exactly one host"),
        (
            "all:\n  children:\n    superlink:\n      hosts:\n        c:\n",
            "'supernodes' group has no hosts",
        ),
        ("- just\n- a list\n", "YAML mapping"),
        ("all:\n  hosts:\n    pi-1:\n", "exactly one host"),
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


def test_group_and_host_vars_beside_the_inventory_count_as_in_ansible(tmp_path: Path) -> None:
    """host_vars/coordinator.yml moves the SuperLink's port for fledge as for Ansible."""
    (tmp_path / "host_vars").mkdir()
    (tmp_path / "host_vars" / "coordinator.yml").write_text("superlink_port: 9443\n")
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "supernodes.yml").write_text("ansible_user: admin\n")
    fleet = inventory.load(write(tmp_path, GOOD))
    assert fleet.superlink_port == 9443
    assert fleet.supernodes[0].vars["supernode_superlink_address"] == "192.168.1.10:9443"
    assert {h.user for h in fleet.supernodes} == {"admin"}


def test_a_parent_group_holding_both_groups_works(tmp_path: Path) -> None:
    text = (
        "all:\n  children:\n    fleet:\n      vars: {ansible_user: pi}\n      children:\n"
        "        superlink:\n          hosts:\n            coordinator: {ansible_host: 10.0.0.1}\n"
        "        supernodes:\n          hosts:\n            pi-1: {ansible_host: 10.0.0.2}\n"
    )
    fleet = inventory.load(write(tmp_path, text))
    assert [(h.name, h.group, h.user) for h in fleet.hosts] == [
        ("coordinator", "superlink", "pi"),
        ("pi-1", "supernodes", "pi"),
    ]


def test_fleet_defaults_come_from_the_collection(tmp_path: Path) -> None:
    fleet = inventory.load(write(tmp_path, GOOD))
    assert fleet.superlink.vars["fledge_state_dir"] == str(tmp_path / ".fledge")
    assert fleet.superlink_port == 8000 and fleet.tls


def test_a_value_set_in_group_vars_is_reported_there(tmp_path: Path) -> None:
    (tmp_path / "group_vars").mkdir()
    bad = tmp_path / "group_vars" / "all.yml"
    bad.write_text("# fleet settings\nfledge_tls: maybe\n")
    error = load_error(tmp_path, GOOD)
    assert (error.path, error.line, error.field) == (bad, 2, "fledge_tls")


@pytest.mark.parametrize("value", ["n", "no", "false", "off", "0", "False"])
def test_booleans_read_as_ansible_reads_them(tmp_path: Path, value: str) -> None:
    """fledge_tls: n is false for Ansible's bool filter, so it is for fledge."""
    text = GOOD.replace(
        "    ansible_user: pi\n", f"    ansible_user: pi\n    fledge_tls: {value}\n"
    )
    assert not inventory.load(write(tmp_path, text)).tls


def test_a_host_named_like_a_group_is_refused(tmp_path: Path) -> None:
    error = load_error(tmp_path, GOOD.replace("        pi-2:\n", "        superlink:\n"))
    assert error.host == "superlink" and "name of a group" in error.message


def test_extra_sans_must_be_a_list(tmp_path: Path) -> None:
    text = GOOD.replace(
        "          ansible_host: 192.168.1.10\n",
        "          ansible_host: 192.168.1.10\n          superlink_tls_extra_sans: coord.lan\n",
    )
    error = load_error(tmp_path, text)
    assert (error.line, error.field) == (9, "superlink_tls_extra_sans")
    assert "[coord.lan]" in error.fix


@pytest.mark.parametrize(
    "args",
    [
        "-o StrictHostKeyChecking=no",
        '-o "StrictHostKeyChecking no"',
        "-oStrictHostKeyChecking=accept-new",
        "-o UserKnownHostsFile=/dev/null",
        "-o Port=22 -o stricthostkeychecking=No",
    ],
)
def test_ssh_options_that_skip_host_key_checks_are_refused(tmp_path: Path, args: str) -> None:
    text = GOOD.replace(
        "    ansible_user: pi\n", f"    ansible_user: pi\n    ansible_ssh_common_args: '{args}'\n"
    )
    error = load_error(tmp_path, text)
    assert error.field == "ansible_ssh_common_args" and error.line == 4
    assert "host key" in error.message


def test_host_key_checking_variable_off_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    ansible_user: pi\n", "    ansible_user: pi\n    ansible_host_key_checking: false\n"
    )
    assert load_error(tmp_path, text).field == "ansible_host_key_checking"


def test_strict_ssh_options_are_fine(tmp_path: Path) -> None:
    text = GOOD.replace(
        "    ansible_user: pi\n",
        "    ansible_user: pi\n"
        "    ansible_ssh_common_args: '-o UserKnownHostsFile=/x -o StrictHostKeyChecking=yes'\n",
    )
    assert inventory.load(write(tmp_path, text)).superlink.vars["ansible_ssh_common_args"]


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("ansible_port: 2222", "ansible_port: '²'", "ansible_port"),
        ("ansible_user: admin", 'ansible_user: "admin\\n"', "ansible_user"),
    ],
)
def test_values_that_look_valid_to_python_but_are_not(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    assert load_error(tmp_path, GOOD.replace(old, new)).field == field


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("all:\n  ? [a, b]\n  : 1\n", "not valid YAML"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "not valid YAML"),
    ],
    ids=["list-as-key", "deeply-nested"],
)
def test_yaml_that_breaks_parsers_is_an_error(tmp_path: Path, text: str, words: str) -> None:
    error = load_error(tmp_path, text)
    assert words in error.message and error.fix


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "pis.yml"
    path.write_bytes(GOOD.encode().replace(b"pi-2.local", b"pi-\xe9.local"))
    with pytest.raises(FledgeError) as caught:
        inventory.load(path)
    assert (caught.value.line, "UTF-8") == (16, "UTF-8") and "UTF-8" in caught.value.message


@pytest.mark.parametrize("special", ["/dev/zero", "/dev/null", "directory"])
def test_only_a_regular_file_of_sane_size_is_read(tmp_path: Path, special: str) -> None:
    path = tmp_path if special == "directory" else Path(special)
    with pytest.raises(FledgeError) as caught:
        inventory.load(path)
    assert "not a regular file" in caught.value.message


def test_a_huge_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yml"
    with path.open("wb") as handle:
        handle.truncate(inventory.MAX_BYTES + 1)
    with pytest.raises(FledgeError) as caught:
        inventory.load(path)
    assert "bytes" in caught.value.message


def test_the_collections_code_imports_after_an_inventory_is_read(tmp_path: Path) -> None:
    """Reading an inventory installs Ansible's collection finder; fledge's commands import
    the collection's plugin_utils after that (round start's package check did not)."""
    path = tmp_path / "pis.yml"
    path.write_text(
        "all:\n  children:\n    superlink:\n      hosts:\n        coordinator:\n"
        "    supernodes:\n      hosts:\n        pi-1:\n"
    )
    script = (
        "import sys, pkgutil\n"
        "from fledge import inventory\n"
        "inventory.load(sys.argv[1])\n"
        "import ansible_collections.fledge.edge.plugins.plugin_utils as p\n"
        "for m in pkgutil.iter_modules(p.__path__):\n"
        "    exec(f'from {p.__name__}.{m.name} import __name__ as name')\n"
        "from fledge import app_packages\n"
        "print(app_packages.packages.__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("plugin_utils.packages")
