"""The fast checks, each a test: the code and the collection are lint-clean and typed.

They run first (`pytest -m checks`; `.ci/run` stops within minutes when one
fails) and need nothing but the test tools the `test` extra installs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.checks

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
APP = REPO / "cli" / "fledge" / "apps" / "digits"


def run(*args: str, cwd: Path = REPO, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / args[0]), *args[1:]],
        cwd=cwd,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_ruff_finds_nothing() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout[-6000:]


def test_code_is_formatted() -> None:
    result = run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout[-6000:]


def test_mypy_is_clean_on_the_package_and_the_collections_plugins() -> None:
    result = run("mypy")  # what to check is in pyproject.toml
    assert result.returncode == 0, result.stdout[-6000:]


def test_mypy_is_clean_on_the_default_app() -> None:
    """A package of its own (fledge_digits), as Flower loads it."""
    result = run(
        "mypy", "--python-version", "3.11", "--check-untyped-defs", "--explicit-package-bases",
        "--no-incremental", "-p", "fledge_digits", cwd=APP, MYPYPATH=str(APP),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:]


def test_yamllint_is_clean() -> None:
    result = run("yamllint", "--strict", ".")
    assert result.returncode == 0, result.stdout[-6000:]


def test_ansible_lint_production_profile_is_clean() -> None:
    result = run(
        "ansible-lint", "--nocolor", "collection", "playbooks", "molecule",
        ANSIBLE_COLLECTIONS_PATH=str(REPO / "playbooks" / "collections"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "Profile 'production' was required, and it passed" in result.stderr
    # A plugin whose documentation does not parse is reported, but not counted.
    assert "[ERROR]" not in result.stderr, result.stderr[-3000:]
