# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""The controller's half of the converged check: one digest of everything a
provisioning run's outcome depends on, on the controller's side.

A host is skipped by the deploy playbook when this digest and the host's own
fingerprint (the ``converged`` module) both equal what the last complete run
recorded on it. The digest covers:

- the collection (its roles, plugins and playbooks) and ansible-core's version;
- the inventory sources, and the group_vars/ and host_vars/ beside them and
  beside the playbook;
- the extra variables of the run;
- the fleet's state on the controller that the roles read: the CA and
  certificates (pki/), the device enrolments (nodes/), the data partitions
  (data/) and the apps' packages (app-packages.txt).

Coarse on purpose: any change there means a full run on every host, which
is never wrong, only slower.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

# State the roles read (pki/, nodes/, data/, app-packages.txt), relative to
# fledge_state_dir; runner logs, flwr homes, results are the CLI's own.
STATE_INPUTS = ("pki", "nodes", "data", "app-packages.txt")
VARS_DIRS = ("group_vars", "host_vars")
# Extra variables that choose how a run goes, not what the hosts become.
RUN_SWITCHES = frozenset({"fledge_full"})


def inputs_digest(
    *,
    collection: Path,
    ansible_version: str,
    inventory_sources: Iterable[str],
    playbook_dir: str | None,
    extra_vars: Mapping[str, Any],
    state_dir: Path,
) -> str:
    digest = hashlib.sha256()
    digest.update(f"ansible-core {ansible_version}\n".encode())
    digest.update(f"collection {collection_digest(collection)}\n".encode())
    for path in _inventory_files(inventory_sources, playbook_dir):
        digest.update(f"{path} {_file_digest(path)}\n".encode())
    switches = {k: v for k, v in extra_vars.items() if k not in RUN_SWITCHES}
    digest.update(json.dumps(switches, sort_keys=True, default=str).encode())
    for name in STATE_INPUTS:
        for path in _tree(state_dir / name):
            digest.update(f"{path.relative_to(state_dir)} {_file_digest(path)}\n".encode())
    return digest.hexdigest()


@functools.cache
def collection_digest(root: Path) -> str:
    """The collection's files, once per process (a run asks for every host)."""
    digest = hashlib.sha256()
    for path in _tree(root):
        digest.update(f"{path.relative_to(root)} {_file_digest(path)}\n".encode())
    return digest.hexdigest()


def _inventory_files(sources: Iterable[str], playbook_dir: str | None) -> list[Path]:
    roots: list[Path] = []
    for source in sources:
        path = Path(source)
        roots.append(path)
        roots += [(path if path.is_dir() else path.parent) / name for name in VARS_DIRS]
    if playbook_dir:
        roots += [Path(playbook_dir) / name for name in VARS_DIRS]
    files = {file for root in roots for file in _tree(root)}
    return sorted(files)


def _tree(root: Path) -> Iterator[Path]:
    """Files under ``root`` (or ``root`` itself), in a stable order; no caches."""
    if root.is_file():
        yield root
        return
    for directory, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if not name.endswith(".pyc"):
                yield Path(directory) / name


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
