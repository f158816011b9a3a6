"""The collection as Galaxy users get it: buildable, installable, documented (lint: test_checks.py).

No lab needed. The built artifact is also run for real, in --check mode on
a provisioned lab fleet, by tests/integration/test_fleet.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from helpers import BIN, REPO, build_and_install

ROLES = sorted(p.name for p in (REPO / "collection" / "roles").iterdir() if p.is_dir())


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess:
    base = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [*args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_galaxy_artifact_builds_installs_and_documents_every_role(tmp_path: Path) -> None:
    collections = build_and_install(tmp_path)
    (artifact,) = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(artifact) as tar:
        names = tar.getnames()
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]
    env = {
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
    }
    listed = run(str(BIN / "ansible-doc"), "-t", "role", "-l", "fledge.edge", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert sorted(json.loads(listed.stdout)) == [f"fledge.edge.{r}" for r in ROLES]
    for role in ROLES:
        doc = run(str(BIN / "ansible-doc"), "-t", "role", f"fledge.edge.{role}", env=env)
        assert doc.returncode == 0, doc.stderr
        # Its options are documented (the common role's are named for the fleet).
        assert ("fledge_" if role == "common" else f"{role}_") in doc.stdout
    modules = sorted(p.stem for p in (REPO / "collection/plugins/modules").glob("[a-z]*.py"))
    assert "container_image" in modules
    for module in modules:
        doc = run(str(BIN / "ansible-doc"), f"fledge.edge.{module}", env=env)
        assert doc.returncode == 0 and "EXAMPLES" in doc.stdout, doc.stderr


@pytest.mark.parametrize("playbook", ["deploy", "upgrade", "reset"])
def test_installed_playbooks_pass_syntax_check(tmp_path: Path, playbook: str) -> None:
    collections = build_and_install(tmp_path)
    env = {
        "ANSIBLE_COLLECTIONS_PATH": str(collections),
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "False",
    }
    result = run(
        str(BIN / "ansible-playbook"),
        "-i",
        "inventories/example.yml",
        "--syntax-check",
        f"fledge.edge.{playbook}",
        env=env,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "inventory", sorted((REPO / "inventories").glob("*.yml")), ids=lambda p: p.name
)
def test_shipped_inventories_parse_in_ansible(inventory: Path) -> None:
    result = run(str(BIN / "ansible-inventory"), "-i", str(inventory), "--list")
    assert result.returncode == 0, result.stderr
    groups = json.loads(result.stdout)
    assert groups["superlink"]["hosts"] and groups["supernodes"]["hosts"]
