"""fledge.ssh against an in-process paramiko SSH server on loopback."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fledge import ssh
from fledge.errors import FledgeError
from fledge.lab.files import known_host

# A command that writes more to stderr than an SSH channel's window (2 MiB).
CHATTY = "chatty"
BIG = 3 * 1024 * 1024


class _Server(paramiko.ServerInterface):
    def __init__(self, allowed: paramiko.PKey) -> None:
        self.allowed = allowed

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if username == "pi" and key == self.allowed:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return paramiko.OPEN_SUCCEEDED

    def check_channel_direct_tcpip_request(
        self, chanid: int, origin: tuple[str, int], destination: tuple[str, int]
    ) -> int:
        """As sshd with AllowTcpForwarding: connect to the destination and relay."""
        self.destination = destination
        return paramiko.OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        threading.Thread(target=self._run, args=(channel, command.decode()), daemon=True).start()
        return True

    @staticmethod
    def _run(channel: paramiko.Channel, command: str) -> None:
        if command == CHATTY:
            channel.sendall_stderr(b"e" * BIG)
            channel.sendall(b"done\n")
            channel.send_exit_status(0)
        else:
            channel.sendall(f"ran {command}\n".encode())
            channel.sendall_stderr(b"a warning\n")
            channel.send_exit_status(3)
        # EOF, not close: closing can overtake the server's reply to the exec request.
        channel.shutdown_write()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, paramiko.PKey, Path]]:
    """(port, host key, login key file) of a server that accepts connections until the end."""
    host_key = paramiko.Ed25519Key.from_private_key_file(_keygen(tmp_path / "host"))
    login_file = _keygen(tmp_path / "login")
    login = paramiko.PKey.from_path(login_file)
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(sock)
            transport.add_server_key(host_key)
            # A client that rejected this server's host key hangs up mid-handshake.
            with contextlib.suppress(paramiko.SSHException, OSError, EOFError):
                handler = _Server(login)
                transport.start_server(server=handler)
                threading.Thread(target=_relay, args=(transport, handler), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], host_key, login_file
    stop.set()
    listener.close()


def _relay(transport: paramiko.Transport, handler: _Server) -> None:
    """Serve the direct-tcpip channels the client opens: one TCP connection each."""
    while transport.is_active():
        channel = transport.accept(timeout=1)
        if channel is None or not hasattr(handler, "destination"):
            continue
        target = socket.create_connection(handler.destination)

        def pump(src, dst) -> None:  # type: ignore[no-untyped-def]
            with contextlib.suppress(OSError, EOFError):
                while data := src.recv(65536):
                    dst.sendall(data)
            with contextlib.suppress(OSError):  # EOF onwards, as sshd passes it on
                dst.shutdown(socket.SHUT_WR) if isinstance(dst, socket.socket) else dst.close()

        threading.Thread(target=pump, args=(channel, target), daemon=True).start()
        threading.Thread(target=pump, args=(target, channel), daemon=True).start()


def _keygen(path: Path) -> Path:
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    return path


def _known_hosts(tmp_path: Path, port: int, key: paramiko.PKey) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(f"{known_host('127.0.0.1', port)} {key.get_name()} {key.get_base64()}\n")
    return path


def test_run_returns_status_stdout_and_stderr(server, tmp_path: Path) -> None:
    port, host_key, login = server
    with ssh.connect("127.0.0.1", port, "pi", login, _known_hosts(tmp_path, port, host_key)) as c:
        assert ssh.run(c, "true") == (3, "ran true\n", "a warning\n")


def test_run_drains_a_chatty_stderr(server, tmp_path: Path) -> None:
    port, host_key, login = server
    with ssh.connect("127.0.0.1", port, "pi", login, _known_hosts(tmp_path, port, host_key)) as c:
        status, out, errors = ssh.run(c, CHATTY, timeout=20)
    assert (status, out, len(errors)) == (0, "done\n", BIG)


def test_an_unknown_host_key_is_rejected(server, tmp_path: Path) -> None:
    port, _, login = server
    (tmp_path / "empty").write_text("")
    with pytest.raises(FledgeError, match="unknown host key") as caught:
        ssh.connect("127.0.0.1", port, "pi", login, tmp_path / "empty")
    assert "channel you trust" in caught.value.fix


def test_a_changed_host_key_is_rejected(server, tmp_path: Path) -> None:
    port, _, login = server
    impostor = paramiko.PKey.from_path(_keygen(tmp_path / "other"))
    with pytest.raises(FledgeError, match="differs"):
        ssh.connect("127.0.0.1", port, "pi", login, _known_hosts(tmp_path, port, impostor))


def test_a_refused_login_is_final(server, tmp_path: Path) -> None:
    port, host_key, _ = server
    stranger = _keygen(tmp_path / "stranger")
    with pytest.raises(FledgeError, match="login refused"):
        ssh.connect(
            "127.0.0.1", port, "pi", stranger, _known_hosts(tmp_path, port, host_key), wait=30
        )


def test_nobody_listening_fails_after_the_wait(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again: nothing listens there
    login = _keygen(tmp_path / "login")
    (tmp_path / "kh").write_text("")
    with pytest.raises(FledgeError, match="failed") as caught:
        ssh.connect("127.0.0.1", port, "pi", login, tmp_path / "kh", wait=1)
    assert "sshd listens" in caught.value.fix


@pytest.fixture
def echo() -> Iterator[int]:
    """A TCP echo server on loopback: the service behind the tunnel."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def test_a_forwarded_port_reaches_the_hosts_loopback(
    tmp_path: Path, server: tuple[int, paramiko.PKey, Path], echo: int
) -> None:
    """What `fledge round` does to reach the Control API: ssh -L, with the host key checked."""
    port, host_key, login = server
    payload = b"x" * (3 << 20)  # several SSH windows' worth, both ways
    with ssh.connect("127.0.0.1", port, "pi", login, _known_hosts(tmp_path, port, host_key)) as c:
        with ssh.forward(c, ("127.0.0.1", echo)) as local_port:
            for _ in range(2):  # one connection after the other, as flwr calls come
                with socket.create_connection(("127.0.0.1", local_port), timeout=10) as conn:
                    sender = threading.Thread(target=conn.sendall, args=(payload,))
                    sender.start()
                    received = bytearray()
                    while len(received) < len(payload):
                        received += conn.recv(1 << 16)
                    sender.join()
                assert bytes(received) == payload
        with pytest.raises(OSError):  # closed with the block
            socket.create_connection(("127.0.0.1", local_port), timeout=2)
