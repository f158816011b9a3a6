"""Every process the suite starts: with a time limit, timed, its CPU time counted.

A process runs in a session of its own, so that stopping it (time limit,
Ctrl-C) reaches everything it started: it gets SIGINT first, as a person's
Ctrl-C (fledge then stops a training run it started, Ansible its tasks),
then SIGKILL after a grace period. The suite reaps it with ``os.wait4``,
which reports the CPU time of the process and of every descendant it
waited for: Ansible's workers, ssh, pip, the flwr CLI.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Seconds a stopped process has to end on its own before it is killed.
GRACE = 15.0
TAIL_LINES = 15


class BenchError(Exception):
    """A measurement that could not be made; the message says why (and what to do)."""


@dataclass(frozen=True)
class Result:
    command: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    wall: float  # seconds, start to end
    cpu: float  # user + system seconds of the process tree (what was waited for)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The end of what it said: stderr, else stdout."""
        text = self.stderr.strip() or self.stdout.strip()
        return "\n".join(text.splitlines()[-lines:])

    def check(self, what: str | None = None) -> Result:
        """Itself, if it succeeded; else a BenchError with the end of its output."""
        if not self.ok:
            raise BenchError(
                f"{what or shown(self.command)} failed (exit {self.returncode}):\n{self.tail()}"
            )
        return self


def shown(command: Sequence[str]) -> str:
    """A command for people: the program's name, not its path, and at most 8 words."""
    words = [Path(command[0]).name, *command[1:]]
    return " ".join(words[:8]) + (" ..." if len(words) > 8 else "")


def run(
    command: Sequence[str | os.PathLike[str]],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> Result:
    """Run ``command`` to its end, or stop it after ``timeout`` seconds (BenchError)."""
    args = tuple(os.fspath(a) for a in command)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise BenchError(f"cannot start {args[0]}: {exc}") from None
        deadline = _Deadline(proc.pid, timeout)
        deadline.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:  # Ctrl-C, SIGTERM: stop it too, then pass it on
            deadline.cancel()
            with shielded():
                stop(proc)
            raise
        wall = time.perf_counter() - start
        deadline.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if deadline.fired:
        _signal(proc.pid, signal.SIGKILL)  # what it started and left behind
        raise BenchError(f"`{shown(args)}` took longer than {timeout:.0f} s and was stopped")
    return Result(args, proc.returncode, stdout, stderr, wall, usage.ru_utime + usage.ru_stime)


def stop(proc: subprocess.Popen[bytes], grace: float = GRACE) -> None:
    """Stop ``proc`` and what it started (its session): SIGINT, then SIGKILL; reap it."""
    _signal(proc.pid, signal.SIGINT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            break
        time.sleep(0.1)
    _signal(proc.pid, signal.SIGKILL)  # whatever is left of the session
    if proc.returncode is None:
        with contextlib.suppress(ChildProcessError):
            _, status = os.waitpid(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while cleanup runs (a second Ctrl-C must not leave a lab
    half removed). Signal handlers belong to the main thread: elsewhere, nothing to do."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _signal(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


class _Deadline:
    """Stops a process group when its time is up, from a timer thread."""

    def __init__(self, pgid: int, timeout: float) -> None:
        self.pgid = pgid
        self.fired = False
        self._done = threading.Event()
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._done.set()
        self._timer.cancel()

    def _expire(self) -> None:
        if self._done.is_set():
            return
        self.fired = True
        _signal(self.pgid, signal.SIGINT)
        if not self._done.wait(GRACE):
            _signal(self.pgid, signal.SIGKILL)
