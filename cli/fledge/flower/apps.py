"""Flower apps: fledge's default one, and reading an app's run config."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from fledge.errors import FledgeError
from fledge.fsutil import read_utf8

# Directories never worth copying when staging an app (flwr excludes them
# from the app bundle anyway).
_NOT_APP_FILES = frozenset({"__pycache__", ".git", ".venv", ".flwr"})


def default_app() -> Traversable:
    """fledge's packaged digits app."""
    return resources.files("fledge") / "apps" / "digits"


def read_pyproject(app: Traversable) -> dict[str, Any]:
    """The app's pyproject.toml, checked to be a Flower app's."""
    pyproject = app / "pyproject.toml"
    fix = "point --app at a Flower app: a directory whose pyproject.toml has [tool.flwr.app]"
    try:
        doc = tomllib.loads(read_utf8(pyproject, fix="save it as UTF-8, which TOML requires"))
    except FileNotFoundError:
        raise FledgeError(
            "this is not a Flower app: pyproject.toml is missing", path=str(pyproject), fix=fix
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise FledgeError(f"not valid TOML: {exc}", path=str(pyproject)) from None
    if not isinstance(doc.get("tool", {}).get("flwr", {}).get("app"), dict):
        raise FledgeError(
            "this is not a Flower app: [tool.flwr.app] is missing", path=str(pyproject), fix=fix
        )
    return doc


def read_app_config(app: Traversable) -> dict[str, Any]:
    """The app's run config: ``[tool.flwr.app.config]`` of its pyproject.toml."""
    config = read_pyproject(app)["tool"]["flwr"]["app"].get("config", {})
    return config if isinstance(config, dict) else {}


def app_dependencies(app: Traversable) -> list[str]:
    """The app's ``[project].dependencies``: what its ServerApp and ClientApp import."""
    dependencies = read_pyproject(app).get("project", {}).get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise FledgeError(
            "[project].dependencies must be a list of requirement strings",
            path=str(app / "pyproject.toml"),
            field="dependencies",
            fix='write it as dependencies = ["flwr==1.42.0", "scikit-learn>=1.5"]',
        )
    return dependencies


def copy_app(src: Traversable, dest: Path) -> None:
    dest.mkdir()
    for entry in src.iterdir():
        if entry.name in _NOT_APP_FILES:
            continue
        if entry.is_dir():
            copy_app(entry, dest / entry.name)
        else:
            (dest / entry.name).write_bytes(entry.read_bytes())


def config_value(value: Any) -> str:
    """A value in flwr's ``-c key=value`` syntax (TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


ROUNDS_KEY = "num-server-rounds"
MIN_NODES_KEY = "min-nodes"


@dataclass(frozen=True)
class RunConfig:
    """What a run is started with: overrides of the app's run config, and the rounds to expect."""

    overrides: dict[str, Any]
    rounds: int | None

    def describe(self) -> str:
        return (
            ", ".join(f"{k}={v}" for k, v in self.overrides.items()) or "the app's own run config"
        )


def run_config(
    app: Traversable, *, rounds: int | None, min_nodes: int, values: Sequence[str]
) -> RunConfig:
    """Overrides for the keys the app declares: ``values`` (``KEY=VALUE``), then the
    number of rounds and of nodes.

    flwr rejects an override for a key the app does not declare, so min-nodes
    is passed only where it exists; ``--rounds`` on an app without
    num-server-rounds, or a value for a key it lacks, is an error rather than
    silently ignored.
    """
    config = read_app_config(app)
    pyproject = str(app / "pyproject.toml")
    overrides: dict[str, Any] = {}
    for item in values:
        key, value = _config_item(item)
        if key not in config:
            raise FledgeError(
                f"--config {item}: the app declares no '{key}' in its run config",
                path=pyproject,
                field=key,
                fix=f"use one of {', '.join(sorted(config)) or '(none)'}, or add '{key}' "
                "to [tool.flwr.app.config]",
            )
        overrides[key] = value
    if rounds is not None:
        if ROUNDS_KEY not in config:
            raise FledgeError(
                f"--rounds needs the app to declare '{ROUNDS_KEY}' in its run config",
                path=pyproject,
                field=ROUNDS_KEY,
                fix=f"add {ROUNDS_KEY} to [tool.flwr.app.config] and use it in the ServerApp, "
                "or leave out --rounds",
            )
        overrides[ROUNDS_KEY] = rounds
    if MIN_NODES_KEY in config:
        overrides[MIN_NODES_KEY] = min_nodes
    total = overrides.get(ROUNDS_KEY, config.get(ROUNDS_KEY))
    return RunConfig(overrides, total if isinstance(total, int) else None)


def _config_item(item: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE in TOML, as flwr reads it; a bare word is a string."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise FledgeError(
            f"--config {item!r} is not KEY=VALUE", fix="write it as --config KEY=VALUE"
        )
    try:
        return key.strip(), tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return key.strip(), text
