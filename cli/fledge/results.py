"""A run's results folder on the controller: ``<state dir>/runs/<run id>/``.

What `fledge round start` leaves for every run it started:

    summary.json    the run as the SuperLink reported it, its rounds, its config
    rounds.json     the rounds' metrics, one object per round
    rounds.csv      the same, for a spreadsheet
    metrics.png     loss and accuracy per round, when the run reported them
    serverapp.log   the ServerApp's whole log
    files/          what the ServerApp wrote in its working directory
    devices/HOST/   files fetched from a device on request (`fledge round fetch`)

Files come from hosts as a tar stream over the operator's SSH login (root
reads the services' private directories through ``sudo -n``), unpacked with
tarfile's ``data`` filter: no absolute paths, no links out, no devices.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from fledge import chart, remote
from fledge.errors import FledgeError
from fledge.flower.follow import Outcome
from fledge.flower.metrics import ANSI
from fledge.flower.records import RoundMetrics, RunInfo
from fledge.fsutil import atomic_write, open_state_dir, private_dir
from fledge.inventory import Host, Inventory
from fledge.remote import SUDO_FIX, Shell, needs_password, sudo

RUNS = "runs"
SUMMARY = "summary.json"
ROUNDS_JSON = "rounds.json"
ROUNDS_CSV = "rounds.csv"
CHART = "metrics.png"
LOG = "serverapp.log"
FILES = "files"
DEVICES = "devices"
# Seconds a host's tar stream may stall before fledge gives up on it.
FETCH_TIMEOUT = 120.0
_CSV_COLUMNS = ("round", "nodes", "train_loss", "loss", "accuracy")


@dataclass(frozen=True)
class Summary:
    """What summary.json holds."""

    info: RunInfo
    rounds: list[RoundMetrics]
    stopped_by: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    files_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return self.info.to_json() | {
            "rounds": [m.to_json() for m in self.rounds],
            "stopped_by": self.stopped_by,
            "config": self.config,
            "files": self.files,
            "files_error": self.files_error,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Summary:
        return cls(
            info=RunInfo.from_record(doc),
            rounds=[RoundMetrics(**m) for m in doc["rounds"]],
            stopped_by=doc.get("stopped_by"),
            config=dict(doc.get("config") or {}),
            files=list(doc.get("files") or []),
            files_error=doc.get("files_error"),
        )


def folder(state_dir: Path, run_id: str) -> Path:
    return state_dir / RUNS / str(run_id)


def saved_runs(state_dir: Path) -> set[str]:
    """The IDs of the runs that have a results folder."""
    runs = state_dir / RUNS
    return {p.name for p in runs.iterdir() if (p / SUMMARY).is_file()} if runs.is_dir() else set()


def save(state_dir: Path, summary: Summary, log_text: str) -> Path:
    """Write the run's summary, rounds, chart and log; return its folder."""
    path = private_dir(folder(state_dir, summary.info.run_id))
    rounds = [m.to_json() for m in summary.rounds]
    atomic_write(path / SUMMARY, json.dumps(summary.to_json(), indent=2) + "\n")
    atomic_write(path / ROUNDS_JSON, json.dumps(rounds, indent=2) + "\n")
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rounds)
    atomic_write(path / ROUNDS_CSV, table.getvalue())
    atomic_write(path / LOG, ANSI.sub("", log_text))
    if chart.has_data(summary.rounds):
        title = f"run {summary.info.run_id}: {summary.info.app}"
        atomic_write(path / CHART, chart.metrics_png(summary.rounds, title))
    return path


def load(state_dir: Path, run_id: str) -> tuple[Path, Summary]:
    """The folder and summary of a run fledge started; a FledgeError when it has none."""
    path = folder(state_dir, run_id)
    try:
        return path, Summary.from_json(json.loads((path / SUMMARY).read_text()))
    except FileNotFoundError:
        raise FledgeError(
            f"run {run_id} has no results folder on this controller",
            path=path,
            fix="results are kept for the runs `fledge round start` started from here; "
            "`fledge round list` shows which have one, `fledge round logs RUN` shows any "
            "run's ServerApp log",
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FledgeError(
            f"the run's summary cannot be read ({exc})",
            path=path / SUMMARY,
            fix="it is written by `fledge round start`; restore it or remove the folder",
        ) from None


def keep(fleet: Inventory, outcome: Outcome, config: dict[str, Any]) -> tuple[Path, Summary]:
    """Fetch what the run's ServerApp wrote on the coordinator and save the
    run's results folder; a failed fetch is recorded, not raised: the run's
    outcome stands, and its summary says what is missing."""
    run_id = outcome.info.run_id
    path = folder(open_state_dir(fleet.state_dir), run_id)
    files: list[str] = []
    error = None
    try:
        files = fetch_run_dir(fleet.superlink, "_superlink_runs_dir", run_id, path / FILES)
    except FledgeError as exc:
        error = str(exc)
    summary = Summary(outcome.info, outcome.rounds, outcome.stopped_by, config, files, error)
    return save(fleet.state_dir, summary, outcome.log), summary


def fetch_run_dir(
    host: Host, runs_dir_var: str, run_id: str, dest: Path, members: list[str] | None = None
) -> list[str]:
    """:func:`fetch` from the run's working directory on ``host``, whose runs
    live in its variable ``runs_dir_var`` (as the roles place them)."""
    remote_dir = posixpath.join(str(host.vars[runs_dir_var]), str(run_id))
    try:
        with remote.shell(host) as shell:
            return fetch(shell, remote_dir, dest, members)
    except FledgeError as exc:
        raise FledgeError(
            f"cannot copy {remote_dir}: {exc.message}", host=host.name, fix=exc.fix
        ) from None


def fetch(shell: Shell, remote_dir: str, dest: Path, members: list[str] | None = None) -> list[str]:
    """Copy ``remote_dir`` (or only ``members`` of it, relative paths) from a
    host into ``dest``; return the files copied, relative to ``dest``.

    A missing ``remote_dir`` copies nothing (the app wrote nothing there).
    """
    status, _, errors = shell.run(sudo(["test", "-d", remote_dir]))
    if needs_password(errors):
        raise FledgeError("sudo asks for a password", fix=SUDO_FIX)
    if status != 0:
        if members:
            raise FledgeError(f"{remote_dir} does not exist on the host")
        return []
    argv = sudo(["tar", "-C", remote_dir, "-cf", "-", "--", *(members or ["."])])
    copied = []
    private_dir(dest)
    with shell.stream(argv, timeout=FETCH_TIMEOUT) as stream, _open_tar(stream) as tar:
        for member in tar:
            if not (member.isfile() or member.isdir()):
                continue  # links, devices, pipes: nothing an app's results need
            try:
                # As extract() filters it: a leading "/" dropped, or refused.
                name = tarfile.data_filter(member, str(dest)).name
                tar.extract(member, dest, filter="data")
            except tarfile.FilterError as exc:
                raise FledgeError(
                    f"the host sent a file outside the run's directory ({exc})"
                ) from None
            if member.isfile():
                copied.append(posixpath.normpath(name))
    return sorted(copied)


def member_path(path: str) -> str:
    """``path`` as a member of a run's directory: relative, inside it. Raises ValueError."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"{path!r} is not a path inside the run's directory")
    return str(pure)


def _open_tar(stream: Any) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=stream, mode="r|")
    except tarfile.ReadError as exc:
        raise FledgeError(f"the host sent no readable archive ({exc})") from None
