"""File writes that never leave a half-written file behind (see the collection's files module).

The collection's controller-side code writes the fleet's keys and
certificates with the same functions the CLI uses.
"""

from ansible_collections.fledge.edge.plugins.plugin_utils.files import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    atomic_write,
    private_dir,
)

__all__ = ["PRIVATE_DIR", "PRIVATE_FILE", "atomic_write", "private_dir"]
