"""The lab image recipe: its hash, the cache, and what building it needs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import docker
import pytest

from fledge.errors import FledgeError
from fledge.lab import image


@pytest.fixture
def recipe(tmp_path: Path) -> Path:
    copy = tmp_path / "recipe"
    shutil.copytree(image.RECIPE_DIR, copy)
    return copy


def test_the_hash_is_stable(recipe: Path) -> None:
    assert image.recipe_hash("amd64", recipe_dir=recipe) == image.recipe_hash(
        "amd64", recipe_dir=recipe
    )
    assert image.recipe_hash("amd64", recipe_dir=recipe) == image.recipe_hash("amd64")


@pytest.mark.parametrize(
    "change",
    [
        lambda d: (d / "Dockerfile").write_text((d / "Dockerfile").read_text() + "\n# edited\n"),
        lambda d: (d / "rootfs/etc/ssh/sshd_config.d/fledge-lab.conf").write_text(
            "X11Forwarding no\n"
        ),
        lambda d: (d / "rootfs/etc/motd").write_text("a new file\n"),
        lambda d: (d / "rootfs/etc/sudoers.d/010_pi-nopasswd").chmod(0o755),
        lambda d: (d / "rootfs/etc/apt/sources.list.d/debian.sources").unlink(),
    ],
    ids=["dockerfile", "config-file", "added-file", "mode", "removed-file"],
)
def test_any_recipe_change_changes_the_hash(recipe: Path, change) -> None:
    before = image.recipe_hash("amd64", recipe_dir=recipe)
    change(recipe)
    assert image.recipe_hash("amd64", recipe_dir=recipe) != before


def test_packages_arch_and_base_are_in_the_hash() -> None:
    base = image.recipe_hash("amd64")
    assert image.recipe_hash("amd64", packages=(*image.PACKAGES, "curl")) != base
    assert image.recipe_hash("arm64") != base
    assert image.recipe_hash("amd64", base_image="debian:bookworm") != base
    assert image.rootfs_hash("amd64", (*image.PACKAGES, "curl")) != image.rootfs_hash("amd64")


def test_the_rootfs_is_not_rebuilt_for_a_dockerfile_change(
    recipe: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """debootstrap takes minutes: a changed recipe rebuilds the image on the cached rootfs."""
    before = image.image_tag("amd64")
    monkeypatch.setattr(image, "RECIPE_DIR", recipe)
    (recipe / "Dockerfile").write_text((recipe / "Dockerfile").read_text() + "\n# edited\n")
    after = image.image_tag("amd64")
    assert after != before  # the edited recipe is the one read
    built: list[str] = []

    def refuse_debootstrap(*args: object) -> None:
        raise AssertionError("debootstrap ran for a Dockerfile change")

    monkeypatch.setattr(image, "_import_rootfs", refuse_debootstrap)
    monkeypatch.setattr(image, "_build", lambda client, arch, tag, base, *_: built.append(base))
    client = _Client({image.rootfs_tag("amd64")})  # the rootfs is cached, the image is not
    assert image.ensure_image(client, "amd64", image.DEFAULT_MIRROR) == after
    assert built == [image.rootfs_tag("amd64")]


def test_tags_name_the_arch() -> None:
    assert image.image_tag("arm64").startswith("fledge-lab:arm64-")
    assert image.rootfs_tag("amd64").startswith("fledge-lab:amd64-rootfs-")


class _Images:
    def __init__(self, present: set[str]) -> None:
        self.present = present

    def get(self, tag: str) -> object:
        if tag not in self.present:
            raise docker.errors.ImageNotFound(tag)
        return object()


class _Client:
    """Just enough of docker.DockerClient: an image store and nothing to build with."""

    def __init__(self, present: set[str]) -> None:
        self.images = _Images(present)


def test_a_cached_image_is_reused_whatever_the_mirror() -> None:
    tag = image.image_tag("amd64")
    client = _Client({tag})  # no api attribute: building would fail the test
    assert image.ensure_image(client, "amd64", "http://mirror.invalid/debian") == tag
    assert image.ensure_image(client, "amd64", image.DEFAULT_MIRROR) == tag


def test_debootstrap_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/sbin/{name}")
    with pytest.raises(FledgeError) as caught:
        image.ensure_image(_Client(set()), "amd64", image.DEFAULT_MIRROR)
    assert "root" in caught.value.message
    assert "--base-image" in caught.value.fix


def test_debootstrap_must_be_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(FledgeError) as caught:
        image.ensure_image(_Client(set()), "amd64", image.DEFAULT_MIRROR)
    assert "apt-get install debootstrap" in caught.value.fix


def _binfmt(tmp_path: Path, text: str | None) -> Path:
    if text is not None:
        (tmp_path / "qemu-aarch64").write_text(text)
    return tmp_path


def _entry(state: str = "enabled", flags: str = "POCF") -> str:
    """/proc/sys/fs/binfmt_misc/qemu-aarch64 as the kernel shows it."""
    return (
        f"{state}\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: {flags}\n"
        "offset 0\nmagic 7f454c460201010000000000000000000200b700\n"
        "mask ffffffffffffff00fffffffffffffffffeffffff\n"
    )


def test_arm64_with_qemu_registered_for_containers_and_sudo_passes(tmp_path: Path) -> None:
    image.require_emulation("arm64", _binfmt(tmp_path, _entry()))


@pytest.mark.parametrize(
    ("text", "state"), [(None, "not registered"), (_entry(state="disabled"), "disabled")]
)
def test_arm64_without_qemu_says_what_to_install(
    tmp_path: Path, text: str | None, state: str
) -> None:
    with pytest.raises(FledgeError) as caught:
        image.require_emulation("arm64", _binfmt(tmp_path, text))
    assert state in caught.value.message
    assert "apt-get install qemu-user-static binfmt-support" in caught.value.fix


@pytest.mark.parametrize(("flags", "missing"), [("PF", "C"), ("P", "F, C"), ("OC", "F")])
def test_missing_flags_come_with_the_command_that_adds_them(
    tmp_path: Path, flags: str, missing: str
) -> None:
    """Debian registers qemu-aarch64 with PF: no C, so sudo in a device would fail."""
    with pytest.raises(FledgeError) as caught:
        image.require_emulation("arm64", _binfmt(tmp_path, _entry(flags=flags)))
    assert f"lacks the flag(s) {missing}" in caught.value.message
    rule = (
        r":qemu-aarch64:M:0:\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
        r":\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
        r":/usr/libexec/qemu-binfmt/aarch64-binfmt-P:POCF"
    )
    assert caught.value.fix.endswith(
        "echo -1 > /proc/sys/fs/binfmt_misc/qemu-aarch64 && "
        rf"printf '%s\n' '{rule}' > /proc/sys/fs/binfmt_misc/register"
    )
