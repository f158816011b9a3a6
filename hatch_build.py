"""Ship the Ansible collection inside the wheel, at ansible_collections/fledge/edge.

Only in a real wheel: an editable install would freeze a copy of the
collection in site-packages, where ansible-core would find it (it scans
sys.path) instead of the checkout being edited. fledge finds the checkout's
collection by itself (fledge.collection).
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# Only what Galaxy would ship of the collection.
COLLECTION_FILES = (
    "galaxy.yml",
    "README.md",
    "CHANGELOG.md",
    "requirements.txt",
    "meta",
    "playbooks",
    "plugins",
    "roles",
)


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        for name in COLLECTION_FILES:
            build_data["force_include"][f"collection/{name}"] = (
                f"ansible_collections/fledge/edge/{name}"
            )
