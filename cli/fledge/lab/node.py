"""What the lab does inside its containers, over the Docker exec API.

The exec API is a channel we trust (it is the engine, not the network), so
it is how the lab learns each host's SSH host keys and installs the login key.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from fledge.errors import FledgeError
from fledge.lab.report import Reporter

if TYPE_CHECKING:
    from docker.models.containers import Container

BOOTED = ("running", "degraded")
AUTHORIZED_KEYS = "/home/pi/.ssh/authorized_keys"
_INSTALL_KEY = (
    f'set -e; umask 077; mkdir -p /home/pi/.ssh; printf "%s\\n" "$1" > {AUTHORIZED_KEYS}; '
    "chown -R pi:pi /home/pi/.ssh"
)


def run(container: Container, command: list[str]) -> tuple[int, str, str]:
    """Run ``command`` as root in ``container``: its exit status, stdout and stderr."""
    result = container.exec_run(command, demux=True)
    # With demux, the output is a pair: stdout and stderr, each None when empty.
    out, errors = cast(tuple[bytes | None, bytes | None], result.output)
    return (
        int(result.exit_code or 0),
        (out or b"").decode(errors="replace"),
        (errors or b"").decode(errors="replace"),
    )


def _exec(container: Container, command: list[str], host: str) -> str:
    """Run ``command`` as root in ``container``; its stdout, or a FledgeError."""
    status, out, errors = run(container, command)
    if status != 0:
        raise FledgeError(
            f"`{' '.join(command)}` failed (exit {status}): {errors or out}", host=host
        )
    return out


def wait_booted(containers: dict[str, Container], timeout: float, report: Reporter) -> None:
    """Wait until systemd in every container has finished booting."""
    pending = dict(containers)
    with report.step("waiting for systemd to boot") as waiting:
        while True:
            states = {host: _system_state(c, host) for host, c in pending.items()}
            pending = {host: c for host, c in pending.items() if states[host] not in BOOTED}
            if not pending:
                return
            if waiting.elapsed > timeout:
                break
            waiting.update(", ".join(f"{host} {states[host]}" for host in pending))
            time.sleep(1)
    host, container = next(iter(pending.items()))
    failed = run(container, ["systemctl", "--failed", "--no-pager"])[1]
    raise FledgeError(
        f"systemd did not finish booting within {timeout:.0f} s "
        f"(state: {states[host]}); failed units:\n{failed}",
        host=host,
        fix=f"look at `docker exec {container.name} journalctl -b --no-pager`; "
        "`fledge lab down` then `fledge lab up` starts afresh",
    )


def _system_state(container: Container, host: str) -> str:
    container.reload()
    if container.status != "running":
        logs = container.logs(tail=20).decode(errors="replace")
        raise FledgeError(
            f"the container {container.name} stopped ({container.status}):\n{logs}",
            host=host,
            fix="check the container run settings in docs/lab.md",
        )
    # Exit status is non-zero until "running"; the word is what matters.
    return run(container, ["systemctl", "is-system-running"])[1].strip()


def install_login_key(container: Container, host: str, public_key: str) -> None:
    """Make ``public_key`` the one key that logs in as pi (0600, owned by pi)."""
    _exec(container, ["sh", "-c", _INSTALL_KEY, "sh", public_key], host)


def host_keys(container: Container, host: str) -> list[str]:
    """The host's SSH public keys as ``type base64`` (comments dropped)."""
    out = _exec(container, ["sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"], host)
    keys = [" ".join(line.split()[:2]) for line in out.splitlines() if line.strip()]
    if not keys:
        raise FledgeError(
            "the host has no SSH host keys in /etc/ssh",
            host=host,
            fix="check ssh.service in the container: `systemctl status ssh`",
        )
    return keys


def check_units(container: Container, host: str, units: Sequence[str]) -> None:
    """Fail when one of ``units`` is not active (a degraded boot may still be usable)."""
    for unit in units:
        state = run(container, ["systemctl", "is-active", unit])[1].strip()
        if state != "active":
            status = run(container, ["systemctl", "status", "--no-pager", unit])[1]
            raise FledgeError(
                f"{unit} is {state}:\n{status}",
                host=host,
                fix=f"look at `docker exec {container.name} journalctl -u {unit}`",
            )
