"""SSH to fleet hosts with paramiko, with the host key always checked.

Host keys come only from a known_hosts file given by the caller; an unknown
or changed key fails the connection (never "trust on first use").
"""

from __future__ import annotations

import time
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
    key_file: Path | str,
    known_hosts: Path | str,
    *,
    timeout: float = 10.0,
    wait: float = 0.0,
) -> paramiko.SSHClient:
    """Log in as ``user`` with the private key ``key_file``, checking the host key.

    Connection-level failures (refused, reset, no SSH banner yet) are retried
    for up to ``wait`` seconds, for hosts that are still booting; a host key
    or login failure is final at once.
    """
    where = f"{user}@{host}:{port}"
    key_file, known_hosts = Path(key_file), Path(known_hosts)
    try:
        key = paramiko.PKey.from_path(key_file)
    except (OSError, paramiko.SSHException) as exc:
        raise FledgeError(
            f"cannot load the SSH private key: {exc}",
            path=key_file,
            fix="point at an unencrypted OpenSSH private key readable by you",
        ) from None
    client = paramiko.SSHClient()
    try:
        client.get_host_keys().load(str(known_hosts))
    except OSError as exc:
        raise FledgeError(f"cannot read known_hosts: {exc.strerror}", path=known_hosts) from None
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
                look_for_keys=False,
                allow_agent=False,
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
            raise FledgeError(
                f"SSH to {where}: login refused ({exc})",
                path=key_file,
                fix=f"install the public key of {key_file.name} in ~{user}/.ssh/authorized_keys "
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
