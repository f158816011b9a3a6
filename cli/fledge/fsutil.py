"""Files: text that must be UTF-8, and writes that never leave a half-written file behind.

The writes are the collection's (its files module): its controller-side code
writes the fleet's keys and certificates with the same functions the CLI uses.
"""

from __future__ import annotations

from importlib.resources.abc import Traversable

from ansible_collections.fledge.edge.plugins.plugin_utils.files import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    atomic_write,
    private_dir,
)
from fledge.errors import FledgeError

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "atomic_write", "private_dir", "read_utf8"]


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
