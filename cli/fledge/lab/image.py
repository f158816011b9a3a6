"""The lab's base image: Debian 12 made to look like Raspberry Pi OS Lite.

Built locally in two cached steps, because no container registry may be
reachable:

1. ``debootstrap`` makes a root file system, imported as
   ``fledge-lab:<arch>-rootfs-<hash>`` (70 s on amd64, 4-5 min emulated arm64);
2. the Dockerfile in ``recipe/`` turns it into ``fledge-lab:<arch>-<hash>``.

Each hash covers everything that goes into its image except the mirror, so an
image is rebuilt exactly when its recipe changes, and step 1 is not redone
when only the Dockerfile changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from fledge.errors import FledgeError
from fledge.lab.report import SILENT, Reporter
from fledge.lazy import lazy

if TYPE_CHECKING:
    import docker
else:
    docker = lazy("docker")

REPOSITORY = "fledge-lab"
ARCH_LABEL = "io.fledge.lab.arch"
RECIPE_LABEL = "io.fledge.lab.recipe"
RECIPE_DIR = Path(__file__).with_name("recipe")
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
MIRROR_ENV = "FLEDGE_LAB_MIRROR"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")
# What Raspberry Pi OS Lite has that matters to fledge, nothing that fledge's
# roles install themselves (docker, python3-venv, ...): they must do it for real.
PACKAGES = (
    "ca-certificates",
    "dbus",
    "iproute2",
    "openssh-server",
    "procps",
    "python3",
    "sudo",
    "systemd",
    "systemd-sysv",
    "systemd-timesyncd",
)
# Numeric owners: the image's /etc/passwd, not this machine's, names them.
TAR = ["tar", "--numeric-owner", "-c", "."]
# Debian's names (Docker's too); each emulated by this QEMU binfmt handler.
_QEMU = {"amd64": "qemu-x86_64", "arm64": "qemu-aarch64"}
ARCHES = tuple(_QEMU)


def _digest(document: object) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def rootfs_hash(arch: str, packages: tuple[str, ...] = PACKAGES) -> str:
    """What debootstrap is asked for (the mirror only says where from)."""
    return _digest(
        {"suite": SUITE, "variant": "minbase", "arch": arch, "packages": sorted(packages)}
    )


def recipe_hash(
    arch: str,
    base_image: str | None = None,
    packages: tuple[str, ...] = PACKAGES,
    recipe_dir: Path | None = None,
) -> str:
    """Everything the final image is made from: its base, packages and recipe files."""
    recipe_dir = recipe_dir or RECIPE_DIR
    files = {
        str(path.relative_to(recipe_dir)): [os.access(path, os.X_OK), path.read_bytes().hex()]
        for path in sorted(recipe_dir.rglob("*"))
        if path.is_file()
    }
    base = base_image or f"rootfs:{rootfs_hash(arch, packages)}"
    return _digest({"arch": arch, "base": base, "packages": sorted(packages), "files": files})


def image_tag(arch: str, base_image: str | None = None) -> str:
    return f"{REPOSITORY}:{arch}-{recipe_hash(arch, base_image)[:12]}"


def rootfs_tag(arch: str) -> str:
    return f"{REPOSITORY}:{arch}-rootfs-{rootfs_hash(arch)[:12]}"


def require_emulation(arch: str, binfmt_dir: Path | None = None) -> None:
    """Fail unless the kernel runs ``arch`` binaries through QEMU as the lab needs.

    Flag F: the kernel opens the interpreter at registration, so containers,
    which do not have it, can use it. Flag C: a setuid program runs with its
    owner's credentials, so sudo works in an emulated device (Debian's
    qemu-user-static registers without C).
    """
    name = _QEMU[arch]
    entry = (binfmt_dir or BINFMT_DIR) / name
    try:
        lines = entry.read_text().splitlines()
    except OSError:
        lines = []
    install = "apt-get install qemu-user-static binfmt-support"
    if not lines:
        raise FledgeError(
            f"{arch} devices need the {name} binfmt handler, which is not registered",
            path=entry,
            fix=install,
        )
    if lines[0] != "enabled":
        raise FledgeError(
            f"{arch} devices need the {name} binfmt handler, which is disabled",
            path=entry,
            fix=f"update-binfmts --enable {name} (or: {install})",
        )
    # "interpreter PATH", "flags: PF", "offset 0", "magic HEX", "mask HEX"
    info = {key.rstrip(":"): value for key, _, value in (line.partition(" ") for line in lines[1:])}
    missing = [flag for flag in "FC" if flag not in info.get("flags", "")]
    if missing:
        raise FledgeError(
            f"the {name} binfmt handler lacks the flag(s) {', '.join(missing)}: F lets containers "
            "use it, C lets sudo work in emulated devices",
            path=entry,
            fix=f"register it again with them (this lasts until reboot): {_register(name, info)}",
        )


def _register(name: str, info: dict[str, str]) -> str:
    """The shell command that registers ``name`` again, as now but with flags POCF."""

    def escaped(hexdigits: str) -> str:
        return "".join(f"\\x{hexdigits[i : i + 2]}" for i in range(0, len(hexdigits), 2))

    rule = (
        f":{name}:M:{info['offset']}:{escaped(info['magic'])}:{escaped(info.get('mask', ''))}"
        f":{info['interpreter']}:POCF"
    )
    where = BINFMT_DIR
    return f"echo -1 > {where / name} && printf '%s\\n' '{rule}' > {where / 'register'}"


def ensure_image(
    client: docker.DockerClient,
    arch: str,
    mirror: str,
    base_image: str | None = None,
    report: Reporter = SILENT,
) -> str:
    """The tag of the lab image for ``arch``, built now if not cached."""
    tag = image_tag(arch, base_image)
    if _exists(client, tag):
        return tag
    if base_image:
        base, apt_packages = base_image, " ".join(PACKAGES)
    else:
        base, apt_packages = rootfs_tag(arch), ""
        if not _exists(client, base):
            _import_rootfs(client, arch, mirror, base, report)
    _build(client, arch, tag, base, apt_packages, recipe_hash(arch, base_image), report)
    return tag


def remove_images(client: docker.DockerClient) -> tuple[list[str], list[str]]:
    """Remove every fledge-lab image; return (removed, still in use)."""
    removed, in_use = [], []
    for image in client.images.list(name=REPOSITORY):
        for tag in image.tags:
            try:
                client.images.remove(tag, noprune=False)
                removed.append(tag)
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
                in_use.append(tag)
    return removed, in_use


def _exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def _import_rootfs(
    client: docker.DockerClient, arch: str, mirror: str, tag: str, report: Reporter
) -> None:
    _require_debootstrap()
    # Not under /tmp: that may be a small tmpfs, and the tree is ~320 MB.
    work = Path(tempfile.mkdtemp(prefix="fledge-lab-rootfs-", dir="/var/tmp"))
    try:
        root = work / "root"
        _debootstrap(arch, mirror, root, report)
        with report.step(f"importing the {arch} root file system as {tag}"):
            # The equivalent of `tar -C root -c . | docker import -c 'CMD ...' - tag`.
            with subprocess.Popen(TAR, cwd=root, stdout=subprocess.PIPE) as tar:
                client.api.import_image(
                    src=_chunks(tar.stdout),
                    repository=REPOSITORY,
                    tag=tag.split(":", 1)[1],
                    changes=['CMD ["/sbin/init"]'],
                    stream_src=True,
                )
            if tar.returncode != 0:
                raise FledgeError(f"tar of the root file system failed (exit {tar.returncode})")
        report.note(f"imported {tag}")
    finally:
        _remove_tree(work)


def _chunks(stream) -> Iterator[bytes]:
    yield from iter(lambda: stream.read(1 << 20), b"")


def _require_debootstrap() -> None:
    fix = "run `fledge lab up` as root, or pass --base-image IMAGE (a Debian 12 image to pull)"
    if shutil.which("debootstrap") is None:
        raise FledgeError(
            "building the lab image needs debootstrap, which is not installed",
            fix=f"apt-get install debootstrap; or {fix}",
        )
    if os.geteuid() != 0:
        raise FledgeError("building the lab image with debootstrap needs root", fix=fix)
    if not KEYRING.is_file():
        raise FledgeError(
            "debootstrap needs Debian's archive keys to verify what it downloads",
            path=KEYRING,
            fix="apt-get install debian-archive-keyring",
        )


def _debootstrap(arch: str, mirror: str, root: Path, report: Reporter) -> None:
    command = [
        "debootstrap",
        "--variant=minbase",
        f"--arch={arch}",
        f"--keyring={KEYRING}",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(root),
        mirror,
    ]
    tail: deque[str] = deque(maxlen=25)
    message = f"debootstrap {SUITE} {arch} from {mirror} (minutes, once: the result is cached)"
    with report.step(message) as waiting:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None  # stdout=PIPE
        for line in proc.stdout:
            tail.append(line.rstrip())
            waiting.update(tail[-1][:80])
        returncode = proc.wait()
    if returncode == 0:
        report.note(f"debootstrap {arch} took {waiting.elapsed:.0f} s")
        return
    detail = "\n".join(tail)
    log = root / "debootstrap" / "debootstrap.log"
    if log.is_file():
        detail += "\n--- debootstrap.log (end) ---\n" + "\n".join(
            log.read_text().splitlines()[-25:]
        )
    raise FledgeError(
        f"debootstrap failed (exit {returncode}):\n{detail}",
        fix=f"check that the mirror {mirror} is reachable, or use another (--mirror, {MIRROR_ENV})",
    )


def _remove_tree(path: Path) -> None:
    """Remove a debootstrap tree, unmounting first what an interrupted run left mounted."""
    mounts = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(f"{path}/")
    ]
    for mount in sorted(mounts, reverse=True):
        subprocess.run(["umount", "--lazy", mount], check=False)
    shutil.rmtree(path, ignore_errors=True)


def _build(
    client: docker.DockerClient,
    arch: str,
    tag: str,
    base: str,
    apt_packages: str,
    digest: str,
    report: Reporter,
) -> None:
    with report.step(f"building {tag} from {base}") as waiting:
        for chunk in client.api.build(
            path=str(RECIPE_DIR),
            tag=tag,
            buildargs={"BASE": base, "APT_PACKAGES": apt_packages},
            labels={ARCH_LABEL: arch, RECIPE_LABEL: digest},
            rm=True,
            forcerm=True,
            decode=True,
        ):
            if "error" in chunk:
                raise FledgeError(
                    f"building {tag} failed: {chunk['error'].strip()}",
                    fix="with --base-image, check that the engine can pull that image",
                )
            line = chunk.get("stream", "").strip()
            if line.startswith("Step "):
                waiting.update(line[:80])
    report.note(f"built {tag} in {waiting.elapsed:.0f} s")
