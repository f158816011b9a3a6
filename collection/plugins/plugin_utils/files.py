# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""File writes that never leave a half-written file behind, and private directories."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from ansible_collections.fledge.edge.plugins.plugin_utils.errors import FledgeError

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


def private_dir(path: Path, *, field: str | None = None) -> Path:
    """Create ``path`` (and missing parents) readable by its owner only, or check it.

    An existing directory that others may write is refused, not chmodded: it
    is not one fledge made (those are 0700 from the start), it may be shared
    (/tmp), and whoever can write there can swap the keys fledge keeps in it.
    One that only its owner can write is made 0700. ``field`` names the
    setting that chose the directory, for the error.
    """
    path = Path(path)
    _make_dirs(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise FledgeError(
            f"other users may write to this directory (mode {mode:04o}), "
            "and fledge keeps private keys in it",
            path=path,
            field=field,
            fix="use a directory of fledge's own (fledge creates a missing one, 0700); or, "
            f"if nobody else uses this one: chmod 700 {path}",
        )
    path.chmod(PRIVATE_DIR)
    return path


def _make_dirs(path: Path) -> None:
    """``mkdir -p``, but each directory it creates is 0700 from the start."""
    missing = []
    for directory in (path, *path.parents):
        if directory.exists():
            break
        missing.append(directory)
    for directory in reversed(missing):
        directory.mkdir(mode=PRIVATE_DIR, exist_ok=True)


def new_private_dir(parent: Path, name: str) -> Path:
    """A new private directory ``name`` (or ``name-1``, ...) in ``parent``: never one
    in use, even by a run started in the same second."""
    path, n = parent / name, 0
    while True:
        try:
            path.mkdir(mode=PRIVATE_DIR)
            return path
        except FileExistsError:
            n += 1
            path = parent / f"{name}-{n}"
