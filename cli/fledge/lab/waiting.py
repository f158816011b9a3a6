"""Progress for the lab's long waits (image builds, boots).

On a terminal: a spinner whose text follows the work. In a log (CI, a
pipe), where a spinner shows nothing: a line at the start and then one every
``every`` seconds, even while the work itself is silent, so a slow build
never looks hung. Log lines are not wrapped: a log has no width.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from rich.status import Status

from fledge.console import err


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
