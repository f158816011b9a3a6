"""`fledge logs`: journals from the hosts, with the hosts' shells faked (fledge.remote.shell)."""

from __future__ import annotations

import contextlib
import io
import shlex
import stat
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fledge import journal, remote
from fledge.errors import FledgeError
from fledge.inventory import load
from fledge.main import app

runner = CliRunner()

INVENTORY = """\
all:
  vars: {ansible_user: pi}
  children:
    superlink:
      hosts:
        coordinator: {ansible_host: 10.0.0.1}
    supernodes:
      hosts:
        pi-1: {ansible_host: 10.0.0.21}
        pi-2: {ansible_host: 10.0.0.22}
        pi-3: {ansible_host: 10.0.0.23, supernode_runtime: container}
"""
SUDO = ["sudo", "-n", "--"]
JOURNALCTL = ["journalctl", "--unit"]


def entries(host: str, n: int = 3) -> bytes:
    return b"".join(
        f"2026-12-02T10:00:0{i}+0000 {host} flower-supernode[42]: line {i}\n".encode()
        for i in range(n)
    )


class Interrupting(io.BytesIO):
    """A followed journal: its lines, then Ctrl-C."""

    def __iter__(self) -> Iterator[bytes]:
        yield from io.BytesIO(self.getvalue())
        raise KeyboardInterrupt


class Endless(io.BytesIO):
    """A followed journal that goes on until its session closes."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.ended = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield from io.BytesIO(self.getvalue())
        self.ended.wait(30)


@dataclass
class FakeHost:
    reachable: bool = True
    journal: bytes = b""
    sudo_password: bool = False
    follow: type[io.BytesIO] | None = None  # the stream of a followed journal
    streams: list = field(default_factory=list)  # (argv, timeout) per journal read
    closed: int = 0


@dataclass
class Fleet:
    path: Path
    hosts: dict[str, FakeHost]
    opened: list[io.BytesIO] = field(default_factory=list)

    def logs(self, *args: object):
        result = runner.invoke(app, ["logs", "-i", str(self.path), *map(str, args)])
        assert "Traceback" not in result.output, result.output
        return result


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Fleet:
    path = tmp_path / "fleet.yml"
    path.write_text(INVENTORY)
    names = ("coordinator", "pi-1", "pi-2", "pi-3")
    fake = Fleet(path, {name: FakeHost(journal=entries(name)) for name in names})

    class Shell:
        def __init__(self, host: FakeHost) -> None:
            self.host = host

        def run(self, argv: Sequence[str], timeout: float = 60.0) -> tuple[int, str, str]:
            raise AssertionError(f"logs runs nothing to its end: {argv}")

        @contextlib.contextmanager
        def stream(self, argv: Sequence[str], timeout: float = 60.0) -> Iterator[io.BytesIO]:
            self.host.streams.append((list(argv), timeout))
            follow = "--follow" in argv and self.host.follow is not None
            assert self.host.follow is not None or "--follow" not in argv
            out = self.host.follow(self.host.journal) if follow else io.BytesIO(self.host.journal)
            fake.opened.append(out)
            if self.host.sudo_password:
                out = io.BytesIO(b"")
            try:
                yield out
            finally:
                self.host.closed += 1
                if isinstance(out, Endless):
                    out.ended.set()  # what closing the SSH channel does to a reader
            if self.host.sudo_password:  # remote.SSHShell: the exit status, after the output
                raise FledgeError(f"`{' '.join(argv)}` failed (1): sudo: a password is required")

    @contextlib.contextmanager
    def shell(host, *, timeout: float = 20.0) -> Iterator[Shell]:
        if not fake.hosts[host.name].reachable:
            raise FledgeError(f"SSH to pi@{host.address}:22 failed: timed out")
        yield Shell(fake.hosts[host.name])

    monkeypatch.setattr(remote, "shell", shell)
    return fake


# --- to stdout ----------------------------------------------------------------


def test_one_device_goes_to_stdout_as_journalctl_writes_it(fleet: Fleet) -> None:
    result = fleet.logs("pi-1", "--lines", 20)
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == entries("pi-1")
    ((argv, timeout),) = fleet.hosts["pi-1"].streams
    assert argv == [
        *SUDO,
        *JOURNALCTL,
        "fledge-supernode.service",
        "--no-pager",
        "--output=short-iso",
        "--lines=20",
    ]
    assert timeout == journal.READ_TIMEOUT
    assert fleet.hosts["pi-1"].closed == 1


def test_the_coordinator_shows_the_superlinks_journal(fleet: Fleet) -> None:
    assert fleet.logs("coordinator").exit_code == 0
    ((argv, _),) = fleet.hosts["coordinator"].streams
    assert argv[3:6] == [*JOURNALCTL, "fledge-superlink.service"]
    assert "--lines" not in " ".join(argv)  # the whole journal, as journalctl gives it


def test_a_container_device_has_the_same_unit(fleet: Fleet) -> None:
    """The container runtime's unit runs the docker client in the foreground."""
    assert fleet.logs("pi-3").exit_code == 0
    assert fleet.hosts["pi-3"].streams[0][0][5] == "fledge-supernode.service"


