# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""File writes that never leave a half-written file behind."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def atomic_write(path: Path, data: bytes | str, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file.

    The temporary file is created with ``mode`` from the start, so a private
    key is never readable by others, not even for an instant. Without a
    ``mode``, a file that exists keeps its own (an inventory someone made
    0600 stays 0600); a new one is 0644. An OSError names ``path``, not the
    temporary file.
    """
    path = Path(path)
    if mode is None:
        mode = _mode_of(path, default=0o644)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None:
            # Name the file being written: not its temporary twin, nor no file at all.
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise


def _mode_of(path: Path, default: int) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return default


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it readable by its owner only."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(PRIVATE_DIR)
    return path
