"""The results folder's file transfer: tar streams from a host, unpacked safely (shell faked)."""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from fledge import results
from fledge.errors import FledgeError


def archive(*members: tuple[str, bytes | None, str]) -> bytes:
    """A tar of (name, content, kind) with kind "file", "dir" or "symlink" (content: target)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, (content or b"").decode()
                tar.addfile(info)
            else:
                info.size = len(content or b"")
                tar.addfile(info, io.BytesIO(content or b""))
    return buffer.getvalue()


class FakeShell:
    def __init__(self, tar: bytes = b"", *, exists: bool = True, stderr: str = "") -> None:
        self.tar = tar
        self.exists = exists
        self.stderr = stderr
        self.commands: list[list[str]] = []

    def run(self, argv: Sequence[str], timeout: float = 60) -> tuple[int, str, str]:
        self.commands.append(list(argv))
        return (0 if self.exists else 1), "", self.stderr

    @contextlib.contextmanager
    def stream(self, argv: Sequence[str], timeout: float = 60) -> Iterator[io.BytesIO]:
        self.commands.append(list(argv))
        yield io.BytesIO(self.tar)


def test_files_and_folders_arrive_with_their_content(tmp_path: Path) -> None:
    shell = FakeShell(
        archive(
            (".", None, "dir"),
            ("./final_model.npz", b"weights", "file"),
            ("./plots", None, "dir"),
            ("./plots/loss.png", b"png", "file"),
        )
    )
    copied = results.fetch(shell, "/var/lib/fledge/superlink/runs/7", tmp_path / "files")
    assert copied == ["final_model.npz", "plots/loss.png"]
    assert (tmp_path / "files" / "plots" / "loss.png").read_bytes() == b"png"
    assert shell.commands[-1] == [
        "sudo", "-n", "--", "tar", "-C", "/var/lib/fledge/superlink/runs/7", "-cf", "-", "--", ".",
    ]  # fmt: skip


def test_named_members_only(tmp_path: Path) -> None:
    shell = FakeShell(archive(("report.txt", b"r", "file")))
    assert results.fetch(shell, "/runs/7", tmp_path, ["report.txt"]) == ["report.txt"]
    assert shell.commands[-1][-2:] == ["--", "report.txt"]


def test_a_run_that_wrote_nothing_copies_nothing(tmp_path: Path) -> None:
    shell = FakeShell(exists=False)
    assert results.fetch(shell, "/runs/7", tmp_path / "files") == []
    assert len(shell.commands) == 1  # no tar without a directory


def test_named_files_of_a_missing_run_directory_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(FledgeError, match="does not exist"):
        results.fetch(FakeShell(exists=False), "/runs/7", tmp_path, ["report.txt"])


def test_sudo_that_wants_a_password_says_how_to_fix_it(tmp_path: Path) -> None:
    shell = FakeShell(exists=False, stderr="sudo: a password is required\n")
    with pytest.raises(FledgeError, match="password") as caught:
        results.fetch(shell, "/runs/7", tmp_path)
    assert caught.value.fix and "passwordless sudo" in caught.value.fix


@pytest.mark.parametrize("name", ["../escape.txt", "a/../../escape.txt", "/../escape.txt"])
def test_a_member_outside_the_folder_is_refused(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "run" / "files"
    with pytest.raises(FledgeError, match="outside the run's directory"):
        results.fetch(FakeShell(archive((name, b"x", "file"))), "/runs/7", dest)
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "run" / "escape.txt").exists()


def test_an_absolute_member_lands_inside_the_folder(tmp_path: Path) -> None:
    shell = FakeShell(archive(("/etc/evil", b"x", "file")))
    assert results.fetch(shell, "/runs/7", tmp_path) == ["etc/evil"]
    assert (tmp_path / "etc" / "evil").read_bytes() == b"x"


def test_links_are_not_followed_or_made(tmp_path: Path) -> None:
    shell = FakeShell(archive(("shadow", b"/etc/shadow", "symlink"), ("ok.txt", b"ok", "file")))
    assert results.fetch(shell, "/runs/7", tmp_path) == ["ok.txt"]
    assert not (tmp_path / "shadow").exists()


def test_garbage_instead_of_an_archive_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FledgeError, match="no readable archive"):
        results.fetch(FakeShell(b"sudo: unknown user\n" * 100), "/runs/7", tmp_path)


@pytest.mark.parametrize("path", ["model.npz", "out/model.npz", "./model.npz"])
def test_member_paths_inside_the_run(path: str) -> None:
    assert results.member_path(path) == path.removeprefix("./")
