"""Where the fledge.edge collection that belongs to this fledge lives.

ansible-core looks for collections on its configured paths and on sys.path;
a stale copy anywhere there (molecule installs one under ~/.ansible) would
win over ours. fledge therefore always tells Ansible exactly where to look.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fledge.errors import FledgeError

NAMESPACE, NAME = "fledge", "edge"
_RELATIVE = Path("ansible_collections") / NAMESPACE / NAME


def collections_path() -> Path:
    """A directory holding ``ansible_collections/fledge/edge`` for this fledge.

    A source checkout comes first: an editable install also leaves a frozen
    copy of the collection in site-packages, taken when it was installed.
    """
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "collection" / "galaxy.yml").is_file():
        return checkout / "playbooks" / "collections"
    for entry in sys.path:
        if entry and (Path(entry) / _RELATIVE / "galaxy.yml").is_file():
            return Path(entry)
    raise FledgeError(
        "the fledge.edge collection is missing from this installation",
        fix="reinstall fledge (pip install --force-reinstall fledge-edge)",
    )


def collection_dir() -> Path:
    return collections_path() / _RELATIVE


def playbook(name: str) -> Path:
    """The path of one of the collection's playbooks, e.g. ``deploy``."""
    return collection_dir() / "playbooks" / f"{name}.yml"
