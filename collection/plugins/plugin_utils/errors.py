# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""The one error type fledge shows to people.

Every failure an operator can act on is raised as a ``FledgeError`` that says
where (file, line, host, field), what is wrong, and how to fix it. The CLI
prints it without a traceback and exits non-zero.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class FledgeError(Exception):
    """An error with enough context for a person to fix it."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        host: str | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        self.host = host
        self.field = field
        self.fix = fix

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(f"{self.path}:{self.line}" if self.line else str(self.path))
        if self.host is not None:
            where.append(f"host '{self.host}'")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        text = f"{', '.join(where)}: {self.message}" if where else self.message
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text

    def as_dict(self) -> dict[str, Any]:
        """The error for programs: always error and fix, and where, as far as known."""
        doc: dict[str, Any] = {"error": self.message, "fix": self.fix}
        for key, value in (
            ("path", self.path),
            ("line", self.line),
            ("host", self.host),
            ("field", self.field),
        ):
            if value is not None:
                doc[key] = str(value) if isinstance(value, Path) else value
        return doc
