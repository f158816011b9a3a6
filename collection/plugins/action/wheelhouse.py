# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""Build wheelhouse archives on the controller, one per target platform.

Runs entirely on the controller: ``pip download`` with explicit platform
tags fetches the wheels a host needs without that host ever reaching the
package index, and a tar archive per platform travels to the hosts as one
file. The archives live in the controller's cache (``plugin_utils/cache``),
shared by all its fleets: an archive's name is a digest of the requirements
and the platform, so a fleet (or a lab rebuilt) that needs the same wheels
downloads nothing, and a change of either makes a new one.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail

from ansible_collections.fledge.edge.plugins.plugin_utils import cache, packages
from ansible_collections.fledge.edge.plugins.plugin_utils.controller_action import ControllerAction

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "dest": {"type": "path", "required": True},
    "requirements": {"type": "list", "elements": "str", "required": True},
    "hosts": {"type": "list", "elements": "str", "required": True},
    "pip_args": {"type": "list", "elements": "str", "default": []},
    "state_dir": {"type": "path"},
}
# The oldest glibc that manylinux wheels target (manylinux2014).
OLDEST_GLIBC_MINOR = 17


def platform_tags(arch: str, glibc: str) -> list[str]:
    """The pip --platform tags a host with this C library accepts, best first."""
    major, minor = (int(part) for part in glibc.split(".")[:2])
    if major != 2:
        raise AnsibleActionFail(f"unexpected glibc version {glibc}")
    tags = [f"manylinux_2_{m}_{arch}" for m in range(minor, OLDEST_GLIBC_MINOR - 1, -1)]
    return [*tags, f"manylinux2014_{arch}", f"linux_{arch}"]


def archive_name(requirements: list[str], platform: dict) -> str:
    key = "\n".join([*requirements, platform["arch"], platform["python"], platform["glibc"]])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{platform['arch']}-py{platform['python']}-glibc{platform['glibc']}-{digest}.tar"


def build(archive: Path, *, requirements: list[str], platform: dict, pip_args: list[str]) -> None:
    """Download the wheels and pack them into ``archive``."""
    python = "".join(platform["python"].split(".")[:2])
    with tempfile.TemporaryDirectory(dir=archive.parent) as tmp:
        wheels = Path(tmp) / "wheels"
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--disable-pip-version-check",
            "--no-input",
            "--only-binary=:all:",
            "--dest",
            str(wheels),
            "--implementation",
            "cp",
            "--python-version",
            python,
            "--abi",
            f"cp{python}",
        ]
        for tag in platform_tags(platform["arch"], platform["glibc"]):
            command += ["--platform", tag]
        proc = subprocess.run(
            [*command, *pip_args, *requirements], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise AnsibleActionFail(
                f"pip download failed for {archive.name}: {proc.stderr.strip()[-2000:]}\n"
                "The controller must reach the package index (or pass flower_pip_download_args, "
                "e.g. --find-links DIR, to use a local copy)."
            )
        # The requirements file doubles as the marker that unpacking finished.
        (wheels / "requirements.txt").write_text("\n".join(requirements) + "\n")
        with tarfile.open(archive, "w") as tar:
            for path in sorted(wheels.iterdir()):
                tar.add(path, arcname=path.name)


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        hostvars = task_vars["hostvars"]
        dest = Path(args["dest"])

        archives: dict[str, str] = {}
        platforms: dict[str, dict[str, str]] = {}
        built: list[str] = []
        cached: list[str] = []
        for host in args["hosts"]:
            platform = hostvars[host].get("fledge_platform")
            if not platform:
                raise AnsibleActionFail(
                    f"{host} has no fledge_platform fact: run fledge.edge.base first"
                )
            platform = {k: str(platform[k]) for k in ("arch", "python", "glibc")}
            platform["python"] = ".".join(platform["python"].split(".")[:2])
            archive = dest / archive_name(args["requirements"], platform)
            archives[host] = str(archive)
            platforms[host] = platform
            if archive.name in built or archive.name in cached:
                continue
            if self._task.check_mode:
                (cached if cache.present(archive) else built).append(archive.name)
                continue
            made = cache.ensure(
                archive,
                functools.partial(
                    build,
                    requirements=args["requirements"],
                    platform=platform,
                    pip_args=args["pip_args"],
                ),
            )
            (built if made else cached).append(archive.name)

        if args["state_dir"] and not self._task.check_mode:
            self._record(Path(args["state_dir"]), archives, platforms)
        result.update(changed=bool(built), archives=archives, built=built, cached=cached)
        return result

    @staticmethod
    def _record(
        state_dir: Path, archives: dict[str, str], platforms: dict[str, dict[str, str]]
    ) -> None:
        """Record what each host gets, for `fledge round start`'s check of an app's needs:
        controller-side bookkeeping, not a change to the hosts."""
        contents = {
            archive: packages.archive_packages(Path(archive)) for archive in set(archives.values())
        }
        packages.record(
            state_dir,
            {
                host: {
                    "platform": platforms[host],
                    "archive": Path(archive).name,
                    "packages": contents[archive],
                }
                for host, archive in archives.items()
            },
        )
