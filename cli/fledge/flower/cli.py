"""Running the flwr CLI: the one place fledge starts a flwr process, and reading its output."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fledge.errors import FledgeError

# Seconds one flwr call may take; starting the CLI alone costs ~1.5 s.
CALL_TIMEOUT = 120.0
# `flwr log --show` answers only once the run has written a log line; until
# then the SuperLink holds the request open. Give up early and retry later.
LOG_TIMEOUT = 15.0
FIX_VERSION = "fledge needs flwr 1.42.x next to it: pip install 'flwr==1.42.0'"
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


@dataclass(frozen=True)
class FlwrResult:
    """What a finished flwr process left behind."""

    returncode: int
    stdout: str
    stderr: str


def flwr_executable() -> str:
    """The `flwr` installed with fledge, else the first on PATH."""
    beside = Path(sys.executable).parent / "flwr"
    if beside.is_file():
        return str(beside)
    found = shutil.which("flwr")
    if found is None:
        raise FledgeError("the flwr command is not installed", fix=FIX_VERSION)
    return found


def run_flwr(args: Sequence[str], flwr_home: Path, timeout: float) -> FlwrResult:
    """Run ``flwr ARGS`` against ``flwr_home``; the only process fledge starts here.

    Raises subprocess.TimeoutExpired (after killing flwr) when it takes longer
    than ``timeout`` seconds.
    """
    env = {
        **os.environ,
        "FLWR_HOME": str(flwr_home),
        "FLWR_DISABLE_UPDATE_CHECK": "1",
        "FLWR_TELEMETRY_ENABLED": "0",
    }
    proc = subprocess.run(
        [flwr_executable(), *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        check=False,
    )
    return FlwrResult(proc.returncode, proc.stdout, proc.stderr)


def last_json_object(text: str) -> dict[str, Any] | None:
    """The JSON document flwr printed, even if other output came before it."""
    decoder = json.JSONDecoder()
    for start in [m.start() for m in re.finditer(r"^\{", text, re.MULTILINE)][::-1]:
        try:
            doc, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict):
            return doc
    return None


def error_text(message: str) -> str:
    """The reason in flwr's error-message, without the progress it captured before."""
    paragraphs = [p.strip() for p in message.split("\n\n") if p.strip()]
    return paragraphs[-1] if paragraphs else message.strip()


def panel_text(stderr: str) -> str:
    """The words inside the rich error panel flwr draws on stderr."""
    words = []
    for line in ANSI.sub("", stderr).splitlines():
        text = line.strip().strip("│╭╮╰╯─").strip()
        if text and text != "Error" and not text.startswith(("INFO", "DEBUG", "WARNING")):
            words.append(text)
    return " ".join(words)
