"""SSH to fleet hosts with paramiko, with the host key always checked.

Host keys come only from the known_hosts files given by the caller; an
unknown or changed key fails the connection (never "trust on first use").
:func:`forward` carries TCP connections to a port on the host's loopback
through the SSH connection (``ssh -L``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn

import paramiko

from fledge.errors import FledgeError


class _UnknownHostKey(paramiko.SSHException):
    pass


class _Reject(paramiko.RejectPolicy):
    """RejectPolicy, raising an error that tells "unknown key" from a network hiccup."""

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> NoReturn:
        raise _UnknownHostKey(f"no {key.get_name()} key for {hostname} in known_hosts")


def connect(
    host: str,
    port: int,
    user: str,
    key_file: Path | str | None,
    known_hosts: Path | str | Sequence[Path],
    *,
    timeout: float = 10.0,
    wait: float = 0.0,
) -> paramiko.SSHClient:
    """Log in as ``user`` with the private key ``key_file`` (else the SSH agent's
    and ~/.ssh's keys), checking the host key against ``known_hosts``.

    Connection-level failures (refused, reset, no SSH banner yet) are retried
    for up to ``wait`` seconds, for hosts that are still booting; a host key
    or login failure is final at once.
    """
    where = f"{user}@{host}:{port}"
    files = [Path(known_hosts)] if isinstance(known_hosts, str | Path) else list(known_hosts)
    key = None
    if key_file is not None:
        key_file = Path(key_file)
        try:
            key = paramiko.PKey.from_path(key_file)
        except (OSError, paramiko.SSHException) as exc:
            raise FledgeError(
                f"cannot load the SSH private key: {exc}",
                path=key_file,
                fix="point at an unencrypted OpenSSH private key readable by you",
            ) from None
    client = paramiko.SSHClient()
    for path in files:
        try:
            client.get_host_keys().load(str(path))
        except OSError as exc:
            raise FledgeError(f"cannot read known_hosts: {exc.strerror}", path=path) from None
    known_hosts = files[0]
    client.set_missing_host_key_policy(_Reject())
    deadline = time.monotonic() + wait
    while True:
        try:
            client.connect(
                host,
                port,
                username=user,
                pkey=key,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                look_for_keys=key is None,
                allow_agent=key is None,
            )
            return client
        except paramiko.BadHostKeyException:
            client.close()
            raise FledgeError(
                f"SSH to {where}: the host key differs from the one in known_hosts",
                path=known_hosts,
                fix="if the host was reinstalled, replace its line with the new key, read over a "
                "channel you trust; otherwise someone may be in the middle: do not connect",
            ) from None
        except _UnknownHostKey as exc:
            client.close()
            raise FledgeError(
                f"SSH to {where}: unknown host key ({exc})",
                path=known_hosts,
                fix="add the host's key to known_hosts, read over a channel you trust "
                "(its console, or ssh-keyscan on a network you trust)",
            ) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            mine = key_file.name if isinstance(key_file, Path) else "your key"
            raise FledgeError(
                f"SSH to {where}: login refused ({exc})",
                path=key_file,
                fix=f"install the public key of {mine} in ~{user}/.ssh/authorized_keys "
                "on that host",
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            if time.monotonic() >= deadline:
                raise FledgeError(
                    f"SSH to {where} failed: {exc or type(exc).__name__}",
                    fix="check that the host is up and sshd listens on that port",
                ) from None
            time.sleep(1)


def run(
    client: paramiko.SSHClient, command: str, timeout: float | None = None
) -> tuple[int, str, str]:
    """Run ``command``; return (exit status, stdout, stderr) once it has finished.

    stderr is drained beside stdout: unread output holds the channel's window,
    so reading one stream after the other can hang on a chatty command.
    """
    stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
    stdin.close()
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            err_bytes = pool.submit(stderr.read)
            out = stdout.read()
            errors = err_bytes.result()
    except TimeoutError:
        raise FledgeError(f"`{command}` gave no output for {timeout} s") from None
    status = stdout.channel.recv_exit_status()
    return status, out.decode(errors="replace"), errors.decode(errors="replace")


@contextlib.contextmanager
def forward(
    client: paramiko.SSHClient, remote: tuple[str, int], local_port: int = 0
) -> Iterator[int]:
    """A port on this machine's loopback (``local_port``, else a free one), open
    while the block runs, whose connections reach ``remote`` (an address as
    the SSH host sees it) through ``client``'s connection."""
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise FledgeError("the SSH connection closed before the tunnel opened")
    try:
        listener = socket.create_server(("127.0.0.1", local_port))
    except OSError as exc:
        raise FledgeError(
            f"cannot listen on 127.0.0.1:{local_port}: {exc.strerror}",
            fix="choose another port, or none (a free one is picked)",
        ) from None
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                local, peer = listener.accept()
            except OSError:
                return
            try:
                channel = transport.open_channel("direct-tcpip", remote, peer)
            except (paramiko.SSHException, EOFError):
                local.close()
                continue
            threading.Thread(target=_pump, args=(local, channel, stop), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        with contextlib.suppress(OSError):  # wakes the accepting thread: the port closes now
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()


def _pump(local: socket.socket, channel: paramiko.Channel, stop: threading.Event) -> None:
    """Copy bytes both ways, one thread each (a blocked send must not stop the
    other direction), until either side closes or the tunnel does."""
    done = threading.Event()

    def copy(recv: Callable[[int], bytes], send: Callable[[bytes], object]) -> None:
        with contextlib.suppress(OSError, EOFError, paramiko.SSHException):
            while data := recv(1 << 16):
                send(data)
        done.set()

    threading.Thread(target=copy, args=(channel.recv, local.sendall), daemon=True).start()
    threading.Thread(target=copy, args=(local.recv, channel.sendall), daemon=True).start()
    while not done.wait(0.5) and not stop.is_set():
        pass
    channel.close()
    # shutdown, not close alone: it wakes the thread still reading, and tells
    # the local client that the other side is gone.
    with contextlib.suppress(OSError):
        local.shutdown(socket.SHUT_RDWR)
    local.close()
