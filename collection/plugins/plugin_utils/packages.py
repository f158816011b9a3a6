# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""What Python packages each host of a fleet has, and whether an app's needs are met.

Every host installs Flower's virtual environment (and the SuperNode image is
built) from a wheelhouse archive that the controller downloaded for it; the
wheels in that archive are exactly what the host has. Provisioning records
them in the fleet's state directory (``packages.json``: per host, its
platform and ``{package: version}``), and `fledge round start` checks an
app's ``[project].dependencies`` against that record before a run that
would die on an ImportError on some host.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from ansible_collections.fledge.edge.plugins.plugin_utils.errors import FledgeError
from ansible_collections.fledge.edge.plugins.plugin_utils.files import (
    PRIVATE_FILE,
    atomic_write,
    private_dir,
)

RECORD = "packages.json"
FLWR = "flwr"


def archive_packages(archive: Path) -> dict[str, str]:
    """``{canonical name: version}`` of the wheels in a wheelhouse archive."""
    with tarfile.open(archive) as tar:
        names = [Path(name).name for name in tar.getnames() if name.endswith(".whl")]
    packages = {}
    for name in names:
        project, version, _, _ = parse_wheel_filename(name)
        packages[str(project)] = str(version)
    return packages


def record(state_dir: Path, hosts: Mapping[str, Mapping[str, Any]]) -> None:
    """Record (replace) what ``hosts`` have: ``{host: {"platform", "packages"}}``."""
    path = private_dir(state_dir) / RECORD
    doc = read(state_dir)
    doc.update({host: dict(entry) for host, entry in hosts.items()})
    atomic_write(path, json.dumps(doc, indent=2, sort_keys=True) + "\n", PRIVATE_FILE)


def read(state_dir: Path) -> dict[str, dict[str, Any]]:
    """The record, ``{}`` before a first provisioning that kept one."""
    path = state_dir / RECORD
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise FledgeError(
            f"the record of the fleet's packages cannot be read ({exc})",
            path=path,
            fix="remove it: the next provisioning writes it again",
        ) from None
    return doc if isinstance(doc, dict) else {}


def requirements(lines: Iterable[str], *, source: Path | str) -> list[Requirement]:
    """Parsed requirement specifiers; an invalid one is a FledgeError naming ``source``."""
    parsed = []
    for line in lines:
        try:
            parsed.append(Requirement(line))
        except InvalidRequirement as exc:
            raise FledgeError(
                f"{line!r} is not a requirement specifier ({exc})",
                path=source,
                fix="write it as pip does, e.g. scikit-learn>=1.5",
            ) from None
    return parsed


@dataclass
class Shortfall:
    """A requirement some hosts do not meet: absent, or another version."""

    requirement: Requirement
    missing: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # host: the version it has

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"missing on {', '.join(self.missing)}")
        by_version: dict[str, list[str]] = {}
        for host, version in self.versions.items():
            by_version.setdefault(version, []).append(host)
        parts += [f"{v} on {', '.join(hosts)}" for v, hosts in sorted(by_version.items())]
        return f"{self.requirement} ({'; '.join(parts)})"


def shortfalls(
    needed: Iterable[Requirement], recorded: Mapping[str, Mapping[str, Any]], hosts: Iterable[str]
) -> list[Shortfall]:
    """The requirements that some of ``hosts`` do not meet, by their record.

    Markers are read for each host's platform; extras are not checked (an
    app's ``flwr[simulation]`` needs the simulation engine on the developer's
    machine, never on a fleet).
    """
    found = []
    for requirement in needed:
        shortfall = Shortfall(requirement)
        for host in hosts:
            entry = recorded[host]
            if requirement.marker and not requirement.marker.evaluate(_environment(entry)):
                continue
            version = entry["packages"].get(canonicalize_name(requirement.name))
            if version is None:
                shortfall.missing.append(host)
            elif not requirement.specifier.contains(version, prereleases=True):
                shortfall.versions[host] = version
        if shortfall.missing or shortfall.versions:
            found.append(shortfall)
    return found


def _environment(entry: Mapping[str, Any]) -> dict[str, str]:
    platform = entry.get("platform", {})
    python = str(platform.get("python", ""))
    return {
        "python_version": ".".join(python.split(".")[:2]),
        "python_full_version": python,
        "platform_machine": str(platform.get("arch", "")),
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
