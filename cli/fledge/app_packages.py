"""An app's packages against the fleet's: checked before a run, added by provisioning.

What each host has is provisioning's record (``plugin_utils.packages``). The
packages fledge adds for apps live in the controller's state
(``_common_app_packages_file`` of fledge.edge.common, one requirement per
line), which every provisioning installs, with the CLI or without.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ansible_collections.fledge.edge.plugins.plugin_utils import packages
from fledge.errors import FledgeError
from fledge.flower.apps import app_dependencies
from fledge.fsutil import atomic_write, open_state_dir
from fledge.inventory import Inventory

_HEADER = (
    "# Packages the fleet's Flower apps need besides flwr, added by `fledge provision --app`.\n"
    "# Every provisioning installs them on every host; remove a line to stop installing it.\n"
)


@dataclass(frozen=True)
class Check:
    """What a check of an app against the fleet found."""

    shortfalls: list[packages.Shortfall]
    unrecorded: list[str]  # hosts whose packages no provisioning recorded


def requirements_of(app: Traversable) -> list[Requirement]:
    return packages.requirements(app_dependencies(app), source=str(app / "pyproject.toml"))


def check(fleet: Inventory, app: Traversable) -> Check:
    """Which of the app's requirements some host of the fleet does not meet."""
    recorded = packages.read(fleet.state_dir)
    hosts = [h.name for h in fleet.hosts]
    known = [h for h in hosts if h in recorded]
    return Check(
        packages.shortfalls(requirements_of(app), recorded, known),
        [h for h in hosts if h not in recorded],
    )


def refusal(
    fleet: Inventory, app: Traversable, shortfalls: list[packages.Shortfall]
) -> FledgeError:
    """The error that stops a run whose app would fail to import on some host."""
    flwr = [s for s in shortfalls if canonicalize_name(s.requirement.name) == packages.FLWR]
    if flwr:
        return FledgeError(
            f"the app needs {flwr[0].describe()}; the fleet runs flwr "
            f"{fleet.superlink.vars['flower_version']} (flower_version)",
            path=str(app / "pyproject.toml"),
            field="dependencies",
            fix="make the app accept the fleet's Flower, or set flower_version in the inventory "
            "and upgrade the fleet (ansible-playbook fledge.edge.upgrade)",
        )
    return FledgeError(
        "the app needs packages the fleet does not have: "
        + "; ".join(s.describe() for s in shortfalls),
        path=str(app / "pyproject.toml"),
        field="dependencies",
        fix=f"`fledge provision -i {fleet.path} --app {app}` installs them on every host "
        "(downloaded once, on this controller), or add them to flower_extra_packages",
    )


@dataclass(frozen=True)
class Addition:
    """The fleet's app packages with an app's added: what provisioning will install."""

    path: Path
    lines: list[str]
    added: list[str]

    def save(self) -> None:
        if self.added:
            open_state_dir(self.path.parent)
            atomic_write(self.path, _HEADER + "".join(f"{line}\n" for line in self.lines))


def add(fleet: Inventory, apps: Sequence[Traversable]) -> Addition:
    """The apps' requirements (flwr aside: the fleet's is flower_version) added to
    those recorded for provisioning; a package recorded before with another
    specifier takes the new one. Nothing is written until :meth:`Addition.save`.
    """
    path = Path(fleet.superlink.vars["_common_app_packages_file"])
    names = {canonicalize_name(Requirement(line).name): line for line in _read_lines(path)}
    added = []
    for app in apps:
        check_flwr(fleet, app)
        for requirement in requirements_of(app):
            name = canonicalize_name(requirement.name)
            if name != packages.FLWR and names.get(name) != str(requirement):
                added.append(str(requirement))
                names[name] = str(requirement)
    return Addition(path, list(names.values()), added)


def check_flwr(fleet: Inventory, app: Traversable) -> None:
    """Refuse an app whose flwr requirement the fleet's flower_version does not meet."""
    version = str(fleet.superlink.vars["flower_version"])
    pinned = {fleet.superlink.name: {"packages": {packages.FLWR: version}}}
    flwr = [r for r in requirements_of(app) if canonicalize_name(r.name) == packages.FLWR]
    shortfalls = packages.shortfalls(flwr, pinned, list(pinned))
    if shortfalls:
        raise refusal(fleet, app, shortfalls)


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    packages.requirements(lines, source=path)  # a line that is not one: a clear error
    return lines
