"""Following a run until it ends: poll it, stop it on a timeout or Ctrl-C, read its outcome.

The state machine reports what happens to an :class:`Observer` and prints
nothing itself: `fledge round start` shows it to people, tests check it.
A run's outcome is the SuperLink's word (``flwr ls --run-id``): a run
counts as completed only when it says ``finished:completed``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from fledge.errors import FledgeError
from fledge.flower.metrics import parse_round_metrics, waiting_for_nodes
from fledge.flower.records import RoundMetrics, RunInfo
from fledge.flower.superlink import SuperLink

# Each poll costs two flwr calls of ~1.5 s CPU each; 5 s apart keeps the
# controller light while rounds (tens of seconds) still show up promptly.
POLL_SECONDS = 5.0
# How long a stopped run may take to report finished:stopped.
STOP_WAIT_SECONDS = 30.0
EXIT_FAILED = 1
# Stopped because it waited for more devices than were connected.
EXIT_TOO_FEW_NODES = 3
EXIT_TIMEOUT = 124  # as timeout(1)
EXIT_INTERRUPTED = 130  # 128 + SIGINT
# How long a run may wait for more devices than are connected, by default.
NODE_WAIT_SECONDS = 120.0
# Before a run is running its ServerApp has logged nothing, and a log
# request would only wait.
_LOGGING_STATE = "running"


class Observer(Protocol):
    """What a follower reports, as it happens."""

    def status(self, status: str) -> None:
        """The run's status on the SuperLink (pending, starting, running, ...)."""

    def round_done(self, metrics: RoundMetrics) -> None:
        """A round whose metrics are complete, once each."""

    def note(self, message: str, *, warning: bool = False) -> None:
        """Something the person following should know (stopping, a timeout)."""

    def waiting(self, connected: int, required: int) -> None:
        """The app waits for ``required`` devices, ``connected`` are."""


@dataclass(frozen=True)
class Outcome:
    info: RunInfo
    rounds: list[RoundMetrics]
    stopped_by: str | None  # "timeout", "interrupt", "too few nodes" or None
    log: str = ""  # the ServerApp's whole log

    @property
    def exit_code(self) -> int:
        if self.info.completed:
            return 0
        return {
            "timeout": EXIT_TIMEOUT,
            "interrupt": EXIT_INTERRUPTED,
            "too few nodes": EXIT_TOO_FEW_NODES,
        }.get(self.stopped_by or "", EXIT_FAILED)


@dataclass
class _Rounds:
    """Rounds reported once each, when their metrics are complete."""

    observer: Observer
    shown: set[int] = field(default_factory=set)

    def update(self, rounds: list[RoundMetrics], *, final: bool) -> None:
        """A round is complete when it has evaluation results, when a later
        round has begun (Flower's log reports train and evaluate apart), or
        when the run is over."""
        for index, metrics in enumerate(rounds):
            complete = (
                final
                or index < len(rounds) - 1
                or metrics.loss is not None
                or metrics.accuracy is not None
            )
            if complete and metrics.round not in self.shown:
                self.shown.add(metrics.round)
                self.observer.round_done(metrics)


def follow(
    superlink: SuperLink,
    run_id: str,
    timeout: float,
    observer: Observer,
    node_wait: float = NODE_WAIT_SECONDS,
) -> Outcome:
    """Poll the run until it finishes; stop it on timeout or Ctrl-C, or when it has
    waited ``node_wait`` seconds for more devices than are connected."""
    rounds = _Rounds(observer)
    deadline = time.monotonic() + timeout
    stopped_by = None
    waiting_since: float | None = None
    try:
        while True:
            info = superlink.run_info(run_id)
            observer.status(info.status)
            if info.finished:
                break
            if info.status == _LOGGING_STATE:
                log = superlink.run_log(run_id)
                rounds.update(parse_round_metrics(log), final=False)
                waiting = waiting_for_nodes(log)
                if waiting is None:
                    waiting_since = None
                else:
                    observer.waiting(*waiting)
                    waiting_since = waiting_since or time.monotonic()
                    if time.monotonic() - waiting_since >= node_wait:
                        stopped_by = "too few nodes"
                        observer.note(
                            f"Run {run_id} waited {node_wait:g} s for {waiting[1]} devices; "
                            f"{waiting[0]} are connected. Start it with --min-nodes "
                            f"{waiting[0]} (if the app takes it), or connect more devices "
                            "(`fledge round nodes` shows which are missing)",
                            warning=True,
                        )
                        break
            if time.monotonic() >= deadline:
                stopped_by = "timeout"
                observer.note(f"Run {run_id} passed --timeout ({timeout:g} s)", warning=True)
                break
            time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        stopped_by = "interrupt"
        observer.note("Interrupted", warning=True)
    if stopped_by is not None:
        observer.status("stopping")
        info = stop(superlink, run_id, observer)
    # The final status and log, read after the run has ended.
    log = superlink.run_log(run_id)
    final = parse_round_metrics(log)
    rounds.update(final, final=True)
    return Outcome(info, final, stopped_by, log)


def stop(superlink: SuperLink, run_id: str, observer: Observer) -> RunInfo:
    """Stop the run and wait (bounded) until the SuperLink reports it finished."""
    observer.note(f"Stopping run {run_id}")
    try:
        superlink.stop_run(run_id)
    except FledgeError as exc:
        # Most often the run finished in the meantime; its status tells.
        observer.note(str(exc), warning=True)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while True:
        info = superlink.run_info(run_id)
        if info.finished or time.monotonic() >= deadline:
            return info
        time.sleep(POLL_SECONDS)
