"""Progress shown to people: playbook runs, and long waits.

- :class:`PlaybookProgress`: a playbook run, per host, from ansible-runner's
  events. On a terminal: a table with one row per host that updates in
  place. In a log (CI, a pipe): one line per task, plus every change and
  failure.
- :class:`Waiting`: a long wait (an image build, a boot). On a terminal: a
  spinner whose text follows the work. In a log, where a spinner shows
  nothing: a line at the start and then one every ``every`` seconds, even
  while the work itself is silent, so a slow build never looks hung. Log
  lines are not wrapped: a log has no width.
- :class:`ConsoleReporter`: the lab's reporter (fledge.lab.report), on stderr.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.status import Status
from rich.table import Table

from fledge.console import err
from fledge.runner import PlaybookResult, failure_message


@dataclass
class _HostState:
    task: str = ""
    ok: int = 0
    changed: int = 0
    failed: bool = False
    unreachable: bool = False
    started: float = field(default_factory=time.monotonic)

    @property
    def status(self) -> str:
        if self.unreachable:
            return "[red]unreachable[/]"
        if self.failed:
            return "[red]failed[/]"
        return "[cyan]running[/]"


class PlaybookProgress:
    """Feed it runner events with ``handle``; use it as a context manager."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.hosts: dict[str, _HostState] = {}
        self.play = ""
        self.live: Live | None = None

    def __enter__(self) -> PlaybookProgress:
        if self.console.is_terminal:
            self.live = Live(
                self._table(), console=self.console, refresh_per_second=4, transient=True
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.live.__exit__(None, None, None)

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        host = data.get("host")
        if kind == "playbook_on_play_start":
            self.play = data.get("play", "")
            self._line(f"[bold]PLAY[/] {escape(self.play)}")
        elif kind == "playbook_on_task_start":
            self._line(f"  [dim]task[/] {escape(data.get('task', ''))}")
        elif host and kind == "runner_on_start":
            self.hosts.setdefault(host, _HostState()).task = data.get("task", "")
        elif host and kind == "runner_on_ok":
            state = self.hosts.setdefault(host, _HostState())
            state.ok += 1
            if data.get("res", {}).get("changed"):
                state.changed += 1
                self._line(f"    [yellow]changed[/] {escape(host)}: {escape(data.get('task', ''))}")
        elif host and kind in ("runner_on_failed", "runner_on_unreachable"):
            if data.get("ignore_errors"):
                return
            state = self.hosts.setdefault(host, _HostState())
            state.failed = kind == "runner_on_failed"
            state.unreachable = kind == "runner_on_unreachable"
            message = failure_message(data.get("res", {})).splitlines()[0][:300]
            self.console.print(
                f"[red]{'unreachable' if state.unreachable else 'failed'}[/] {escape(host)}: "
                f"{escape(data.get('task', ''))}: {escape(message)}"
            )
        if self.live:
            self.live.update(self._table())

    def _line(self, text: str) -> None:
        # On a terminal the live table says it all; in a log, lines do.
        if not self.live:
            self.console.print(text)

    def _table(self) -> Table:
        table = Table(title=self.play or "starting", title_justify="left", expand=False)
        for column in ("host", "status", "ok", "changed", "current task"):
            table.add_column(column)
        for name, state in sorted(self.hosts.items()):
            table.add_row(
                escape(name), state.status, str(state.ok), str(state.changed), escape(state.task)
            )
        return table


def recap_table(result: PlaybookResult, title: str) -> Table:
    """The per-host summary printed after every run."""
    table = Table(title=title, title_justify="left")
    for column in ("host", "result", "ok", "changed", "failed", "unreachable", "skipped"):
        table.add_column(column, justify="left" if column in ("host", "result") else "right")
    for host, r in sorted(result.recap.items()):
        verdict = "[green]ok[/]" if r.succeeded else "[red]FAILED[/]"
        table.add_row(
            escape(host),
            verdict,
            str(r.ok),
            str(r.changed),
            str(r.failed),
            str(r.unreachable),
            str(r.skipped),
        )
    return table


class Waiting:
    def __init__(self, message: str, every: float = 30.0) -> None:
        self.message = message
        self.every = every
        self.detail = ""
        self.start = time.monotonic()
        self._status: Status | None = None
        self._done = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def _text(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.message}{detail} ({self.elapsed:.0f} s)"

    def __enter__(self) -> Waiting:
        self.start = time.monotonic()
        if err.is_terminal:
            self._status = err.status(self.message)
            self._status.start()
        else:
            err.print(f"{self.message} ...", soft_wrap=True)
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def _tick(self) -> None:
        while not self._done.wait(self.every):
            err.print(self._text(), soft_wrap=True)

    def update(self, detail: str) -> None:
        self.detail = detail
        if self._status is not None:
            self._status.update(self._text())

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._status is not None:
            self._status.stop()


class ConsoleReporter:
    """The lab's progress (fledge.lab.report.Reporter) for people, on stderr."""

    def note(self, message: str) -> None:
        err.print(message)

    @contextmanager
    def step(self, message: str) -> Iterator[Waiting]:
        with Waiting(message) as waiting:
            yield waiting
