"""The one error type fledge shows to people (see FledgeError).

It is declared with the collection's controller-side code, which raises it
too: the CLI and a plain ansible-playbook run report the same errors.
"""

from ansible_collections.fledge.edge.plugins.plugin_utils.errors import FledgeError

__all__ = ["FledgeError"]
