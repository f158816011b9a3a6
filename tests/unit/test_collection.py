"""The collection's contracts that no Ansible run would catch early.

Role defaults and their argument specs must agree, and the few values that
the CLI and the roles both know (ports, versions, file names) must match.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest
import yaml

from ansible_collections.fledge.edge.plugins.plugin_utils import partitions as data
from fledge.collection import collection_dir

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "collection" / "roles"
ROLE_NAMES = sorted(p.name for p in ROLES.iterdir() if p.is_dir())


def role_file(role: str, *parts: str) -> dict:
    return yaml.safe_load((ROLES / role).joinpath(*parts).read_text()) or {}


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_argument_specs_match_defaults(role: str) -> None:
    defaults = role_file(role, "defaults", "main.yml")
    options = role_file(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
    assert set(options) == set(defaults), "every default is documented, nothing else"
    for name, spec in options.items():
        assert spec.get("description"), f"{name} has no description"
        assert "type" in spec, f"{name} has no type"
        value = defaults[name]
        if isinstance(value, str) and "{{" in value:
            continue  # a computed default: documented in words or as the same template
        assert spec.get("default") == value, (
            f"{name}: spec says {spec.get('default')!r}, default is {value!r}"
        )
        if "choices" in spec:
            assert value in spec["choices"]


FLEET_WIDE = role_file("common", "defaults", "main.yml")


@pytest.mark.parametrize("role", ROLE_NAMES)
def test_role_variables_are_namespaced(role: str) -> None:
    for name in role_file(role, "defaults", "main.yml"):
        if role == "common":  # named for the fleet, or for the role they mostly concern
            assert name.startswith("fledge_") or name.split("_")[0] in ROLE_NAMES, name
        else:
            assert name.startswith(f"{role}_"), name
    for name in role_file(role, "vars", "main.yml") if (ROLES / role / "vars").exists() else {}:
        assert name.startswith(f"_{role}_"), name


@pytest.mark.parametrize("role", [r for r in ROLE_NAMES if r != "common"])
def test_fleet_wide_settings_are_declared_once(role: str) -> None:
    """Every other role reads them from fledge.edge.common, on which it depends."""
    assert not set(role_file(role, "defaults", "main.yml")) & set(FLEET_WIDE)
    meta = role_file(role, "meta", "main.yml")
    assert {"role": "fledge.edge.common"} in meta["dependencies"]


def test_the_controller_and_the_default_app_pin_the_fleets_flower() -> None:
    """Python packaging cannot read the collection: the pins must follow it."""
    version = FLEET_WIDE["flower_version"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert f"flwr=={version}" in pyproject["project"]["dependencies"]
    app = tomllib.loads((REPO / "cli/fledge/apps/digits/pyproject.toml").read_text())
    assert f"flwr=={version}" in app["project"]["dependencies"]
    task = ast.parse((REPO / "cli/fledge/apps/digits/fledge_digits/task.py").read_text())
    constants = {
        node.targets[0].id: node.value.value
        for node in task.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
    }
    assert constants["PARTITION_FILE"] == data.PARTITION_FILE


def test_the_cli_uses_this_checkouts_collection() -> None:
    assert collection_dir().resolve() == (REPO / "collection").resolve()
    assert (
        REPO
        / "playbooks"
        / "collections"
        / "ansible_collections"
        / "fledge"
        / "edge"
        / "galaxy.yml"
    ).is_file()
