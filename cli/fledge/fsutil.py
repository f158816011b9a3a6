"""Files: text that must be UTF-8, the state dir, writes that never leave a half-written file.

The writes and private directories are the collection's (its files module):
its controller-side code writes the fleet's keys and certificates with the
same functions the CLI uses.
"""

from __future__ import annotations

from importlib.resources.abc import Traversable
from pathlib import Path

from ansible_collections.fledge.edge.plugins.plugin_utils.files import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    atomic_write,
    new_private_dir,
    private_dir,
)
from fledge.errors import FledgeError

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "atomic_write",
    "new_private_dir",
    "open_state_dir",
    "private_dir",
    "read_utf8",
]


def open_state_dir(path: Path) -> Path:
    """The fleet's state dir on the controller, which holds the CA key (see private_dir).

    Created 0700, or refused when others may write to it (fledge_state_dir: /tmp).
    """
    return private_dir(path, field="fledge_state_dir")


def read_utf8(path: Traversable, *, fix: str) -> str:
    """The text of ``path``; a FledgeError naming the line if it is not UTF-8.

    A leading byte-order mark (Excel's "CSV UTF-8", some Windows editors) is
    dropped.
    """
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FledgeError(
            f"not UTF-8 text (byte {data[exc.start]:#04x} cannot be decoded)",
            path=str(path),
            line=data.count(b"\n", 0, exc.start) + 1,
            fix=fix,
        ) from None
