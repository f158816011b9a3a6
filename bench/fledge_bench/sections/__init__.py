"""One module per section of the table; each measures on what it is given and returns rows.

The fleet sections take a provisioned :class:`~fledge_bench.lab.Fleet` (and
its fresh provisioning, for ratios); ``startup`` needs no lab. Which fleet
each section runs on is decided in ``suite.py``.
"""

from __future__ import annotations

import json
from typing import Any

from fledge_bench.measure import BenchError, Result


def report(result: Result, what: str) -> dict[str, Any]:
    """The JSON document a `fledge ... --format json` printed; BenchError when it failed."""
    try:
        doc = json.loads(result.stdout)
    except json.JSONDecodeError:
        doc = None
    if not result.ok or not isinstance(doc, dict) or "error" in doc:
        reason = doc.get("error") if isinstance(doc, dict) and "error" in doc else None
        raise BenchError(f"{what} failed (exit {result.returncode}): {reason or result.tail()}")
    return doc
