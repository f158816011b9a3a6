# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""The controller's record of which device is which node: the fleet's enrolments.

Each device makes its own key pair and keeps the private key; the
controller registers the public key with the SuperLink, which answers with
a node ID, and records here, one file per device under the fleet's state
directory (``nodes/<host>.json``, private): its public key, its node ID, when
it was registered and, once `fledge node revoke` took it out, when that was.
A revoked device stays revoked: provisioning enrols it again only when asked.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ansible_collections.fledge.edge.plugins.plugin_utils.errors import FledgeError
from ansible_collections.fledge.edge.plugins.plugin_utils.files import (
    PRIVATE_FILE,
    atomic_write,
    private_dir,
)

NODES_DIR = "nodes"


@dataclass(frozen=True)
class Enrolment:
    host: str
    public_key: str
    node_id: str
    registered_at: str
    revoked_at: str | None = None
    # Earlier enrolments of the same host (a reset device, a revoked one).
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def read(state_dir: Path, host: str) -> Enrolment | None:
    path = _path(state_dir, host)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return Enrolment(**doc)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as exc:
        raise FledgeError(
            f"the record of {host}'s enrolment cannot be read ({exc})",
            path=path,
            host=host,
            fix="restore it from a backup; or remove it, `fledge node revoke` the node IDs "
            "`fledge round nodes` shows for no host, and provision again",
        ) from None


def read_all(state_dir: Path) -> dict[str, Enrolment]:
    folder = Path(state_dir) / NODES_DIR
    hosts = sorted(path.stem for path in folder.glob("*.json")) if folder.is_dir() else []
    return {host: enrolment for host in hosts if (enrolment := read(state_dir, host))}


def record(state_dir: Path, host: str, public_key: str, node_id: str) -> Enrolment:
    """Record that ``host``'s ``public_key`` is registered as ``node_id``."""
    old = read(state_dir, host)
    history = [*old.history, _without_history(old)] if old else []
    enrolment = Enrolment(host, public_key.strip(), str(node_id), _now(), history=history)
    _write(state_dir, enrolment)
    return enrolment


def revoke(state_dir: Path, host: str) -> Enrolment:
    """Mark ``host`` as revoked (it may never have been enrolled: then it is, revoked)."""
    old = read(state_dir, host) or Enrolment(host, "", "", "")
    if old.revoked:
        return old
    enrolment = replace(old, revoked_at=_now())
    _write(state_dir, enrolment)
    return enrolment


def _without_history(enrolment: Enrolment) -> dict[str, Any]:
    doc = enrolment.to_json()
    doc.pop("history")
    return doc


def _write(state_dir: Path, enrolment: Enrolment) -> None:
    folder = private_dir(Path(state_dir) / NODES_DIR)
    text = json.dumps(enrolment.to_json(), indent=2) + "\n"
    atomic_write(folder / f"{enrolment.host}.json", text, PRIVATE_FILE)


def _path(state_dir: Path, host: str) -> Path:
    return Path(state_dir) / NODES_DIR / f"{host}.json"


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
