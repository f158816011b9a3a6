"""Output conventions shared by all commands.

People read rich output on stderr; programs read ``--format json`` on
stdout. Errors are FledgeErrors, printed without a traceback (and, for a
command asked for JSON, also given as JSON on stdout).
"""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from fledge.errors import FledgeError

# No emoji codes: rich would turn the ':cd:' of a fingerprint into a CD.
err = Console(stderr=True, highlight=False, emoji=False)

F = TypeVar("F", bound=Callable[..., Any])

INVENTORY_ENV = "FLEDGE_INVENTORY"


class Format(StrEnum):
    text = "text"
    json = "json"


FormatOption = Annotated[
    Format,
    typer.Option("--format", help="text for people, json for programs (on stdout)."),
]
InventoryOption = Annotated[
    Path,
    typer.Option(
        "--inventory",
        "-i",
        envvar=INVENTORY_ENV,
        show_envvar=True,
        help="The fleet's inventory file.",
    ),
]


def print_json(document: Any, *, one_line: bool = False) -> None:
    """``document`` on stdout; ``one_line`` for a command that goes on running after it
    (a script reads one line)."""
    text = (
        json.dumps(document, default=str)
        if one_line
        else json.dumps(document, indent=2, default=str)
    )
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# What a person can do about the OS errors that name a path.
_OS_FIXES: dict[int | None, str] = {
    errno.EACCES: "give your user access to it (`ls -ld` shows who may), or choose another path",
    errno.EPERM: "give your user access to it (`ls -ld` shows who may), or choose another path",
    errno.EROFS: "the file system is read-only: choose a path on a writable one",
    errno.ENOENT: "create the missing directory, or choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a directory: choose another path",
    errno.EISDIR: "give the path of a file, not of a directory",
    errno.ENOSPC: "free some disk space, or choose a path on another disk",
}


def _path_error(exc: OSError) -> FledgeError | None:
    """An OSError that names a path, as a FledgeError; None for any other."""
    if not isinstance(exc.filename, str | bytes | os.PathLike):
        return None
    return FledgeError(
        exc.strerror or str(exc), path=os.fsdecode(exc.filename), fix=_OS_FIXES.get(exc.errno)
    )


def handle_errors(func: F) -> F:
    """Turn FledgeError, and OSError on a path, into a message on stderr and exit code 1.

    A command called with ``--format json`` also gets the error as one JSON
    document on stdout (see FledgeError.as_dict): a program never has to
    parse the human message, nor read an empty stdout.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FledgeError as exc:
            error = exc
        except OSError as exc:
            path_error = _path_error(exc)
            if path_error is None:
                raise
            error = path_error
        err.print(f"[bold red]error:[/] {escape(str(error))}", soft_wrap=True)
        if any(value is Format.json for value in kwargs.values()):
            print_json(error.as_dict())
        raise typer.Exit(1)

    return wrapper  # type: ignore[return-value]


def display_path(path: Path) -> str:
    """A path relative to the working directory when that is shorter."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
