"""Running one of the collection's playbooks for a command: live progress, a per-host
summary, failures named, and the report for `--format json`."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from fledge import collection, inventory
from fledge.console import Format, err, print_json
from fledge.errors import FledgeError
from fledge.fsutil import atomic_write, open_state_dir
from fledge.progress import PlaybookProgress, recap_table
from fledge.runner import PlaybookResult, run_playbook


def play(
    fleet: inventory.Inventory,
    name: str,
    what: str,
    output: Format,
    *,
    check: bool = False,
    limit: str | None = None,
    tags: Sequence[str] = (),
    extravars: Mapping[str, Any] | None = None,
    verbosity: int = 0,
) -> PlaybookResult:
    """Run the collection's playbook ``name`` (``what`` it does, for people: "Provisioning");
    exit 1, after saying why, when a host failed."""
    open_state_dir(fleet.state_dir)
    with PlaybookProgress(err) as progress:
        result = run_playbook(
            collection.playbook(name),
            fleet.path,
            fleet.state_dir,
            check=check,
            limit=limit,
            tags=tags,
            extravars=extravars,
            verbosity=verbosity,
            on_event=progress.handle,
        )
    if not check:
        _record_failed(fleet, name, result)
    err.print(recap_table(result, f"{what} summary" + (" (check mode)" if check else "")))
    if result.unchanged:
        err.print(
            f"Unchanged since their last complete {what.lower()}, checked in one pass: "
            f"{', '.join(result.unchanged)} (--full runs every task on them)",
            soft_wrap=True,
        )
    for failure in result.failures:
        err.print(
            f"[red]{escape(failure.host)}[/]: {escape(failure.task)}\n  {escape(failure.message)}"
        )
    if result.output_tail:
        err.print(escape(result.output_tail))
    if output is Format.json:
        print_json(
            {
                "succeeded": result.succeeded,
                "check": check,
                "changed": result.changed,
                "hosts": {h: vars(r) | {"succeeded": r.succeeded} for h, r in result.recap.items()},
                "failures": [vars(f) for f in result.failures],
                "unchanged": result.unchanged,
                "artifacts": str(result.artifacts),
            }
        )
    if not result.succeeded:
        err.print(f"{what} failed; the full log is in {result.artifacts}/stdout")
        raise typer.Exit(1)
    return result


def _failed_path(fleet: inventory.Inventory, name: str) -> Path:
    # Not among ansible-runner's artifacts (state/runner), which it rotates as directories.
    return fleet.state_dir / f"failed-{name}.json"


def _record_failed(fleet: inventory.Inventory, name: str, result: PlaybookResult) -> None:
    """The hosts that failed or were unreachable in this run, for `--retry-failed`."""
    failed = sorted(host for host, recap in result.recap.items() if not recap.succeeded)
    atomic_write(_failed_path(fleet, name), json.dumps({"failed": failed}) + "\n")


def failed_last_time(fleet: inventory.Inventory, name: str) -> list[str]:
    """The hosts that failed in the last real run of the playbook ``name``."""
    path = _failed_path(fleet, name)
    try:
        failed = json.loads(path.read_text())["failed"]
    except FileNotFoundError:
        raise FledgeError(
            "there is no earlier run to retry", path=path, fix="run it without --retry-failed"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise FledgeError(f"the record of the last run cannot be read ({exc})", path=path) from None
    if not failed:
        raise FledgeError(
            "the last run failed on no host: nothing to retry",
            fix="run it without --retry-failed",
        )
    return [str(host) for host in failed]
