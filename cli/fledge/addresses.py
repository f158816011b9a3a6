"""Host names, IP addresses and HOST:PORT strings, checked the way SSH and TLS see them."""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
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
    return all(_LABEL.match(label) for label in value.rstrip(".").split("."))


def split_host_port(value: str) -> tuple[str, int | None]:
    """Split ``host:port``, ``[v6]:port``, ``host`` or a bare IPv6 address."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, port = value.split(":")
    else:
        host, port = value, ""
    if not port:
        return host, None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"'{port}' is not a port number (1-65535)")
    return host, int(port)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
