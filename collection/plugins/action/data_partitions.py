# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""Prepare the default app's data partitions on the controller (``plugin_utils/partitions.py``)."""

from __future__ import annotations

from typing import Any

from ansible_collections.fledge.edge.plugins.plugin_utils.controller_action import ControllerAction

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "dest": {"type": "path", "required": True},
    "hosts": {"type": "list", "elements": "str", "required": True},
    "seed": {"type": "int", "default": 0},
}


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        partitions = self.controller_module("partitions")
        written = partitions.write_partitions(
            args["dest"], args["hosts"], args["seed"], dry_run=self._task.check_mode
        )
        result.update(
            changed=bool(written.changed),
            partitions={host: str(path) for host, path in written.paths.items()},
            hosts_changed=written.changed,
        )
        return result
