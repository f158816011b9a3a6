#!/usr/bin/python
# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
# The comparison with the controller's inputs is done by the action plugin of the same name.

DOCUMENTATION = r"""
---
module: converged
short_description: Whether a host is still as fledge last left it, in one round trip
description:
  - Reads, in one pass on the host, a fingerprint of what fledge manages there - the files
    under O(files) (content, owner and mode), the owner and mode of O(shallow), the packages of
    the virtual environment O(venv), the system's package versions, the state of O(units), the
    accounts O(users) and O(groups), the architecture, the OS release and Python - and the
    stamp that the last complete provisioning left in O(stamp).
  - With O(record), writes the stamp - the controller's digest of its inputs and the host's
    fingerprint - once a provisioning has completed on the host (never in check mode). The
    stamp is bookkeeping, so the task reports no change.
  - The action plugin of the same name compares both with the controller's inputs; the
    deploy playbook skips a host whose inputs and fingerprint are unchanged.
version_added: 0.3.0
author: fledge maintainers
options:
  stamp:
    description: The stamp's path, on the host (root's alone).
    type: path
    required: true
  files:
    description: Files or directory trees (shell patterns allowed) fingerprinted in full.
    type: list
    elements: str
    default: []
  exclude:
    description: Paths under O(files) left out (state the services change while they run).
    type: list
    elements: str
    default: []
  shallow:
    description: Paths whose type, owner and mode count, not their content.
    type: list
    elements: str
    default: []
  venv:
    description: A Python virtual environment whose installed packages count.
    type: path
  units:
    description: systemd units whose load, activity and enablement count.
    type: list
    elements: str
    default: []
  users:
    description: Accounts whose passwd entry counts.
    type: list
    elements: str
    default: []
  groups:
    description: Groups whose entry counts.
    type: list
    elements: str
    default: []
  record:
    description: The controller's digest of its inputs; given, the stamp is written.
    type: str
"""

EXAMPLES = r"""
- name: Compare the host with the last provisioning
  fledge.edge.converged:
    stamp: /var/lib/fledge/.provisioned
    files: [/etc/fledge, /etc/systemd/system/fledge-*]
    units: [fledge-supernode.service]
"""

RETURN = r"""
fingerprint:
  description: SHA-256 of what the host has now.
  returned: always
  type: str
stamp:
  description: >-
    What the last complete provisioning recorded (C(inputs), C(fingerprint), C(at)), or null.
  returned: always
  type: dict
time:
  description: The host's clock, in seconds since the epoch.
  returned: always
  type: float
"""

import datetime
import glob
import hashlib
import json
import os
import platform
import stat
import subprocess
import sys
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

# Larger files count by size and modification time, not content (wheels).
CONTENT_LIMIT = 1 << 20
SKIP_DIRS = ("__pycache__",)


def _entry(path, excluded):
    """Lines of a file or tree: type, owner, mode, and content (or size and time)."""
    lines = []
    for root, dirs, names in os.walk(path) if os.path.isdir(path) else [(path, [], [])]:
        dirs[:] = sorted(
            d for d in dirs if d not in SKIP_DIRS and os.path.join(root, d) not in excluded
        )
        entries = [root] + [os.path.join(root, n) for n in sorted(names)]
        for entry in entries:
            if entry in excluded:
                continue
            lines.append(_describe(entry, content=True))
    return lines


def _describe(path, content):
    try:
        info = os.lstat(path)
    except OSError:
        return f"{path} absent"
    line = f"{path} {info.st_mode:o} {info.st_uid}:{info.st_gid}"
    if stat.S_ISLNK(info.st_mode):
        return f"{line} -> {os.readlink(path)}"
    if not content or not stat.S_ISREG(info.st_mode):
        return line
    if info.st_size > CONTENT_LIMIT:
        return f"{line} {info.st_size} {info.st_mtime_ns}"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read())
    return f"{line} {digest.hexdigest()}"


def _run(argv):
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    except OSError as exc:  # no such program on this host: that is its state
        return f"{' '.join(argv)}: {exc.strerror}"
    return f"{' '.join(argv)}: {proc.returncode} {proc.stdout.decode('utf-8', 'replace')}"


def fingerprint(params):
    lines = []
    excluded = set(params["exclude"])
    for pattern in filter(None, params["files"]):  # an empty entry: nothing there
        for path in sorted(glob.glob(pattern)) or [pattern]:
            lines += _entry(path, excluded)
    for pattern in params["shallow"]:
        lines += [_describe(p, content=False) for p in sorted(glob.glob(pattern)) or [pattern]]
    if params["venv"]:
        venv = params["venv"]
        lines.append(_describe(os.path.join(venv, "pyvenv.cfg"), content=True))
        pattern = os.path.join(venv, "lib", "python*", "site-packages", "*.dist-info")
        lines += sorted(os.path.basename(p) for p in glob.glob(pattern))
    lines.append(_run(["dpkg-query", "--show", "--showformat", "${Package} ${Version}\\n"]))
    if params["units"]:
        properties = "--property=Id,LoadState,ActiveState,UnitFileState"
        lines.append(_run(["systemctl", "show", properties, "--"] + params["units"]))
    for user in params["users"]:
        lines.append(_run(["getent", "passwd", user]))
    for group in params["groups"]:
        lines.append(_run(["getent", "group", group]))
    lines.append(_describe("/etc/os-release", content=True))
    lines += [platform.machine(), sys.executable, sys.version]
    return hashlib.sha256("\n".join(lines).encode("utf-8", "replace")).hexdigest()


def read_stamp(path):
    try:
        with open(path) as handle:
            stamp = json.load(handle)
    except (OSError, ValueError):
        return None
    return stamp if isinstance(stamp, dict) else None


def write_stamp(path, stamp):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".stamp.", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(stamp, handle)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main():
    module = AnsibleModule(
        argument_spec={
            "stamp": {"type": "path", "required": True},
            "files": {"type": "list", "elements": "str", "default": []},
            "exclude": {"type": "list", "elements": "str", "default": []},
            "shallow": {"type": "list", "elements": "str", "default": []},
            "venv": {"type": "path"},
            "units": {"type": "list", "elements": "str", "default": []},
            "users": {"type": "list", "elements": "str", "default": []},
            "groups": {"type": "list", "elements": "str", "default": []},
            "record": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    now = fingerprint(params)
    stamp = read_stamp(params["stamp"])
    if params["record"] is not None and not module.check_mode:
        recorded = {"inputs": params["record"], "fingerprint": now}
        if stamp is None or {k: stamp.get(k) for k in recorded} != recorded:
            at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            stamp = dict(recorded, at=at)
            write_stamp(params["stamp"], stamp)
    # The stamp is fledge's bookkeeping, not a change to what the host runs.
    module.exit_json(changed=False, fingerprint=now, stamp=stamp, time=time.time())


if __name__ == "__main__":
    main()
