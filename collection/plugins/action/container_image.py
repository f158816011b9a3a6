# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""Build the SuperNode container image on the controller and save it as an archive.

Runs entirely on the controller, with its Docker engine: the image is built
from a base image the operator names and the same wheelhouse archive that
fledge.edge.wheelhouse made for the device's platform (so the build, like
the devices, never reaches the package index), then saved with
``docker save`` into one archive per recipe. The archive's name is a digest
of the recipe (see plugin_utils/container_image.py): an archive that exists
is never rebuilt, and a controller that has it needs no Docker engine.

Every host runs the task for itself (it may name its own base image); a lock
makes hosts that share a recipe wait for the one build of it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail

from ansible_collections.fledge.edge.plugins.plugin_utils import cache
from ansible_collections.fledge.edge.plugins.plugin_utils.container_image import (
    DEFAULT_UID,
    PLATFORMS,
    WHEELHOUSE,
    archive_name,
    dockerfile,
    image_tag,
    recipe_digest,
    relabel,
)
from ansible_collections.fledge.edge.plugins.plugin_utils.controller_action import ControllerAction

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "dest": {"type": "path", "required": True},
    "base_image": {"type": "str", "required": True},
    "arch": {"type": "str", "required": True, "choices": sorted(PLATFORMS)},
    "wheelhouse": {"type": "path", "required": True},
    "repository": {"type": "str", "default": "fledge-supernode"},
    "uid": {"type": "int", "default": DEFAULT_UID},
}
# Generous: an emulated arm64 build runs apt and pip under QEMU.
BUILD_TIMEOUT = 3600


def docker(*args: str, timeout: float = 600, env: dict | None = None) -> str:
    try:
        proc = subprocess.run(
            ["docker", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )
    except FileNotFoundError as exc:
        raise AnsibleActionFail(
            "the controller has no docker command: building the SuperNode image needs a "
            "Docker engine on the controller (or set supernode_container_image to a "
            "registry image the devices pull)"
        ) from exc
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()[-3000:]
        raise AnsibleActionFail(f"docker {args[0]} failed: {output}")
    return proc.stdout.strip()


def userland_arch(image: str) -> str | None:
    """The architecture of the Debian userland in ``image`` (what its binaries are)."""
    try:
        return docker(
            "run", "--rm", "--network", "none", "--entrypoint", "dpkg", image,
            "--print-architecture", timeout=300,
        )  # fmt: skip
    except AnsibleActionFail:
        return None


def ensure_base(image: str, arch: str) -> None:
    """Make ``image`` present locally with a userland of ``arch``, pulling it if needed.

    Docker's own label cannot be trusted for this (``docker import`` labels
    everything amd64), so the check runs the image's dpkg: under the kernel's
    binfmt handler for QEMU, an arm64 image runs on an x86 controller too.
    """
    found = userland_arch(image)
    if found == arch:
        return
    try:
        docker("pull", "--platform", f"linux/{arch}", image, timeout=1800)
    except AnsibleActionFail as exc:
        state = f"has a {found} userland" if found else "is missing or cannot run here"
        raise AnsibleActionFail(
            f"the base image {image} {state} and could not be pulled for linux/{arch}: "
            f"{exc.message}. Name a local Debian-family image of that architecture in "
            "supernode_container_base_image."
        ) from exc
    found = userland_arch(image)
    if found != arch:
        hint = (
            " An arm64 build on an x86 controller needs the qemu-aarch64 binfmt handler "
            "with the F flag (apt-get install qemu-user-static binfmt-support)."
            if found is None
            else ""
        )
        raise AnsibleActionFail(f"the base image {image} is not a {arch} Debian image.{hint}")


def builder_env() -> dict:
    """Docker CLIs 23+ build with BuildKit through buildx; without buildx, the classic builder."""
    env = dict(os.environ)
    if subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False).returncode:
        env["DOCKER_BUILDKIT"] = "0"
    return env


def build(archive: Path, tag: str, args: dict, digest: str) -> dict:
    """Build the image, save it, fix its architecture label, write it to ``archive``."""
    started = time.monotonic()
    ensure_base(args["base_image"], args["arch"])
    with tempfile.TemporaryDirectory(dir=archive.parent, prefix=".build-") as tmp:
        context = Path(tmp) / "context"
        context.mkdir()
        (context / "Dockerfile").write_text(dockerfile(args["base_image"], args["uid"]))
        try:
            os.link(args["wheelhouse"], context / WHEELHOUSE)
        except OSError:
            shutil.copyfile(args["wheelhouse"], context / WHEELHOUSE)
        docker(
            "build", "--tag", tag,
            "--label", f"io.fledge.recipe={digest}",
            "--label", f"io.fledge.base-image={args['base_image']}",
            "--label", f"io.fledge.arch={args['arch']}",
            "--label", "org.opencontainers.image.title=Flower SuperNode (fledge)",
            str(context), timeout=BUILD_TIMEOUT, env=builder_env(),
        )  # fmt: skip
        built = time.monotonic()
        saved = Path(tmp) / "image.tar"
        docker("save", "--output", str(saved), tag, timeout=BUILD_TIMEOUT)
        fixed = relabel(str(saved), str(archive), args["arch"])
    return {
        "build_seconds": round(built - started, 1),
        "save_seconds": round(time.monotonic() - built, 1),
        "relabelled": fixed["changed"],
        "image_id": fixed["image_id"],
    }


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        dest = Path(args["dest"])
        wheelhouse = Path(args["wheelhouse"])
        digest = recipe_digest(args["base_image"], args["arch"], wheelhouse.name, args["uid"])
        tag = image_tag(args["repository"], args["arch"], digest)
        archive = dest / archive_name(args["repository"], args["arch"], digest)
        result.update(image=tag, archive=str(archive), digest=digest, built=False)
        if cache.present(archive):
            result["changed"] = False
            return result
        if self._task.check_mode:
            result["changed"] = True
            return result
        if not wheelhouse.is_file():
            raise AnsibleActionFail(f"the wheelhouse archive {wheelhouse} does not exist")
        dest.mkdir(parents=True, exist_ok=True)

        def make(path: Path) -> None:
            result.update(build(path, tag, args, digest), built=True)

        # One build at a time on this controller: hosts that share this recipe
        # wait in the cache and then find its archive; other recipes wait their
        # turn here (builds use the CPU fully, and may retag a multi-arch base).
        with open(dest / ".build.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            cache.ensure(archive, make)
        result["changed"] = result["built"]
        return result
