# Copyright: fledge maintainers
# Apache License 2.0 (see LICENSE)
"""Host names, IP addresses, ports, HOST:PORT strings and SSH user names, checked strictly.

Every pattern is matched with ``fullmatch``: ``re.match`` with ``$`` also
accepts a trailing newline ("pi-1\\n"), which would reach the inventory.
"""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# An inventory host name: what Ansible and a shell take without quoting.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
# A portable Linux login name (useradd's default NAME_REGEX, at most 32 characters).
_USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
WILDCARDS = ("0.0.0.0", "::")


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def is_valid_address(value: str) -> bool:
    """An IPv4/IPv6 address or an RFC 1123 host name."""
    if is_ip(value):
        return True
    if not value or len(value) > 253 or value.replace(".", "").isdigit():
        return False
    return all(_LABEL.fullmatch(label) for label in value.rstrip(".").split("."))


def is_host_name(value: str) -> bool:
    """A usable inventory name for a host."""
    return bool(_NAME.fullmatch(value))


def is_user_name(value: str) -> bool:
    """A login name that SSH and the devices' Linux accept."""
    return bool(_USER.fullmatch(value))


def parse_port(value: str) -> int:
    """A TCP port number, from decimal ASCII digits only.

    ``str.isdigit`` accepts '²' and other digits that ``int`` then rejects.
    """
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 65536:
        raise ValueError(f"{value!r} is not a port number (1-65535)")
    return int(value)


def split_host_port(value: str) -> tuple[str, int | None]:
    """Split ``host:port``, ``[v6]:port``, ``host`` or a bare IPv6 address."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, ""
    return host, parse_port(port) if port else None


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
