"""Commands on a fleet host as its operator: over SSH as Ansible logs in, or
on this machine for a host with ``ansible_connection: local``.

Commands are argument lists, quoted here for the remote shell, so that no
value (a path, a time) is ever read by a shell as more than one word.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from collections.abc import Iterator, Sequence
from typing import IO, Protocol

import paramiko

from fledge import control, ssh
from fledge.errors import FledgeError
from fledge.inventory import Host

# Seconds a command may stay silent before it counts as hung.
COMMAND_TIMEOUT = 60.0


class Shell(Protocol):
    """Where a host's commands run."""

    def run(self, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> tuple[int, str, str]:
        """Run a command to its end: (exit status, stdout, stderr)."""

    def stream(
        self, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT
    ) -> contextlib.AbstractContextManager[IO[bytes]]:
        """A command's stdout as a binary stream, read while it runs."""


class SSHShell:
    def __init__(self, client: paramiko.SSHClient) -> None:
        self.client = client

    def run(self, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> tuple[int, str, str]:
        return ssh.run(self.client, shlex.join(argv), timeout=timeout)

    @contextlib.contextmanager
    def stream(self, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> Iterator[IO[bytes]]:
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise FledgeError("the SSH connection closed")
        channel = transport.open_session(timeout=timeout)
        channel.settimeout(timeout)
        channel.exec_command(shlex.join(argv))
        channel.shutdown_write()
        # Binary files: lines and reads are bytes, as from a local process.
        stdout, stderr = channel.makefile("rb"), channel.makefile_stderr("rb")
        try:
            yield stdout  # type: ignore[misc]
            stdout.read()  # what the reader left (tar's padding): the command may end
            status = channel.recv_exit_status()
        finally:
            channel.close()
        if status != 0:
            raise FledgeError(
                f"`{shlex.join(argv)}` failed ({status}): "
                f"{stderr.read().decode(errors='replace').strip()}"
            )


class LocalShell:
    def run(self, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> tuple[int, str, str]:
        try:
            proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise FledgeError(f"`{shlex.join(argv)}` gave no answer in {timeout:g} s") from None
        except OSError as exc:
            return 127, "", str(exc)
        return proc.returncode, proc.stdout, proc.stderr

    @contextlib.contextmanager
    def stream(self, argv: Sequence[str], timeout: float = COMMAND_TIMEOUT) -> Iterator[IO[bytes]]:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None and proc.stderr is not None
        try:
            yield proc.stdout
            proc.stdout.read()  # what the reader left: the command may end
        finally:
            proc.stdout.close()
            try:
                status = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                status = proc.wait()
        if status != 0:
            raise FledgeError(
                f"`{shlex.join(argv)}` failed ({status}): "
                f"{proc.stderr.read().decode(errors='replace').strip()}"
            )


@contextlib.contextmanager
def shell(host: Host, *, timeout: float = control.LOGIN_TIMEOUT) -> Iterator[Shell]:
    """A shell on ``host`` while the block runs."""
    if host.vars.get("ansible_connection") == "local":
        yield LocalShell()
        return
    user, key_file, known_hosts = control.ssh_login(host)
    with ssh.connect(host.address, host.port, user, key_file, known_hosts, timeout=timeout) as c:
        yield SSHShell(c)


def sudo(argv: Sequence[str]) -> list[str]:
    """``argv`` as root through sudo, as Ansible's become does; never asking for a
    password (fledge would hang): a host that wants one fails with :data:`SUDO_FIX`."""
    return ["sudo", "-n", "--", *argv]


SUDO_FIX = (
    "fledge runs root's commands on hosts with `sudo -n`, as Ansible's become does: "
    "give the login user passwordless sudo on that host"
)


def needs_password(stderr: str) -> bool:
    return "password is required" in stderr or "a terminal is required" in stderr
