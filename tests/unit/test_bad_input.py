"""Bad input: a clear error (file, line, field, fix; exit 1; nothing written), no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fledge.commands import certs
from fledge.main import app

runner = CliRunner()


def fledge(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def failed(result, *words: str) -> bool:
    """Exit code 1, each word in the message on stderr, and no traceback anywhere."""
    text = result.stderr + result.stdout
    assert result.exit_code == 1, text
    assert isinstance(result.exception, SystemExit), f"crashed: {result.exception!r}"
    assert "Traceback" not in text
    missing = [w for w in words if w not in result.stderr]
    assert not missing, f"{missing} not in: {result.stderr}"
    return True


def write_inventory(path: Path, superlink_vars: str = "") -> Path:
    """A two-host inventory; ``superlink_vars`` is YAML flow text such as ``a: 1``."""
    coordinator = ", ".join(v for v in ("ansible_host: 10.0.0.1", superlink_vars) if v)
    path.write_text(
        "all:\n  children:\n"
        f"    superlink:\n      hosts:\n        coordinator: {{{coordinator}}}\n"
        "    supernodes:\n      hosts:\n        pi-1: {ansible_host: 10.0.0.21}\n"
    )
    return path


# --- errors as JSON on stdout (--format json) ----------------------------------


def test_json_error_for_a_missing_inventory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yml"
    result = fledge("inventory", "check", "-i", missing, "--format", "json")
    assert failed(result, "inventory not found")
    doc = json.loads(result.stdout)
    assert doc["error"] == "inventory not found"
    assert doc["path"] == str(missing) and "fledge inventory generate" in doc["fix"]


def test_json_error_for_certs_without_a_ca(tmp_path: Path) -> None:
    inv = write_inventory(tmp_path / "inv.yml")
    result = fledge("certs", "show", "-i", inv, "--format", "json")
    assert failed(result, "no certificate authority")
    doc = json.loads(result.stdout)
    assert doc["error"] == "no certificate authority found" and "fledge certs init" in doc["fix"]
    assert set(doc) <= {"error", "fix", "path", "line", "host", "field"}


def test_text_errors_leave_stdout_empty(tmp_path: Path) -> None:
    result = fledge("inventory", "check", "-i", tmp_path / "nowhere.yml")
    assert failed(result) and result.stdout == ""


# --- OS errors on a path: the path and the reason, no traceback ----------------


def test_a_state_dir_under_a_file_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "somefile"
    blocker.write_text("")
    state = blocker / "sub" / "state"
    inv = write_inventory(tmp_path / "inv.yml", f"fledge_state_dir: {state}")
    result = fledge("certs", "init", "-i", inv, "--format", "json")
    assert failed(result, "Not a directory", str(blocker / "sub"))
    assert json.loads(result.stdout)["path"].startswith(str(blocker))


def test_permission_denied_names_the_path_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root, whom chmod does not stop: raise what a user would get.
    def denied(path: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(Path, "mkdir", denied)
    inv = write_inventory(tmp_path / "inv.yml")
    result = fledge("certs", "init", "-i", inv)
    assert failed(result, "Permission denied", str(tmp_path / ".fledge"), "fix:")


# --- text output: what rich would misread ----------------------------------------


def test_fingerprints_keep_their_cd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inv = write_inventory(tmp_path / "inv.yml")
    assert fledge("certs", "init", "-i", inv).exit_code == 0
    describe = certs._describe

    def with_cd(path: Path, ca: object = None) -> dict:
        return describe(path, ca) | {"sha256": "12:cd:34"}  # rich's emoji code for a CD

    monkeypatch.setattr(certs, "_describe", with_cd)
    result = fledge("certs", "show", "-i", inv)
    assert result.exit_code == 0 and "12:cd:34" in result.stderr
