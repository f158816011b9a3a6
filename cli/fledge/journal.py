"""The journals of fledge's services, read from the hosts over SSH (`fledge logs`).

A device's journal is its SuperNode unit's (with its ClientApps' output);
the coordinator's is the SuperLink's. The login user need not be in the
systemd-journal group: journalctl runs as root through ``sudo -n``, as
Ansible's become does, and a host whose sudo wants a password fails with
services.SudoPasswordRequired. It gathers and prints nothing: the command
decides where the lines go.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import shutil
import threading
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import paramiko

from fledge import remote, services
from fledge.errors import FledgeError
from fledge.inventory import Host, Inventory

# Seconds a journal may stay silent before its host counts as hung (not with --follow).
READ_TIMEOUT = 60.0
# With --follow a journal may be silent for days: a year, for the SSH channel's timeout.
FOLLOW_TIMEOUT = 365 * 24 * 3600.0
# Hosts read at once.
MAX_WORKERS = 8
# journalctl's own time formats ("2026-12-01 10:00", "yesterday", "-1h", "@1700000000",
# "10 min ago", a time zone such as "Europe/Berlin"): never quotes, semicolons or $.
_SINCE = re.compile(r"[A-Za-z0-9:+\-.,@/_][A-Za-z0-9 :+\-.,@/_]{0,63}")
SINCE_FIX = (
    "give a time as journalctl reads it, e.g. '2026-12-01 10:00', 'today', 'yesterday', "
    "'-1h' or '30 min ago'"
)
# What a broken session raises besides FledgeError.
SESSION_ERRORS = (paramiko.SSHException, OSError, EOFError)


def check_since(value: str) -> str:
    """``value`` if it can only be a time for journalctl; a FledgeError otherwise.

    It is quoted for the remote shell anyway (one word) and given as
    ``--since=VALUE``, so it can never be another option either.
    """
    if not _SINCE.fullmatch(value):
        raise FledgeError(
            f"{value!r} is not a time journalctl reads", field="--since", fix=SINCE_FIX
        )
    return value


@dataclass(frozen=True)
class Query:
    """Which entries: since a time, the last N, and whether to wait for new ones."""

    since: str | None = None
    lines: int | None = None
    follow: bool = False

    def argv(self, unit: str) -> list[str]:
        argv = ["journalctl", "--unit", unit, "--no-pager", "--output=short-iso"]
        if self.since is not None:
            argv.append(f"--since={check_since(self.since)}")
        if self.lines is not None:
            argv.append(f"--lines={int(self.lines)}")
        if self.follow:
            argv.append("--follow")
        return remote.sudo(argv)


def select(fleet: Inventory, names: Sequence[str]) -> list[Host]:
    """The hosts called ``names`` (each once, in the order given); a FledgeError naming
    the inventory and its hosts when one is not in it."""
    by_name = {host.name: host for host in fleet.hosts}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        raise FledgeError(
            f"no host {listed} in this inventory",
            path=fleet.path,
            fix=f"name hosts of this fleet: {', '.join(by_name)}",
        )
    return [by_name[name] for name in dict.fromkeys(names)]


@contextlib.contextmanager
def open_journal(host: Host, query: Query) -> Iterator[IO[bytes]]:
    """The journal of ``host``'s fledge service as a stream of lines, while the block
    runs; the SSH session closes when it ends, also on Ctrl-C."""
    timeout = FOLLOW_TIMEOUT if query.follow else READ_TIMEOUT
    try:
        with (
            remote.shell(host) as shell,
            shell.stream(query.argv(services.main_unit(host)), timeout=timeout) as out,
        ):
            yield out
    except FledgeError as exc:
        if remote.needs_password(exc.message):
            raise services.SudoPasswordRequired(host.name, "read the journal") from None
        raise


# --- one file per host ----------------------------------------------------------


@dataclass(frozen=True)
class Written:
    """One host's journal in a file, or why not."""

    host: str
    path: Path
    size: int = 0
    error: str | None = None


def write_all(hosts: Sequence[Host], query: Query, folder: Path) -> Iterator[Written]:
    """Each host's journal into ``folder/<host>.log`` (0600: journals may hold what
    apps print), several hosts at once; each result as it comes. A host that fails
    leaves no file and stops no other."""
    if query.follow:
        raise FledgeError("a journal that is followed never ends: it cannot go to a file")
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(hosts) or 1)) as pool:
        futures = [pool.submit(_write, host, query, folder) for host in hosts]
        for future in as_completed(futures):
            yield future.result()


def _write(host: Host, query: Query, folder: Path) -> Written:
    path = folder / f"{host.name}.log"
    try:
        with open_journal(host, query) as journal, _private_file(path) as out:
            shutil.copyfileobj(journal, out)
        return Written(host.name, path, path.stat().st_size)
    except (FledgeError, *SESSION_ERRORS) as exc:
        path.unlink(missing_ok=True)
        return Written(host.name, path, error=describe(exc))


@contextlib.contextmanager
def _private_file(path: Path) -> Iterator[IO[bytes]]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        yield out


def describe(exc: BaseException) -> str:
    """What went wrong on a host, for a line under its name (with the fix, if any)."""
    if isinstance(exc, FledgeError):
        return exc.message + (f"\n  fix: {exc.fix}" if exc.fix else "")
    return str(exc) or type(exc).__name__


# --- several hosts followed at once -----------------------------------------------


@dataclass(frozen=True)
class Line:
    """A line of ``host``'s journal; or, with ``error``, the end of that journal."""

    host: str
    text: bytes = b""
    error: str | None = None


def follow_all(hosts: Sequence[Host], query: Query) -> Generator[Line, None, None]:
    """The lines of several journals as they come, interleaved, until each ends or
    the consumer stops (Ctrl-C; close the iterator, and every session closes).

    A host that cannot be reached, or whose journal ends with an error, gives
    one Line with its error; the others go on.
    """
    lines: queue.Queue[Line | str] = queue.Queue()
    with contextlib.ExitStack() as stack:
        running: dict[str, contextlib.ExitStack] = {}
        for host in hosts:
            own = contextlib.ExitStack()
            try:
                journal = own.enter_context(open_journal(host, query))
            except (FledgeError, *SESSION_ERRORS) as exc:
                yield Line(host.name, error=describe(exc))
                continue
            stack.push(own)  # closed on the way out, whatever happens
            running[host.name] = own
            threading.Thread(
                target=_pump, args=(host.name, journal, lines), daemon=True, name=host.name
            ).start()
        while running:
            try:
                item = lines.get(timeout=0.5)  # a short wait: Ctrl-C is seen at once
            except queue.Empty:
                continue
            if isinstance(item, Line):
                yield item
                continue
            try:  # that journal ended: its session says how
                running.pop(item).close()
            except (FledgeError, *SESSION_ERRORS) as exc:
                yield Line(item, error=describe(exc))


def _pump(host: str, journal: IO[bytes], lines: queue.Queue[Line | str]) -> None:
    """Copy one journal's lines into the queue; its name when it ends."""
    try:
        for text in journal:
            lines.put(Line(host, text))
    except (ValueError, *SESSION_ERRORS):  # closed under it: the consumer stopped
        pass
    finally:
        lines.put(host)
