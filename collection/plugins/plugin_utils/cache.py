# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""The controller's cache of downloads and builds, shared by every fleet it provisions.

An entry is a file named after what it contains (a digest of its recipe), so
a fleet that needs the same thing finds it, and a different recipe never
meets an old file. Each entry is made once: under an exclusive lock, so that
two provisioning runs at once build it once, and with its SHA-256 beside it,
checked on every reuse, so that a truncated or damaged file is made again,
never shipped to devices.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

CHECKSUM_SUFFIX = ".sha256"


def present(entry: Path) -> bool:
    """True when ``entry`` exists and matches the checksum recorded when it was made."""
    checksum = _checksum_file(entry)
    try:
        recorded = checksum.read_text().split()[0]
    except (OSError, IndexError):
        return False
    return entry.is_file() and _sha256(entry) == recorded


def ensure(entry: Path, make: Callable[[Path], None]) -> bool:
    """Make ``entry`` unless it is present; return True when it was made now.

    ``make(path)`` writes the entry's content to ``path``, a scratch file in
    the cache's directory; the entry appears only once it is complete.
    """
    if present(entry):
        return False
    entry.parent.mkdir(parents=True, exist_ok=True)
    with _locked(entry.parent / f".{entry.name}.lock"):
        if present(entry):  # made by another run while this one waited
            return False
        with tempfile.TemporaryDirectory(dir=entry.parent, prefix=f".{entry.name}.") as tmp:
            scratch = Path(tmp) / entry.name
            make(scratch)
            digest = _sha256(scratch)
            os.replace(scratch, entry)
        _checksum_file(entry).write_text(f"{digest}  {entry.name}\n")
    return True


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _checksum_file(entry: Path) -> Path:
    return entry.with_name(entry.name + CHECKSUM_SUFFIX)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
