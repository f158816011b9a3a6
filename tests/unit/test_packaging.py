"""The wheel is all a controller needs: it carries the collection and the default app.

Built without build isolation, with the hatchling of the test environment:
the unit tests need nothing from the package index.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_ships_the_collection_and_the_app(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("fledge_edge-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    collection = "ansible_collections/fledge/edge/"
    for expected in (
        "galaxy.yml",
        "meta/runtime.yml",
        "playbooks/deploy.yml",
        "plugins/action/wheelhouse.py",
        "roles/supernode/templates/fledge-supernode.service.j2",
        "roles/superlink/meta/argument_specs.yml",
    ):
        assert collection + expected in names, expected
    assert "fledge/apps/digits/pyproject.toml" in names
    # Every source header points at LICENSE: the wheel carries it (PEP 639).
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "fledge/apps/digits/fledge_digits/client_app.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # Only what Galaxy would ship of the collection (no tests, no molecule).
    tops = {n[len(collection) :].split("/")[0] for n in names if n.startswith(collection)}
    assert tops == {
        "galaxy.yml",
        "README.md",
        "CHANGELOG.md",
        "requirements.txt",
        "meta",
        "playbooks",
        "plugins",
        "roles",
    }
