# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""Issue the SuperLink's TLS certificate from the fleet CA, on the controller.

The CA's private key never leaves the controller: this plugin runs in the
controller's Ansible process and only ever writes files there. The code
(``plugin_utils/pki.py``) is shared with ``fledge certs``, so the CLI and a
plain ``ansible-playbook`` run produce the same certificate.
"""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleActionFail

from ansible_collections.fledge.edge.plugins.plugin_utils.controller_action import ControllerAction
from ansible_collections.fledge.edge.plugins.plugin_utils.errors import FledgeError

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "pki_dir": {"type": "path", "required": True},
    "name": {"type": "str", "required": True},
    "address": {"type": "str", "required": True},
    "fleet_host": {"type": "str", "required": True},
    "listen_address": {"type": "str"},
    "extra_sans": {"type": "list", "elements": "str", "default": []},
    "rotate": {"type": "bool", "default": False},
}


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        pki = self.controller_module("pki")
        try:  # what the operator can fix, said as the CLI says it
            sans = pki.superlink_sans(
                name=args["name"],
                address=args["address"],
                fleet_host=args["fleet_host"],
                listen_address=args["listen_address"],
                extra=args["extra_sans"],
            )
            issued = pki.ensure_server_cert(
                args["pki_dir"],
                args["name"],
                sans,
                dry_run=self._task.check_mode,
                rotate=args["rotate"],
            )
        except FledgeError as exc:
            raise AnsibleActionFail(str(exc)) from None
        result.update(
            changed=issued.changed,
            reasons=list(issued.reasons),
            sans=sans,
            ca_cert=str(issued.ca_path),
            cert=str(issued.cert_path),
            key=str(issued.key_path),
        )
        return result
