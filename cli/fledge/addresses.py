"""Host names, addresses, ports and user names (see the collection's addresses module).

The collection's controller-side code checks the SuperLink certificate's
names with the same functions the CLI uses.
"""

from ansible_collections.fledge.edge.plugins.plugin_utils.addresses import (
    WILDCARDS,
    is_host_name,
    is_ip,
    is_user_name,
    is_valid_address,
    join_host_port,
    parse_port,
    split_host_port,
)

__all__ = [
    "WILDCARDS",
    "is_host_name",
    "is_ip",
    "is_user_name",
    "is_valid_address",
    "join_host_port",
    "parse_port",
    "split_host_port",
]
