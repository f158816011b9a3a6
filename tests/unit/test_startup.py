"""`fledge --help` and the light commands start without the heavy libraries: they are
imported by the commands that use them (fledge.lazy). Timed by bench/, not here."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import click
import pytest

from fledge.main import COMMANDS, load

HEAVY = ("paramiko", "docker", "cryptography", "ansible", "ansible_runner", "flwr", "matplotlib")


def loaded_after(code: str) -> set[str]:
    """Top-level packages whose code has run (a lazy module not yet used has not)."""
    probe = (
        f"{code}\nimport sys, json\n"
        "print(json.dumps(sorted(n for n, m in list(sys.modules.items())"
        " if type(m).__name__ != '_Deferred')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return {name.split(".")[0] for name in json.loads(out.splitlines()[-1])}


def test_the_command_tree_loads_no_heavy_library() -> None:
    assert not loaded_after("import fledge.main") & set(HEAVY)


def test_help_loads_no_heavy_library() -> None:
    code = "import fledge.main\ntry:\n    fledge.main.app(['--help'])\nexcept SystemExit:\n    pass"
    assert not loaded_after(code) & set(HEAVY)


def test_a_lazy_module_loads_when_used() -> None:
    assert "paramiko" in loaded_after(
        "from fledge.lazy import lazy\nssh = lazy('fledge.ssh')\nssh.connect"
    )


def test_help_imports_no_command_module() -> None:
    code = "import fledge.main\ntry:\n    fledge.main.app(['--help'])\nexcept SystemExit:\n    pass"
    probe = (
        f"{code}\nimport sys\n"
        "print(sorted(n for n in sys.modules if n.startswith('fledge.commands.')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.splitlines()[-1] == "[]"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_summary_is_the_commands_own_first_line(name: str) -> None:
    """`fledge --help` lists COMMANDS without loading them: they must say what the commands do."""
    command = load(name)
    assert command.name == name
    first = " ".join((command.help or "").split("\n\n")[0].split())
    assert first == COMMANDS[name].summary


def _commands(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}")


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_commands_summary_is_one_line(name: str) -> None:
    """Help lists show a command's first paragraph as it is written: one line reads well."""
    for path, command in _commands(load(name), name):
        first = (command.help or "").split("\n\n")[0].strip()
        assert first and "\n" not in first, f"fledge {path}: {first!r}"


def test_a_lazy_module_is_run_once_for_many_threads() -> None:
    """fleet status and logs --all reach hosts from threads (a second thread once saw a
    half-run module)."""
    code = (
        "import sys, threading, time, types\n"
        "from fledge.lazy import lazy\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "import importlib.abc, importlib.machinery, importlib.util\n"
        "runs = []\n"
        "class Slow(importlib.abc.Loader):\n"
        "    def exec_module(self, module):\n"
        "        runs.append(1); time.sleep(0.3); module.ready = True\n"
        "class Finder(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        return importlib.machinery.ModuleSpec(name, Slow()) if name == 'slow' else None\n"
        "sys.meta_path.insert(0, Finder())\n"
        "slow = lazy('slow')\n"
        "with ThreadPoolExecutor(8) as pool:\n"
        "    seen = list(pool.map(lambda _: slow.ready, range(8)))\n"
        "print(seen == [True] * 8, len(runs))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.split() == ["True", "1"]