@pytest.mark.parametrize(
    "since", ["2026-12-01 10:00", "yesterday", "-1h", "30 min ago", "@1764668400", "today UTC"]
)
def test_since_takes_journalctls_formats_as_one_word(fleet: Fleet, since: str) -> None:
    assert fleet.logs("pi-1", "--since", since).exit_code == 0
    assert f"--since={since}" in fleet.hosts["pi-1"].streams[0][0]


@pytest.mark.parametrize(
    "since", ["today; rm -rf /", "$(reboot)", "`id`", "x' --output=json '", "a\nb", "", " "]
)
def test_since_that_a_shell_would_read_is_refused_before_any_login(
    fleet: Fleet, since: str
) -> None:
    result = fleet.logs("pi-1", "--since", since)
    assert result.exit_code == 1
    assert "--since" in result.stderr and "not a time journalctl reads" in result.stderr
    assert fleet.hosts["pi-1"].streams == []


def test_quoting_keeps_every_value_one_word() -> None:
    """Even a value that passed the check reaches the remote shell as one word."""
    argv = journal.Query(since="30 min ago", lines=5).argv("fledge-supernode.service")
    assert shlex.split(shlex.join(argv)) == argv


def test_several_hosts_one_after_the_other_each_line_with_its_host(fleet: Fleet) -> None:
    result = fleet.logs("pi-2", "coordinator", "pi-2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 6  # pi-2 once
    assert all(line.startswith("pi-2        | ") for line in lines[:3])
    assert all(line.startswith("coordinator | ") for line in lines[3:])


def test_unknown_hosts_are_named_with_the_inventory_and_the_valid_names(fleet: Fleet) -> None:
    result = fleet.logs("pi-1", "pi-9", "gateway")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert str(fleet.path) in message
    assert "'pi-9', 'gateway'" in message
    assert "coordinator, pi-1, pi-2, pi-3" in message
    assert fleet.hosts["pi-1"].streams == []  # nothing was read


def test_no_host_and_no_all_asks_which(fleet: Fleet) -> None:
    result = fleet.logs()
    assert result.exit_code == 1 and "--all" in result.stderr


def test_a_host_whose_sudo_wants_a_password_fails_clearly(fleet: Fleet) -> None:
    fleet.hosts["pi-1"].sudo_password = True
    result = fleet.logs("pi-1")
    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "pi-1: sudo needs a password there, so fledge cannot read the journal" in message
    assert "passwordless sudo" in message
    assert result.stdout == ""


def test_an_unreachable_host_fails_and_the_others_are_shown(fleet: Fleet) -> None:
    fleet.hosts["pi-1"].reachable = False
    result = fleet.logs("pi-1", "pi-2")
    assert result.exit_code == 1
    assert "pi-1: SSH to pi@10.0.0.21:22 failed" in " ".join(result.stderr.split())
    assert result.stdout.count("pi-2 | ") == 3


# --- --follow -------------------------------------------------------------------


def test_follow_streams_until_ctrl_c_then_exits_130_and_closes(fleet: Fleet) -> None:
    fleet.hosts["pi-1"].follow = Interrupting
    result = fleet.logs("pi-1", "--follow", "--lines", 0)
    assert result.exit_code == 130
    assert result.stdout_bytes == entries("pi-1")  # what came before Ctrl-C was shown
    ((argv, timeout),) = fleet.hosts["pi-1"].streams
    assert argv[-2:] == ["--lines=0", "--follow"]
    assert timeout >= 24 * 3600  # a quiet journal is no hung host
    assert fleet.hosts["pi-1"].closed == 1


def test_follow_several_hosts_interleaves_lines_with_their_host(fleet: Fleet) -> None:
    for name in ("pi-1", "pi-2"):
        fleet.hosts[name].follow = io.BytesIO  # journals that end (the host went down)
    fleet.hosts["pi-3"].reachable = False
    result = fleet.logs("pi-1", "pi-2", "pi-3", "-f")
    assert result.exit_code == 1  # pi-3
    lines = result.stdout.splitlines()
    assert sorted(lines) == sorted(
        [f"pi-1 | {line}" for line in entries("pi-1").decode().splitlines()]
        + [f"pi-2 | {line}" for line in entries("pi-2").decode().splitlines()]
    )
    assert "pi-3: SSH to pi@10.0.0.23:22 failed" in " ".join(result.stderr.split())
    assert fleet.hosts["pi-1"].closed == fleet.hosts["pi-2"].closed == 1


def test_following_several_hosts_closes_every_session_when_stopped(fleet: Fleet) -> None:
    """Ctrl-C in `fledge logs A B -f` closes the iterator: each SSH session closes."""
    hosts = load(fleet.path).supernodes[:2]
    for host in hosts:
        fleet.hosts[host.name].follow = Endless
    query = journal.Query(follow=True)
    lines = journal.follow_all(hosts, query)
    got = [next(lines) for _ in range(6)]
    assert {line.host for line in got} == {"pi-1", "pi-2"}
    lines.close()
    assert [fleet.hosts[h.name].closed for h in hosts] == [1, 1]


def test_follow_cannot_go_to_files(fleet: Fleet) -> None:
    result = fleet.logs("--all", "--follow")
    assert result.exit_code == 1 and "--follow" in result.stderr
    assert all(not host.streams for host in fleet.hosts.values())


# --- --all: one file per device ---------------------------------------------------


def test_all_writes_one_private_file_per_device_into_the_state_dir(fleet: Fleet) -> None:
    result = fleet.logs("--all", "--since", "today")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    (folder,) = (fleet.path.parent / ".fledge" / "logs").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["pi-1.log", "pi-2.log", "pi-3.log"]
    for name in ("pi-1", "pi-2", "pi-3"):
        path = folder / f"{name}.log"
        assert path.read_bytes() == entries(name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert fleet.hosts["coordinator"].streams == []  # devices only
    assert folder.name in " ".join(result.stderr.split())  # it says where
    assert "3 of 3 journals" in result.stderr


def test_a_failing_device_stops_no_other_and_leaves_no_file(fleet: Fleet, tmp_path: Path) -> None:
    fleet.hosts["pi-2"].reachable = False
    fleet.hosts["pi-3"].sudo_password = True
    out = tmp_path / "journals"
    result = fleet.logs("--all", "--output-dir", out)
    assert result.exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == ["pi-1.log"]
    assert (out / "pi-1.log").read_bytes() == entries("pi-1")
    message = " ".join(result.stderr.split())
    assert "pi-2: SSH to pi@10.0.0.22:22 failed" in message
    assert "pi-3: sudo needs a password there" in message
    assert "1 of 3 journals" in message


def test_output_dir_with_named_hosts_writes_their_files(fleet: Fleet, tmp_path: Path) -> None:
    result = fleet.logs("coordinator", "pi-1", "--output-dir", tmp_path / "out", "-n", 5)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "coordinator.log",
        "pi-1.log",
    ]
    assert fleet.hosts["pi-1"].streams[0][0][-1] == "--lines=5"


def test_all_and_hosts_together_are_refused(fleet: Fleet) -> None:
    result = fleet.logs("pi-1", "--all")
    assert result.exit_code == 1 and "not both" in result.stderr


def test_two_runs_in_the_same_second_get_two_folders(fleet: Fleet) -> None:
    assert fleet.logs("--all").exit_code == 0
    assert fleet.logs("--all").exit_code == 0
    assert len(list((fleet.path.parent / ".fledge" / "logs").iterdir())) == 2
