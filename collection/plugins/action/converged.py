# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""Whether a host is still as the last complete provisioning left it.

The controller digests its inputs (``plugin_utils/converged``); the module
of the same name fingerprints the host and reads its stamp, in one round
trip. Converged means: inputs and fingerprint as recorded, and the host's
clock within the tolerance that preflight demands. The result sets the fact
``fledge_converged``, which ends the host's plays early (fledge.edge.common).
With ``record``, the module writes the stamp instead.
"""

from __future__ import annotations

import time
from pathlib import Path

from ansible import context
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.release import __version__ as ansible_version
from ansible.utils.vars import load_extra_vars

from ansible_collections.fledge.edge.plugins.plugin_utils import converged

# The collection's root: plugins/action/converged.py is three levels down.
COLLECTION = Path(__file__).resolve().parents[2]
# Options of this action, not of the module.
_OWN = ("state_dir", "record", "clock_max_ahead", "clock_max_behind")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = dict(self._task.args)
        missing = [name for name in ("state_dir", "stamp") if not args.get(name)]
        if missing:
            raise AnsibleActionFail(f"missing required arguments: {', '.join(missing)}")
        own = {name: args.pop(name, None) for name in _OWN}
        inputs = converged.inputs_digest(
            collection=COLLECTION,
            ansible_version=ansible_version,
            inventory_sources=task_vars.get("ansible_inventory_sources") or [],
            playbook_dir=task_vars.get("playbook_dir"),
            extra_vars=load_extra_vars(self._loader) if context.CLIARGS else {},
            state_dir=Path(own["state_dir"]),
        )
        if own["record"]:
            args["record"] = inputs
        before = time.time()
        host = self._execute_module(
            module_name="fledge.edge.converged", module_args=args, task_vars=task_vars
        )
        after = time.time()
        if host.get("failed"):
            return host
        result["changed"] = False
        if own["record"]:
            result["stamp"] = host.get("stamp")
            return result
        reason = _why_not(inputs, host, before, after, own)
        result.update(
            converged=reason is None,
            reason=reason or "unchanged since the last complete provisioning",
            ansible_facts={"fledge_converged": reason is None},
        )
        return result


def _why_not(inputs: str, host: dict, before: float, after: float, own: dict) -> str | None:
    stamp = host.get("stamp") or {}
    if not stamp:
        return "no complete provisioning recorded on the host"
    if stamp.get("inputs") != inputs:
        return "the inventory, the collection or the fleet's state on the controller changed"
    if stamp.get("fingerprint") != host.get("fingerprint"):
        return "the host changed since its last provisioning"
    ahead, behind = host["time"] - after, before - host["time"]
    if ahead > float(own["clock_max_ahead"] or 0) or behind > float(own["clock_max_behind"] or 0):
        return "the host's clock is off (preflight says by how much)"
    return None
