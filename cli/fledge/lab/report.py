"""How the lab reports progress: to the Reporter it is given, never by printing.

The lab's functions take a ``report`` argument, as the runner takes
``on_event``: `fledge lab` passes one that shows progress to people
(:class:`fledge.progress.ConsoleReporter`), code that uses the lab as a
library passes its own, or :data:`SILENT`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Protocol


class Step(Protocol):
    """A long piece of work in progress."""

    @property
    def elapsed(self) -> float:
        """Seconds since the step began."""

    def update(self, detail: str) -> None:
        """What the step is doing now."""


class Reporter(Protocol):
    def note(self, message: str) -> None:
        """Something done (a container started, an image built)."""

    def step(self, message: str) -> AbstractContextManager[Step]:
        """A long wait (an image build, a boot), for the duration of a ``with``."""


class _Timer:
    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def update(self, detail: str) -> None:
        pass


class _Silent:
    def note(self, message: str) -> None:
        pass

    @contextlib.contextmanager
    def step(self, message: str) -> Iterator[Step]:
        yield _Timer()


SILENT: Reporter = _Silent()
