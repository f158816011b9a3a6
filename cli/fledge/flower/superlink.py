"""A fleet's SuperLink, reached through the flwr CLI: one flwr call per question."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from fledge.errors import FledgeError
from fledge.flower import cli
from fledge.flower.apps import config_value, copy_app
from fledge.flower.cli import CALL_TIMEOUT, FIX_VERSION, LOG_TIMEOUT
from fledge.flower.records import Node, RunInfo
from fledge.fsutil import PRIVATE_FILE, atomic_write
from fledge.inventory import Inventory

CONNECTION = "fledge"
FLWR_HOME_NAME = "flwr"
CONFIG_FILE = "config.toml"
CA_CERT = "pki/ca.crt"


def connection_toml(address: str, root_certificates: Path | None) -> str:
    """The flwr CLI's config.toml with one connection, named ``fledge``."""
    # json.dumps writes valid TOML basic strings (same escapes).
    trust = (
        f"root-certificates = {json.dumps(str(root_certificates))}"
        if root_certificates is not None
        else "insecure = true"
    )
    return (
        "# Written by fledge on every command; edits are lost.\n"
        "[superlink]\n"
        f'default = "{CONNECTION}"\n\n'
        f"[superlink.{CONNECTION}]\n"
        f"address = {json.dumps(address)}\n"
        f"{trust}\n"
    )


class SuperLink:
    """The fleet's SuperLink, reached through the flwr CLI."""

    def __init__(self, flwr_home: Path, address: str, root_certificates: Path | None) -> None:
        self.flwr_home = flwr_home
        self.address = address
        self.root_certificates = root_certificates

    @property
    def insecure(self) -> bool:
        return self.root_certificates is None

    @classmethod
    def for_inventory(cls, inventory: Inventory, address: str, home: Path) -> SuperLink:
        """The fleet's SuperLink at ``address``, with the flwr CLI's connection to it
        written into ``home`` (its FLWR_HOME), trusting the fleet's CA."""
        state_dir = inventory.state_dir.resolve()
        ca = None
        if inventory.tls:
            ca = state_dir / CA_CERT
            if not ca.is_file():
                raise FledgeError(
                    "the fleet's CA certificate is missing, so the SuperLink cannot be verified",
                    path=ca,
                    fix=f"run `fledge provision -i {inventory.path}` first; it creates the CA",
                )
        # The file names the CA the CLI trusts: private, and never half-written.
        atomic_write(home / CONFIG_FILE, connection_toml(address, ca), PRIVATE_FILE)
        return cls(home, address, ca)

    # One flwr call each.

    def list_nodes(self) -> list[Node]:
        doc = self._json(["supernode", "ls", CONNECTION])
        return self._parse(doc, "nodes", Node.from_json)

    def list_runs(self) -> list[RunInfo]:
        doc = self._json(["ls", CONNECTION])
        return self._parse(doc, "runs", RunInfo.from_json)

    def run_info(self, run_id: str) -> RunInfo:
        doc = self._json(["ls", CONNECTION, "--run-id", str(run_id)])
        runs = self._parse(doc, "runs", RunInfo.from_json)
        if len(runs) != 1:
            raise FledgeError(
                f"the SuperLink returned {len(runs)} runs for run {run_id}", fix=FIX_VERSION
            )
        return runs[0]

    def start_run(self, app: Traversable, overrides: Mapping[str, Any]) -> str:
        """Start ``app`` with run-config ``overrides``; returns the run ID at once.

        flwr reads the app in place and may write into it (``__pycache__``
        from checking the components; it rewrites a pyproject.toml that has
        legacy ``[tool.flwr.federations]``). An installed app may be
        read-only and a user's app is theirs: flwr gets a private copy.
        """
        config = [
            arg
            for key, value in overrides.items()
            for arg in ("-c", f"{key}={config_value(value)}")
        ]
        with tempfile.TemporaryDirectory(prefix="fledge-app-") as tmp:
            staged = Path(tmp) / app.name
            copy_app(app, staged)
            doc = self._json(["run", str(staged), CONNECTION, *config])
        run_id = doc.get("run-id")
        if not run_id:
            raise FledgeError("flwr started no run and gave no reason", fix=FIX_VERSION)
        return str(run_id)

    def stop_run(self, run_id: str) -> None:
        self._json(["stop", str(run_id), CONNECTION])

    def run_log(self, run_id: str) -> str:
        """The ServerApp's log so far; empty while the run has logged nothing."""
        try:
            done = cli.run_flwr(
                ["log", str(run_id), CONNECTION, "--show"], self.flwr_home, LOG_TIMEOUT
            )
        except subprocess.TimeoutExpired:
            return ""
        if done.returncode != 0:
            raise FledgeError(
                f"flwr log failed: {cli.panel_text(done.stderr)}", fix=self._fix_for(done.stderr)
            )
        return _without_connection_line(done.stdout)

    # Plumbing.

    def _json(self, args: list[str]) -> dict[str, Any]:
        command = f"flwr {args[0]}"
        try:
            done = cli.run_flwr([*args, "--format", "json"], self.flwr_home, CALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise FledgeError(
                f"{command} got no answer from the SuperLink at {self.address} "
                f"within {CALL_TIMEOUT:.0f} s",
                fix=self._unreachable_fix(),
            ) from None
        doc = cli.last_json_object(done.stdout)
        if doc is None:
            detail = (
                cli.panel_text(done.stderr) or done.stdout.strip() or f"exit code {done.returncode}"
            )
            raise FledgeError(f"{command} printed no JSON: {detail}", fix=FIX_VERSION)
        if doc.get("success") is not True:
            message = cli.error_text(str(doc.get("error-message", "no reason given")))
            raise FledgeError(f"{command} failed: {message}", fix=self._fix_for(message))
        return doc

    def _parse(self, doc: Mapping[str, Any], key: str, convert: Callable[[Any], Any]) -> list[Any]:
        try:
            return [convert(item) for item in doc[key]]
        except (KeyError, TypeError, ValueError) as exc:
            raise FledgeError(
                f"unexpected answer from flwr ({key}: {exc!r})", fix=FIX_VERSION
            ) from None

    def _fix_for(self, message: str) -> str | None:
        # flwr says "unavailable" both for a dead address and for a TLS failure.
        return self._unreachable_fix() if "unavailable" in message.lower() else None

    def _unreachable_fix(self) -> str:
        trust = (
            ""
            if self.insecure
            else (f", and that {self.root_certificates} is the CA that signed its certificate")
        )
        return (
            "check that the SuperLink runs on the coordinator (systemctl status "
            f"fledge-superlink) and that {self.address} is reachable from here{trust}"
        )


# flwr's own first line, not the ServerApp's: names the (tunnelled) address.
_CONNECTION_LINE = re.compile(r"\A(?:\x1b\[[0-9;]*m)*Using SuperLink: [^\n]*\n")


def _without_connection_line(text: str) -> str:
    return _CONNECTION_LINE.sub("", text, count=1)
