# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""The base of fledge's action plugins that work on the controller only."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase


class ControllerAction(ActionBase):
    """An action that sends no module to the host: it reads and writes the controller's files."""

    TRANSFERS_FILES = False
    _requires_connection = False
    # The options, as the module's DOCUMENTATION gives them.
    ARGUMENT_SPEC: ClassVar[dict[str, dict[str, Any]]] = {}

    def controller_module(self, name: str) -> ModuleType:
        """``plugin_utils.<name>``, whose imports are the collection's Python requirements.

        Imported when the task runs, so that a missing requirement is a task
        failure that says what to install, not a plugin that fails to load.
        """
        try:
            return importlib.import_module(f"{__package__}.{name}")
        except ImportError as exc:
            requirements = Path(__file__).resolve().parents[2] / "requirements.txt"
            raise AnsibleActionFail(
                f"{self._task.action} needs the Python package '{exc.name}' on the controller, "
                f"in the Python that runs Ansible. Install the collection's requirements: "
                f"pip install -r {requirements}"
            ) from None

    def validated_args(self) -> dict[str, Any]:
        """The task's arguments checked against ARGUMENT_SPEC, defaults filled in."""
        validation = ArgumentSpecValidator(self.ARGUMENT_SPEC).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleActionFail("; ".join(validation.error_messages))
        return validation.validated_parameters
