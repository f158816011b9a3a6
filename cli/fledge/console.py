"""Output conventions shared by all commands.

People read rich output on stderr; programs read ``--format json`` on
stdout. Errors are FledgeErrors, printed without a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from fledge.errors import FledgeError

err = Console(stderr=True, highlight=False)

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


def print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def handle_errors(func: F) -> F:
    """Turn FledgeError into a message on stderr and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except FledgeError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def display_path(path: Path) -> str:
    """A path relative to the working directory when that is shorter."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
