# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""fledge: a working directory of each run's own for the apps Flower starts.

Flower starts each ServerApp (flwr-serverapp) and ClientApp (flwr-clientapp)
as a process in its service's working directory, which fledge's sandbox keeps
read-only; apps written like Flower's examples save files there (a final
model, say). Python imports this module when it starts, because fledge's
units put its directory on PYTHONPATH. In those two processes only, it runs
the app in ``$FLEDGE_RUNS_DIR/<run id>/`` (made on first use), and keeps the
``$FLEDGE_RUNS_KEEP`` newest of those directories, so that a device's small
SD card does not fill up. Anywhere else it does nothing.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

_APPS = {"flwr-serverapp", "flwr-clientapp"}


def _run_dir(base: Path, run_id: object, keep: int) -> Path:
    path = base / str(run_id)
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        runs = sorted(
            (p for p in base.iterdir() if p.is_dir() and p != path), key=lambda p: p.stat().st_mtime
        )
        for old in runs[: max(len(runs) - (keep - 1), 0)]:
            shutil.rmtree(old, ignore_errors=True)
    return path


def _in_run_dir(cls: type, base: Path, keep: int) -> None:
    call = cls.__call__

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        context = kwargs.get("context", args[-1] if args else None)
        os.chdir(_run_dir(base, context.run_id, keep))
        return call(self, *args, **kwargs)

    cls.__call__ = __call__


def _install() -> None:
    base = os.environ.get("FLEDGE_RUNS_DIR")
    if not base or os.path.basename(sys.argv[0] if sys.argv else "") not in _APPS:
        return
    keep = max(int(os.environ.get("FLEDGE_RUNS_KEEP", "5")), 1)
    try:
        from flwr.clientapp import ClientApp
        from flwr.serverapp import ServerApp
    except ImportError as exc:  # another Flower than fledge's: the service's own directory
        print(f"fledge: no run directory ({exc})", file=sys.stderr)
        return
    for cls in (ServerApp, ClientApp):
        _in_run_dir(cls, Path(base), keep)


_install()
