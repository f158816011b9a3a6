"""The converged check: the controller's digest of its inputs, the host's fingerprint,
and that the fingerprint covers every path the roles write."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ansible_collections.fledge.edge.plugins.modules import converged as module
from ansible_collections.fledge.edge.plugins.plugin_utils import converged
from fledge.collection import collection_dir

# --- the controller's inputs ------------------------------------------------


@pytest.fixture
def fleet(tmp_path: Path) -> dict:
    """A collection, an inventory with host_vars, and a state dir, as the digest reads them."""
    collection = tmp_path / "collection"
    (collection / "roles" / "r" / "tasks").mkdir(parents=True)
    (collection / "roles" / "r" / "tasks" / "main.yml").write_text("---\n")
    inventory = tmp_path / "fleet" / "fleet.yml"
    (inventory.parent / "host_vars").mkdir(parents=True)
    inventory.write_text("all: {}\n")
    (inventory.parent / "host_vars" / "pi-1.yml").write_text("x: 1\n")
    state = inventory.parent / ".fledge"
    for name in ("pki", "nodes", "data", "runner", "runs", "flwr"):
        (state / name).mkdir(parents=True)
    (state / "pki" / "ca.crt").write_text("CA")
    return {
        "collection": collection,
        "ansible_version": "2.19.4",
        "inventory_sources": [str(inventory)],
        "playbook_dir": str(tmp_path / "playbooks"),
        "extra_vars": {},
        "state_dir": state,
    }


def digest(fleet: dict) -> str:
    converged.collection_digest.cache_clear()
    return converged.inputs_digest(**fleet)


@pytest.mark.parametrize(
    "change",
    [
        "inventory",
        "host_vars",
        "group_vars beside the playbook",
        "extra vars",
        "certificate",
        "enrolment",
        "partition",
        "app packages",
        "collection",
        "ansible",
    ],
)
def test_every_input_counts(fleet: dict, change: str) -> None:
    before = digest(fleet)
    inventory = Path(fleet["inventory_sources"][0])
    state: Path = fleet["state_dir"]
    if change == "inventory":
        inventory.write_text("all: {vars: {superlink_port: 9443}}\n")
    elif change == "host_vars":
        (inventory.parent / "host_vars" / "pi-2.yml").write_text("y: 2\n")
    elif change == "group_vars beside the playbook":
        (Path(fleet["playbook_dir"]) / "group_vars").mkdir(parents=True)
        (Path(fleet["playbook_dir"]) / "group_vars" / "all.yml").write_text("z: 3\n")
    elif change == "extra vars":
        fleet["extra_vars"] = {"supernode_reenrol": ["pi-1"]}
    elif change == "certificate":
        (state / "pki" / "superlink.crt").write_text("cert")
    elif change == "enrolment":
        (state / "nodes" / "pi-1.json").write_text("{}")
    elif change == "partition":
        (state / "data" / "pi-1.npz").write_bytes(b"data")
    elif change == "app packages":
        (state / "app-packages.txt").write_text("tabulate\n")
    elif change == "collection":
        (fleet["collection"] / "roles" / "r" / "tasks" / "main.yml").write_text("---\n# x\n")
    elif change == "ansible":
        fleet["ansible_version"] = "2.19.5"
    assert digest(fleet) != before


def test_what_the_cli_keeps_for_itself_does_not_count(fleet: dict) -> None:
    before = digest(fleet)
    state: Path = fleet["state_dir"]
    (state / "runner" / "stdout").write_text("log")
    (state / "runs" / "7").mkdir()
    (state / "flwr" / "config.toml").write_text("x")
    (state / "packages.json").write_text("{}")
    (fleet["collection"] / "roles" / "r" / "__pycache__").mkdir()
    (fleet["collection"] / "roles" / "r" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    fleet["extra_vars"] = {"fledge_full": True}  # how the run goes, not what hosts become
    assert digest(fleet) == before


# --- the host's fingerprint ---------------------------------------------------


@pytest.fixture
def host(tmp_path: Path) -> dict:
    etc = tmp_path / "etc" / "fledge"
    (etc / "tls").mkdir(parents=True)
    (etc / "tls" / "ca.crt").write_text("CA")
    (etc / "runtime").mkdir()
    venv = tmp_path / "venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    (site / "flwr-1.42.0.dist-info").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    var = tmp_path / "var"
    (var / "supernode").mkdir(parents=True)
    (var / "supernode" / "state.db").write_text("1")
    return {
        "files": [str(etc)],
        "exclude": [str(etc / "runtime")],
        "shallow": [str(var), str(var / "*")],
        "venv": str(venv),
        "units": [],
        "users": [],
        "groups": [],
        "paths": {"etc": etc, "site": site, "var": var},
    }


def fingerprint(host: dict) -> str:
    return module.fingerprint({k: v for k, v in host.items() if k != "paths"})


@pytest.mark.parametrize("change", ["content", "mode", "new file", "package", "state dir mode"])
def test_a_change_fledge_made_counts(host: dict, change: str) -> None:
    before = fingerprint(host)
    paths = host["paths"]
    if change == "content":
        (paths["etc"] / "tls" / "ca.crt").write_text("another CA")
    elif change == "mode":
        (paths["etc"] / "tls" / "ca.crt").chmod(0o666)
    elif change == "new file":
        (paths["etc"] / "tls" / "extra.pem").write_text("x")
    elif change == "package":
        (paths["site"] / "flwr-1.42.0.dist-info").rename(paths["site"] / "flwr-1.43.0.dist-info")
    elif change == "state dir mode":
        (paths["var"] / "supernode").chmod(0o777)
    assert fingerprint(host) != before


def test_what_services_change_while_they_run_does_not_count(host: dict) -> None:
    before = fingerprint(host)
    paths = host["paths"]
    (paths["etc"] / "runtime" / "cache").write_text("x")  # excluded
    (paths["var"] / "supernode" / "state.db").write_text("2")  # shallow: metadata only
    (paths["etc"] / "tls" / "__pycache__").mkdir()
    assert fingerprint(host) == before


def test_a_stamp_is_written_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / ".provisioned"
    module.write_stamp(str(path), {"inputs": "a", "fingerprint": "b"})
    assert module.read_stamp(str(path)) == {"inputs": "a", "fingerprint": "b"}
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("not json")
    assert module.read_stamp(str(path)) is None


# --- coverage of what the roles write -----------------------------------------

ROLES = collection_dir() / "roles"
# Written only while a task runs, then removed; or on the controller.
TRANSIENT = {"_supernode_container_upload", "_supernode_key_upload"}
CONTROLLER = {"_dataset_controller_dir", "_common_wheelhouse_cache", "_common_image_cache"}
# The modules that write a file or directory on the host.
WRITERS = {"file", "copy", "template", "lineinfile", "blockinfile", "replace", "unarchive"}


def _variables() -> dict[str, str]:
    """Every role's defaults and vars that are plain strings (not the results of tasks)."""
    found: dict[str, str] = {}
    for kind in ("defaults", "vars"):
        for path in ROLES.glob(f"*/{kind}/main.yml"):
            for key, value in (yaml.safe_load(path.read_text()) or {}).items():
                if isinstance(value, str) and "__" not in value:
                    found[key] = value
    return found


