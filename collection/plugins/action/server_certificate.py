# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""Issue the SuperLink's TLS certificate from the fleet CA, on the controller.

The CA's private key never leaves the controller: this plugin runs in the
controller's Ansible process and only ever writes files there. The code is
fledge's own (``fledge.pki``), shared with ``fledge certs init``, so the CLI
and a plain ``ansible-playbook`` run produce the same certificate.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible_collections.fledge.edge.plugins.plugin_utils.controller_action import ControllerAction

ARGUMENT_SPEC = {
    "pki_dir": {"type": "path", "required": True},
    "name": {"type": "str", "required": True},
    "address": {"type": "str", "required": True},
    "fleet_host": {"type": "str", "required": True},
    "control_address": {"type": "str", "required": True},
    "listen_address": {"type": "str"},
    "extra_sans": {"type": "list", "elements": "str", "default": []},
}


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validated_args()
        try:
            from fledge import pki
            from fledge.errors import FledgeError
        except ImportError as exc:
            raise AnsibleActionFail(
                f"fledge.edge.server_certificate needs the fledge Python package where Ansible "
                f"runs ({exc}). Install it (pip install fledge-edge) into the Python that runs "
                "ansible-playbook, or bring your own certificates with superlink_tls_ca_cert_src, "
                "superlink_tls_cert_src and superlink_tls_key_src."
            ) from None
        sans = pki.superlink_sans(
            name=args["name"],
            address=args["address"],
            fleet_host=args["fleet_host"],
            control_address=args["control_address"],
            listen_address=args["listen_address"],
            extra=args["extra_sans"],
        )
        try:
            issued = pki.ensure_server_cert(
                args["pki_dir"], args["name"], sans, dry_run=self._task.check_mode
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
