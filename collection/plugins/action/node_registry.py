# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""Read and write the controller's record of enrolled devices (``plugin_utils/registry.py``)."""

from __future__ import annotations

from typing import Any

from ansible_collections.fledge.edge.plugins.plugin_utils.controller_action import ControllerAction

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "state_dir": {"type": "path", "required": True},
    "host": {"type": "str", "required": True},
    "state": {"type": "str", "default": "query", "choices": ["query", "registered", "revoked"]},
    "public_key": {"type": "str"},
    "node_id": {"type": "str"},
}


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        registry = self.controller_module("registry")
        state_dir, host = args["state_dir"], args["host"]
        old = registry.read(state_dir, host)
        changed = False
        if args["state"] == "registered":
            changed = (
                old is None
                or (old.public_key, old.node_id)
                != (
                    (args["public_key"] or "").strip(),
                    args["node_id"],
                )
                or old.revoked
            )
            if changed and not self._task.check_mode:
                registry.record(state_dir, host, args["public_key"] or "", args["node_id"] or "")
        elif args["state"] == "revoked":
            changed = old is None or not old.revoked
            if changed and not self._task.check_mode:
                registry.revoke(state_dir, host)
        new = registry.read(state_dir, host)
        result.update(
            changed=changed,
            enrolment=new.to_json() if new else None,
            previous=old.to_json() if old else None,
        )
        return result