def _render(text: str, variables: dict[str, str], depth: int = 0) -> str | None:
    """``{{ name }}`` and ``{{ name }}/x`` with the roles' values; None when not that simple."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables or depth > 8:
            raise KeyError(name)
        return _render(variables[name], variables, depth + 1) or ""

    try:
        return re.sub(r"\{\{\s*(\w+)\s*(?:\|\s*dirname\s*)?\}\}", one, text).strip()
    except KeyError:
        return None


def _written_paths() -> list[tuple[str, str]]:
    """(task file, path) for each dest/path a role's task names on the host."""
    found = []
    for path in ROLES.glob("*/tasks/*.yml"):
        for task in _tasks(yaml.safe_load(path.read_text()) or []):
            if task.get("delegate_to") or task.get("run_once"):
                continue
            for name, module_args in task.items():
                if name.rsplit(".", 1)[-1] in WRITERS and isinstance(module_args, dict):
                    for key in ("dest", "path"):
                        if isinstance(module_args.get(key), str):
                            found.append(
                                (f"{path.parent.parent.name}/{path.name}", module_args[key])
                            )
    return found


def _tasks(tasks: list) -> list[dict]:
    flat = []
    for task in tasks:
        if isinstance(task, dict):
            flat.append(task)
            for key in ("block", "rescue", "always"):
                flat += _tasks(task.get(key) or [])
    return flat


def test_every_path_the_roles_write_is_in_the_fingerprint() -> None:
    variables = _variables()
    fingerprint = yaml.safe_load((ROLES / "preflight" / "vars" / "main.yml").read_text())[
        "_preflight_fingerprint"
    ]
    covered = [_render(p, variables) for p in fingerprint["files"] + fingerprint["shallow"]]
    roots = [p.rstrip("*").rstrip("/") for p in covered if p]
    unchecked = []
    for where, raw in _written_paths():
        names = set(re.findall(r"\{\{\s*(\w+)", raw))
        if names & (TRANSIENT | CONTROLLER) or "item" in names:
            continue
        path = _render(raw, variables)
        if path is None:
            unchecked.append((where, raw))
            continue
        assert any(path == root or path.startswith(root) for root in roots), (where, path)
    # A few paths come from task results; each is checked by hand, and stays few.
    assert len(unchecked) <= 6, unchecked
