"""The controller's cache: entries made once, complete, and checked on every reuse."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ansible_collections.fledge.edge.plugins.plugin_utils import cache


def test_an_entry_is_made_once_and_then_reused(tmp_path: Path) -> None:
    entry = tmp_path / "cache" / "wheels-abc.tar"
    made: list[Path] = []

    def make(path: Path) -> None:
        made.append(path)
        path.write_bytes(b"wheels")

    assert not cache.present(entry)
    assert cache.ensure(entry, make) is True
    assert cache.ensure(entry, make) is False
    assert len(made) == 1 and made[0] != entry  # written aside, then moved in place
    assert entry.read_bytes() == b"wheels" and cache.present(entry)


@pytest.mark.parametrize(
    "damage",
    [
        lambda entry: entry.write_bytes(b"whee"),  # truncated
        lambda entry: entry.with_name(entry.name + ".sha256").unlink(),  # no checksum
        lambda entry: entry.unlink(),  # gone
    ],
    ids=["truncated", "no-checksum", "gone"],
)
def test_a_damaged_entry_is_made_again(tmp_path: Path, damage) -> None:
    entry = tmp_path / "images-1.tar.gz"
    cache.ensure(entry, lambda path: path.write_bytes(b"image"))
    damage(entry)
    assert not cache.present(entry)
    assert cache.ensure(entry, lambda path: path.write_bytes(b"image")) is True
    assert cache.present(entry)


def test_a_failed_make_leaves_nothing_behind(tmp_path: Path) -> None:
    entry = tmp_path / "wheels.tar"

    def fail(path: Path) -> None:
        path.write_bytes(b"half")
        raise RuntimeError("pip download failed")

    with pytest.raises(RuntimeError):
        cache.ensure(entry, fail)
    assert not entry.exists() and not cache.present(entry)
    assert [p.name for p in tmp_path.iterdir()] == [".wheels.tar.lock"]


def test_two_runs_at_once_make_an_entry_once(tmp_path: Path) -> None:
    entry = tmp_path / "wheels.tar"
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def slow(path: Path) -> None:
        calls.append(1)
        started.set()
        release.wait(10)
        path.write_bytes(b"wheels")

    first = threading.Thread(target=cache.ensure, args=(entry, slow))
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=cache.ensure, args=(entry, slow))
    second.start()  # waits for the first one's lock
    release.set()
    first.join(10)
    second.join(10)
    assert len(calls) == 1 and cache.present(entry)
