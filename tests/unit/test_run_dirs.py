"""fledge's hook for Flower's app processes: each run works in a directory of its own."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

HOOK = Path(__file__).resolve().parents[2] / "collection/roles/flower/files/sitecustomize.py"


def hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fledge_hook", HOOK)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # outside Flower's app processes it changes nothing
    return module


class _Context:
    def __init__(self, run_id: int) -> None:
        self.run_id = run_id


class _App:
    def __call__(self, message: object = None, context: object = None) -> str:
        Path("written-by-the-app").write_text("here")
        return os.getcwd()


def test_an_app_runs_in_its_runs_directory_and_old_ones_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    module = hook()
    runs = tmp_path / "runs"
    module._in_run_dir(_App, runs, 2)
    for run_id in (1, 2, 3):
        assert _App()(message=None, context=_Context(run_id)) == str(runs / str(run_id))
        time.sleep(0.01)  # distinct modification times
    assert (runs / "3" / "written-by-the-app").is_file()
    assert sorted(p.name for p in runs.iterdir()) == ["2", "3"]  # the newest two are kept
    _App()(None, _Context(3))  # a later message of the same run: the same directory
    assert sorted(p.name for p in runs.iterdir()) == ["2", "3"]


@pytest.mark.parametrize("argv0", ["flower-supernode", "python"])
def test_only_flowers_app_processes_are_touched(tmp_path: Path, argv0: str) -> None:
    """The daemons, and any other Python of the venv, keep their own working directory."""
    script = tmp_path / argv0
    script.write_text(
        "import flwr.clientapp, sys\nprint(flwr.clientapp.ClientApp.__call__.__qualname__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(HOOK.parent), "FLEDGE_RUNS_DIR": str(tmp_path / "r")}
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "ClientApp.__call__", out.stderr


def test_in_a_clientapp_process_the_call_is_wrapped(tmp_path: Path) -> None:
    script = tmp_path / "flwr-clientapp"
    script.write_text(
        "import flwr.clientapp, flwr.serverapp\n"
        "print(flwr.clientapp.ClientApp.__call__.__qualname__,"
        " flwr.serverapp.ServerApp.__call__.__qualname__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(HOOK.parent), "FLEDGE_RUNS_DIR": str(tmp_path / "r")}
    out = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.split() == ["_in_run_dir.<locals>.__call__"] * 2, out.stderr
