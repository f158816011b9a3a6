"""The seam between fledge and Flower: the `flwr` CLI, pinned to flwr 1.42.

Flower's Python client for the Control API is internal and changes between
releases; its CLI with ``--format json`` is the stable interface. Everything
fledge asks a SuperLink goes through :func:`run_flwr`, the one place that
starts a process, so unit tests replace exactly that function.

The CLI is never trusted for success: in JSON mode it exits 0 on errors
(``{"success": false, ...}``), so every answer is parsed and checked here.
A run's outcome is read from ``flwr ls --run-id``, never from an exit code.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from fledge.errors import FledgeError
from fledge.fsutil import PRIVATE_FILE, atomic_write, open_state_dir, private_dir, read_utf8
from fledge.inventory import Inventory

CONNECTION = "fledge"
FLWR_HOME_NAME = "flwr"
CONFIG_FILE = "config.toml"
CA_CERT = "pki/ca.crt"
# Seconds one flwr call may take; starting the CLI alone costs ~1.5 s.
CALL_TIMEOUT = 120.0
# `flwr log --show` answers only once the run has written a log line; until
# then the SuperLink holds the request open. Give up early and retry later.
LOG_TIMEOUT = 15.0
COMPLETED = "finished:completed"
FINISHED = "finished"
# Directories never worth copying when staging an app (flwr excludes them
# from the app bundle anyway).
_NOT_APP_FILES = frozenset({"__pycache__", ".git", ".venv", ".flwr"})
_FIX_VERSION = "fledge needs flwr 1.42.x next to it: pip install 'flwr==1.42.0'"


@dataclass(frozen=True)
class FlwrResult:
    """What a finished flwr process left behind."""

    returncode: int
    stdout: str
    stderr: str


def flwr_executable() -> str:
    """The `flwr` installed with fledge, else the first on PATH."""
    beside = Path(sys.executable).parent / "flwr"
    if beside.is_file():
        return str(beside)
    found = shutil.which("flwr")
    if found is None:
        raise FledgeError("the flwr command is not installed", fix=_FIX_VERSION)
    return found


def run_flwr(args: Sequence[str], flwr_home: Path, timeout: float) -> FlwrResult:
    """Run ``flwr ARGS`` against ``flwr_home``; the only process fledge starts here.

    Raises subprocess.TimeoutExpired (after killing flwr) when it takes longer
    than ``timeout`` seconds.
    """
    env = {
        **os.environ,
        "FLWR_HOME": str(flwr_home),
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_TELEMETRY_ENABLED": "0",
    }
    proc = subprocess.run(
        [flwr_executable(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        check=False,
    )
    return FlwrResult(proc.returncode, proc.stdout, proc.stderr)


# --- What flwr reports ------------------------------------------------------


@dataclass(frozen=True)
class RoundMetrics:
    """One federated round as the ServerApp logged it; None where not reported."""

    round: int
    nodes: int | None = None
    train_loss: float | None = None
    loss: float | None = None
    accuracy: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunInfo:
    """One run on the SuperLink, from ``flwr ls``."""

    run_id: str
    status: str
    status_details: str | None
    app: str
    elapsed_seconds: float
    inbound_bytes: int
    outbound_bytes: int
    pending_at: str | None
    finished_at: str | None

    @property
    def finished(self) -> bool:
        return self.status.startswith(FINISHED)

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED

    @property
    def network_bytes(self) -> dict[str, int]:
        return {
            "inbound": self.inbound_bytes,
            "outbound": self.outbound_bytes,
            "total": self.inbound_bytes + self.outbound_bytes,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RunInfo:
        traffic = doc["network-traffic"]
        return cls(
            run_id=str(doc["run-id"]),
            status=str(doc["status"]),
            status_details=_known(doc.get("status-details")),
            app=f"{doc['fab-id']}=={doc['fab-version']}",
            elapsed_seconds=float(doc["elapsed"]),
            inbound_bytes=int(traffic["inbound-bytes"]),
            outbound_bytes=int(traffic["outbound-bytes"]),
            pending_at=_known(doc.get("pending-at")),
            finished_at=_known(doc.get("finished-at")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "status_details": self.status_details,
            "app": self.app,
            "elapsed_seconds": self.elapsed_seconds,
            "network_bytes": self.network_bytes,
            "pending_at": self.pending_at,
            "finished_at": self.finished_at,
        }


@dataclass(frozen=True)
class Node:
    """A SuperNode the SuperLink knows, from ``flwr supernode ls``."""

    node_id: str
    status: str
    online_at: str | None
    offline_at: str | None

    @property
    def online(self) -> bool:
        return self.status == "online"

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Node:
        return cls(
            node_id=str(doc["node-id"]),
            status=str(doc["status"]),
            online_at=_known(doc.get("online-at")),
            offline_at=_known(doc.get("offline-at")),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _known(value: Any) -> str | None:
    """flwr writes "N/A" for values it does not have."""
    return None if value in (None, "", "N/A") else str(value)


# --- Metrics from the ServerApp log -----------------------------------------

METRICS_PREFIX = "fledge-round"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_FLEDGE_LINE = re.compile(re.escape(METRICS_PREFIX) + r"\s+(\{.*\})")
_ROUND_HEADER = re.compile(r"\[ROUND (\d+)(?:/\d+)?\]")
_AGGREGATE = re.compile(r"aggregate_(train|evaluate): Received (\d+) results")
_METRIC_RECORD = re.compile(r"Aggregated MetricRecord: (\{.*\})")
# Names Flower's own app templates use next to the ones fledge's app uses.
_LOSS_KEYS = ("loss", "eval_loss")
_ACCURACY_KEYS = ("accuracy", "eval_acc", "eval_accuracy")


def parse_round_metrics(log_text: str) -> list[RoundMetrics]:
    """Per-round metrics from a ServerApp log, ordered by round.

    Apps that log ``fledge-round {json}`` lines (fledge's own) are read from
    those; for other apps, Flower's strategy log is the fallback. Lines that
    do not parse are skipped: a log is free text, not a contract.
    """
    lines = [_ANSI.sub("", line) for line in log_text.splitlines()]
    reported = _fledge_rounds(lines)
    return reported if reported else _strategy_rounds(lines)


def _fledge_rounds(lines: Iterable[str]) -> list[RoundMetrics]:
    rounds: dict[int, RoundMetrics] = {}
    for line in lines:
        match = _FLEDGE_LINE.search(line)
        if match is None:
            continue
        try:
            doc = json.loads(match.group(1))
            metrics = RoundMetrics(
                round=_int(doc["round"]),
                nodes=_optional(doc.get("nodes"), _int),
                train_loss=_optional(doc.get("train_loss"), _float),
                loss=_optional(doc.get("loss"), _float),
                accuracy=_optional(doc.get("accuracy"), _float),
            )
        except (ValueError, TypeError, KeyError):
            continue
        rounds[metrics.round] = metrics
    return [rounds[n] for n in sorted(rounds)]


def _strategy_rounds(lines: Iterable[str]) -> list[RoundMetrics]:
    """Rounds from Flower's strategy log (``[ROUND n/N]``, aggregate_* lines).

    A round appears once something was aggregated in it: a round that has
    only begun has nothing to report.
    """
    rounds: dict[int, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    phase = None
    for line in lines:
        if header := _ROUND_HEADER.search(line):
            current = rounds.setdefault(int(header.group(1)), {"round": int(header.group(1))})
            phase = None
        elif current is None:
            continue
        elif aggregate := _AGGREGATE.search(line):
            phase = aggregate.group(1)
            # Evaluation replies are the later, more telling count.
            current["nodes"] = int(aggregate.group(2))
        elif (record := _METRIC_RECORD.search(line)) and phase is not None:
            try:
                values = ast.literal_eval(record.group(1))
            except (ValueError, SyntaxError):
                continue
            if not isinstance(values, dict):
                continue
            if phase == "train":
                current["train_loss"] = _first(values, ("train_loss",))
            else:
                current["loss"] = _first(values, _LOSS_KEYS)
                current["accuracy"] = _first(values, _ACCURACY_KEYS)
    return [RoundMetrics(**rounds[n]) for n in sorted(rounds) if "nodes" in rounds[n]]


def _first(values: Mapping[str, Any], keys: Sequence[str]) -> float | None:
    for key in keys:
        if key in values:
            try:
                return _float(values[key])
            except (TypeError, ValueError):
                return None
    return None


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an integer: {value!r}")
    return value


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _optional(value: Any, convert: Callable[[Any], Any]) -> Any:
    return None if value is None else convert(value)


# --- Flower apps ------------------------------------------------------------


def default_app() -> Traversable:
    """fledge's packaged digits app."""
    return resources.files("fledge") / "apps" / "digits"


def read_app_config(app: Traversable) -> dict[str, Any]:
    """The app's run config: ``[tool.flwr.app.config]`` of its pyproject.toml."""
    pyproject = app / "pyproject.toml"
    fix = "point --app at a Flower app: a directory whose pyproject.toml has [tool.flwr.app]"
    try:
        doc = tomllib.loads(read_utf8(pyproject, fix="save it as UTF-8, which TOML requires"))
    except FileNotFoundError:
        raise FledgeError(
            "this is not a Flower app: pyproject.toml is missing", path=str(pyproject), fix=fix
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise FledgeError(f"not valid TOML: {exc}", path=str(pyproject)) from None
    flwr_app = doc.get("tool", {}).get("flwr", {}).get("app")
    if not isinstance(flwr_app, dict):
        raise FledgeError(
            "this is not a Flower app: [tool.flwr.app] is missing", path=str(pyproject), fix=fix
        )
    config = flwr_app.get("config", {})
    return config if isinstance(config, dict) else {}


def _copy_app(src: Traversable, dest: Path) -> None:
    dest.mkdir()
    for entry in src.iterdir():
        if entry.name in _NOT_APP_FILES:
            continue
        if entry.is_dir():
            _copy_app(entry, dest / entry.name)
        else:
            (dest / entry.name).write_bytes(entry.read_bytes())


def _config_value(value: Any) -> str:
    """A value in flwr's ``-c key=value`` syntax (TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


# --- The connection ---------------------------------------------------------


def connection_toml(address: str, root_certificates: Path | None) -> str:
    """The flwr CLI's config.toml with one connection, named ``fledge``."""
    # json.dumps writes valid TOML basic strings (same escapes).
    trust = (
        f"root-certificates = {json.dumps(str(root_certificates))}"
        if root_certificates is not None
        else "insecure = true"
    )
    return (
        "# Written by fledge on every command; edits are lost.\n"
        "[superlink]\n"
        f'default = "{CONNECTION}"\n\n'
        f"[superlink.{CONNECTION}]\n"
        f"address = {json.dumps(address)}\n"
        f"{trust}\n"
    )


class Flower:
    """The fleet's SuperLink, reached through the flwr CLI."""

    def __init__(self, flwr_home: Path, address: str, root_certificates: Path | None) -> None:
        self.flwr_home = flwr_home
        self.address = address
        self.root_certificates = root_certificates

    @property
    def insecure(self) -> bool:
        return self.root_certificates is None

    @classmethod
    def for_inventory(cls, inventory: Inventory) -> Flower:
        """Write a private FLWR_HOME for this fleet (in its state dir) and connect."""
        state_dir = inventory.state_dir.resolve()
        ca = None
        if inventory.tls:
            ca = state_dir / CA_CERT
            if not ca.is_file():
                raise FledgeError(
                    "the fleet's CA certificate is missing, so the SuperLink cannot be verified",
                    path=ca,
                    fix=f"run `fledge provision -i {inventory.path}` first; it creates the CA",
                )
        home = private_dir(open_state_dir(state_dir) / FLWR_HOME_NAME)
        # The file names the CA the CLI trusts: private, and never half-written.
        atomic_write(
            home / CONFIG_FILE, connection_toml(inventory.control_address, ca), PRIVATE_FILE
        )
        return cls(home, inventory.control_address, ca)

    # One flwr call each.

    def list_nodes(self) -> list[Node]:
        doc = self._json(["supernode", "ls", CONNECTION])
        return self._parse(doc, "nodes", Node.from_json)

    def list_runs(self) -> list[RunInfo]:
        doc = self._json(["ls", CONNECTION])
        return self._parse(doc, "runs", RunInfo.from_json)

    def run_info(self, run_id: str) -> RunInfo:
        doc = self._json(["ls", CONNECTION, "--run-id", str(run_id)])
        runs = self._parse(doc, "runs", RunInfo.from_json)
        if len(runs) != 1:
            raise FledgeError(
                f"the SuperLink returned {len(runs)} runs for run {run_id}", fix=_FIX_VERSION
            )
        return runs[0]

    def start_run(self, app: Traversable, overrides: Mapping[str, Any]) -> str:
        """Start ``app`` with run-config ``overrides``; returns the run ID at once.

        flwr reads the app in place and may write into it (``__pycache__``
        from checking the components; it rewrites a pyproject.toml that has
        legacy ``[tool.flwr.federations]``). An installed app may be
        read-only and a user's app is theirs: flwr gets a private copy.
        """
        config = [
            arg
            for key, value in overrides.items()
            for arg in ("-c", f"{key}={_config_value(value)}")
        ]
        with tempfile.TemporaryDirectory(prefix="fledge-app-") as tmp:
            staged = Path(tmp) / app.name
            _copy_app(app, staged)
            doc = self._json(["run", str(staged), CONNECTION, *config])
        run_id = doc.get("run-id")
        if not run_id:
            raise FledgeError("flwr started no run and gave no reason", fix=_FIX_VERSION)
        return str(run_id)

    def stop_run(self, run_id: str) -> None:
        self._json(["stop", str(run_id), CONNECTION])

    def run_log(self, run_id: str) -> str:
        """The ServerApp's log so far; empty while the run has logged nothing."""
        try:
            done = run_flwr(["log", str(run_id), CONNECTION, "--show"], self.flwr_home, LOG_TIMEOUT)
        except subprocess.TimeoutExpired:
            return ""
        if done.returncode != 0:
            raise FledgeError(
                f"flwr log failed: {_panel_text(done.stderr)}", fix=self._fix_for(done.stderr)
            )
        return done.stdout

    # Plumbing.

    def _json(self, args: list[str]) -> dict[str, Any]:
        command = f"flwr {args[0]}"
        try:
            done = run_flwr([*args, "--format", "json"], self.flwr_home, CALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise FledgeError(
                f"{command} got no answer from the SuperLink at {self.address} "
                f"within {CALL_TIMEOUT:.0f} s",
                fix=self._unreachable_fix(),
            ) from None
        doc = _last_json_object(done.stdout)
        if doc is None:
            detail = (
                _panel_text(done.stderr) or done.stdout.strip() or f"exit code {done.returncode}"
            )
            raise FledgeError(f"{command} printed no JSON: {detail}", fix=_FIX_VERSION)
        if doc.get("success") is not True:
            message = _error_text(str(doc.get("error-message", "no reason given")))
            raise FledgeError(f"{command} failed: {message}", fix=self._fix_for(message))
        return doc

    def _parse(self, doc: Mapping[str, Any], key: str, convert: Callable[[Any], Any]) -> list[Any]:
        try:
            return [convert(item) for item in doc[key]]
        except (KeyError, TypeError, ValueError) as exc:
            raise FledgeError(
                f"unexpected answer from flwr ({key}: {exc!r})", fix=_FIX_VERSION
            ) from None

    def _fix_for(self, message: str) -> str | None:
        # flwr says "unavailable" both for a dead address and for a TLS failure.
        return self._unreachable_fix() if "unavailable" in message.lower() else None

    def _unreachable_fix(self) -> str:
        trust = (
            ""
            if self.insecure
            else (f", and that {self.root_certificates} is the CA that signed its certificate")
        )
        return (
            "check that the SuperLink runs on the coordinator (systemctl status "
            f"fledge-superlink) and that {self.address} is reachable from here{trust}"
        )


def _last_json_object(text: str) -> dict[str, Any] | None:
    """The JSON document flwr printed, even if other output came before it."""
    decoder = json.JSONDecoder()
    for start in [m.start() for m in re.finditer(r"^\{", text, re.MULTILINE)][::-1]:
        try:
            doc, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            return doc
    return None


def _error_text(message: str) -> str:
    """The reason in flwr's error-message, without the progress it captured before."""
    paragraphs = [p.strip() for p in message.split("\n\n") if p.strip()]
    return paragraphs[-1] if paragraphs else message.strip()


def _panel_text(stderr: str) -> str:
    """The words inside the rich error panel flwr draws on stderr."""
    words = []
    for line in _ANSI.sub("", stderr).splitlines():
        text = line.strip().strip("│╭╮╰╯─").strip()
        if text and text != "Error" and not text.startswith(("INFO", "DEBUG", "WARNING")):
            words.append(text)
    return " ".join(words)
