"""Fleet inventories: Ansible YAML inventories with two groups, loaded strictly.

The file is a plain Ansible inventory, so ``ansible-playbook -i`` reads it
as is. fledge reads it too, and refuses anything it would misread::

    all:
      vars: {ansible_user: pi}            # optional, for every host
      children:
        superlink:                        # exactly one coordinator
          hosts:
            coordinator: {ansible_host: 192.168.1.10}
        supernodes:                       # one or more devices
          hosts:
            pi-1: {ansible_host: 192.168.1.21}
            pi-2: {ansible_host: 192.168.1.22, ansible_port: 2222}

Every error names the file, the line, the host and the field at fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ansible_collections.fledge.edge.plugins.plugin_utils.pki import superlink_sans
from fledge.addresses import is_ip, is_valid_address, join_host_port, split_host_port
from fledge.errors import FledgeError
from fledge.fsutil import atomic_write

SUPERLINK = "superlink"
SUPERNODES = "supernodes"
GROUPS = (SUPERLINK, SUPERNODES)
DEFAULT_SSH_PORT = 22
# Flower's own default; the superlink role's default must agree (tested).
DEFAULT_SUPERLINK_PORT = 8000
STATE_DIR_NAME = ".fledge"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class _Mapping(dict[Any, Any]):
    """A dict that remembers the line of each key (1-based)."""

    lines: dict[str, int]
    line: int


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and records line numbers."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> _Mapping:
    loader.flatten_mapping(node)
    result = _Mapping()
    result.lines = {}
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in result:
            raise FledgeError(
                f"'{key}' appears twice in the same mapping (first on line "
                f"{result.lines[key]}); YAML keeps only the last one",
                path=loader.name,
                line=line,
                fix=f"give each host a unique name and keep one '{key}' entry",
            )
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = line
    return result


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


@dataclass(frozen=True)
class Host:
    """One host with its effective variables (all < group < host)."""

    name: str
    group: str
    vars: Mapping[str, Any] = field(repr=False)

    @property
    def address(self) -> str:
        return str(self.vars.get("ansible_host", self.name))

    @property
    def port(self) -> int:
        return int(self.vars.get("ansible_port", DEFAULT_SSH_PORT))

    @property
    def user(self) -> str | None:
        return self.vars.get("ansible_user")


@dataclass(frozen=True)
class Inventory:
    path: Path
    superlink: Host
    supernodes: tuple[Host, ...]

    @property
    def hosts(self) -> tuple[Host, ...]:
        return (self.superlink, *self.supernodes)

    @property
    def state_dir(self) -> Path:
        """Where the controller keeps this fleet's CA, data and caches."""
        configured = self.superlink.vars.get("fledge_state_dir")
        return Path(configured) if configured else self.path.parent / STATE_DIR_NAME

    @property
    def superlink_port(self) -> int:
        return int(self.superlink.vars.get("superlink_port", DEFAULT_SUPERLINK_PORT))

    @property
    def fleet_host(self) -> str:
        """The name or address devices dial to reach the SuperLink."""
        return str(self.superlink.vars.get("superlink_fleet_host", self.superlink.address))

    @property
    def control_address(self) -> str:
        """``host:port`` where the controller reaches the SuperLink's Control API."""
        configured = self.superlink.vars.get("superlink_control_address")
        return (
            str(configured)
            if configured
            else join_host_port(self.superlink.address, self.superlink_port)
        )

    @property
    def superlink_sans(self) -> list[str]:
        """Names and addresses the SuperLink's certificate carries."""
        v = self.superlink.vars
        return superlink_sans(
            name=self.superlink.name,
            address=self.superlink.address,
            fleet_host=self.fleet_host,
            control_host=split_host_port(self.control_address)[0],
            listen_address=v.get("superlink_listen_address"),
            extra=v.get("superlink_tls_extra_sans") or [],
        )


class _Reader:
    """Walks a parsed inventory, raising errors that point at the source."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(
        self,
        message: str,
        *,
        line: int | None = None,
        host: str | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> FledgeError:
        return FledgeError(message, path=self.path, line=line, host=host, field=field, fix=fix)

    def mapping(self, value: Any, what: str, line: int | None) -> _Mapping:
        if value is None:
            return _empty()
        if not isinstance(value, _Mapping):
            raise self.fail(f"{what} must be a mapping, not {type(value).__name__}", line=line)
        return value

    def read(self, doc: Any) -> Inventory:
        if not isinstance(doc, _Mapping):
            raise self.fail(
                "an inventory must be a YAML mapping with an 'all' group",
                fix="see inventories/example.yml for the format",
            )
        groups: dict[str, _Mapping] = {}
        all_vars: _Mapping = _empty()
        for key, value in doc.items():
            line = doc.lines.get(key)
            if key == "all":
                top = self.mapping(value, "'all'", line)
                for sub, subval in top.items():
                    subline = top.lines.get(sub)
                    if sub == "vars":
                        all_vars = self.mapping(subval, "'all.vars'", subline)
                    elif sub == "children":
                        children = self.mapping(subval, "'all.children'", subline)
                        for name, group in children.items():
                            self._add_group(groups, name, group, children.lines.get(name))
                    elif sub == "hosts":
                        raise self.fail(
                            "hosts directly under 'all' have no role",
                            line=subline,
                            fix="put the coordinator under 'superlink', devices under 'supernodes'",
                        )
                    else:
                        raise self.fail(
                            f"unknown key 'all.{sub}'",
                            line=subline,
                            fix="'all' may hold only 'vars' and 'children'",
                        )
            else:
                self._add_group(groups, key, value, line)
        return self._build(groups, all_vars)

    def _add_group(self, groups: dict, name: str, group: Any, line: int | None) -> None:
        if name not in GROUPS:
            raise self.fail(
                f"unknown group '{name}'",
                line=line,
                fix=f"fledge knows the groups {', '.join(GROUPS)}; rename or remove '{name}'",
            )
        if name in groups:
            raise self.fail(
                f"group '{name}' is defined twice", line=line, fix="merge both definitions into one"
            )
        group = self.mapping(group, f"group '{name}'", line)
        for key in group:
            if key not in ("hosts", "vars"):
                raise self.fail(
                    f"unknown key '{key}' in group '{name}'",
                    line=group.lines.get(key),
                    fix="a group may hold only 'hosts' and 'vars'",
                )
        groups[name] = group

    def _build(self, groups: dict, all_vars: Mapping[str, Any]) -> Inventory:
        seen: dict[str, str] = {}
        hosts: dict[str, list[Host]] = {name: [] for name in GROUPS}
        for group_name in GROUPS:
            group = groups.get(group_name, _empty())
            group_vars = self.mapping(
                group.get("vars"), f"'{group_name}.vars'", group.lines.get("vars")
            )
            members = self.mapping(
                group.get("hosts"), f"'{group_name}.hosts'", group.lines.get("hosts")
            )
            for name, host_vars in members.items():
                line = members.lines.get(name)
                if name in seen:
                    raise self.fail(
                        f"host '{name}' is in both '{seen[name]}' and '{group_name}'",
                        line=line,
                        host=name,
                        fix="a host is either the coordinator or a device; keep one entry",
                    )
                seen[name] = group_name
                host_vars = self.mapping(host_vars, f"host '{name}'", line)
                merged = {**all_vars, **group_vars, **host_vars}
                hosts[group_name].append(self._host(name, group_name, merged, host_vars, line))
        if len(hosts[SUPERLINK]) != 1:
            raise self.fail(
                f"the 'superlink' group must have exactly one host, found {len(hosts[SUPERLINK])}",
                line=groups.get(SUPERLINK, _empty()).line or None,
                fix="list the coordinator (the host running the SuperLink) under superlink.hosts",
            )
        if not hosts[SUPERNODES]:
            raise self.fail(
                "the 'supernodes' group has no hosts",
                line=groups.get(SUPERNODES, _empty()).line or None,
                fix="list your devices under supernodes.hosts",
            )
        return Inventory(self.path, hosts[SUPERLINK][0], tuple(hosts[SUPERNODES]))

    def _host(self, name: Any, group: str, merged: dict, own: Mapping, line: int | None) -> Host:
        if not isinstance(name, str) or not _NAME.match(name):
            raise self.fail(
                f"'{name}' is not a usable host name",
                line=line,
                host=str(name),
                fix="use letters, digits, '.', '_' and '-', starting with a letter or digit",
            )

        def where(key: str) -> int | None:
            return own.lines.get(key, line) if isinstance(own, _Mapping) else line

        address = merged.get("ansible_host", name)
        if not isinstance(address, str) or not is_valid_address(address):
            raise self.fail(
                f"'{address}' is not an IP address or host name",
                line=where("ansible_host"),
                host=name,
                field="ansible_host",
                fix="set ansible_host to the device's IP address or DNS name, without a port",
            )
        for key, default in (
            ("ansible_port", DEFAULT_SSH_PORT),
            ("superlink_port", DEFAULT_SUPERLINK_PORT),
        ):
            value = merged.get(key, default)
            if isinstance(value, bool) or not str(value).isdigit() or not 0 < int(value) < 65536:
                raise self.fail(
                    f"'{value}' is not a port number (1-65535)",
                    line=where(key),
                    host=name,
                    field=key,
                    fix=f"set {key} to a number such as {default}",
                )
            merged[key] = int(value)
        user = merged.get("ansible_user")
        if user is not None and not (isinstance(user, str) and _USER.match(user)):
            raise self.fail(
                f"'{user}' is not a valid Linux user name",
                line=where("ansible_user"),
                host=name,
                field="ansible_user",
                fix="set ansible_user to the login user on the device, for example pi",
            )
        fleet_host = merged.get("superlink_fleet_host")
        if fleet_host is not None and not (
            isinstance(fleet_host, str) and is_valid_address(fleet_host)
        ):
            raise self.fail(
                f"'{fleet_host}' is not an IP address or host name",
                line=where("superlink_fleet_host"),
                host=name,
                field="superlink_fleet_host",
                fix="set it to the name or address devices use to reach the coordinator",
            )
        state_dir = merged.get("fledge_state_dir")
        if state_dir is not None and not (
            isinstance(state_dir, str) and Path(state_dir).is_absolute()
        ):
            raise self.fail(
                f"'{state_dir}' is not an absolute path",
                line=where("fledge_state_dir"),
                host=name,
                field="fledge_state_dir",
                fix="use an absolute path (Ansible and fledge would resolve a relative one apart)",
            )
        listen = merged.get("superlink_listen_address")
        if listen is not None and not (isinstance(listen, str) and is_ip(listen)):
            raise self.fail(
                f"'{listen}' is not an IP address",
                line=where("superlink_listen_address"),
                host=name,
                field="superlink_listen_address",
                fix="use one of the coordinator's IP addresses, or 0.0.0.0 for all of them",
            )
        control = merged.get("superlink_control_address")
        if control is not None:
            try:
                chost, cport = split_host_port(str(control))
                if cport is None or not is_valid_address(chost):
                    raise ValueError("expected HOST:PORT")
            except ValueError as exc:
                raise self.fail(
                    f"'{control}' is not a HOST:PORT address ({exc})",
                    line=where("superlink_control_address"),
                    host=name,
                    field="superlink_control_address",
                    fix="set it to where this controller reaches the SuperLink, e.g. 10.0.0.1:8000",
                ) from None
        return Host(name, group, merged)


def _empty() -> _Mapping:
    empty = _Mapping()
    empty.lines = {}
    empty.line = 0
    return empty


def load(path: Path | str) -> Inventory:
    """Read and validate an inventory; raise FledgeError naming what is wrong."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FledgeError(
            "inventory not found",
            path=path,
            fix="pass --inventory PATH, or create one with `fledge inventory generate` "
            "(or `fledge lab up` for a local test fleet)",
        ) from None
    except OSError as exc:
        raise FledgeError(f"cannot read the inventory: {exc.strerror}", path=path) from None
    loader = _StrictLoader(text)
    loader.name = str(path)
    try:
        doc = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise FledgeError(
            f"not valid YAML: {exc.problem or exc.context}",
            path=path,
            line=mark.line + 1 if mark else None,
            fix="fix the YAML syntax (indentation, colons, quotes) at that line",
        ) from None
    finally:
        loader.dispose()
    return _Reader(path).read(doc)


@dataclass(frozen=True)
class HostSpec:
    """A host as an operator describes it to `fledge inventory generate`."""

    name: str
    address: str
    user: str | None = None
    port: int | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)

    def to_vars(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.address != self.name:
            out["ansible_host"] = self.address
        if self.port not in (None, DEFAULT_SSH_PORT):
            out["ansible_port"] = self.port
        if self.user:
            out["ansible_user"] = self.user
        out.update(self.vars)
        return out


def render(
    superlink: HostSpec,
    supernodes: Iterable[HostSpec],
    all_vars: Mapping[str, Any] | None = None,
    header: str = "",
) -> str:
    """The YAML text of an inventory for these hosts."""
    doc: dict[str, Any] = {"all": {}}
    if all_vars:
        doc["all"]["vars"] = dict(all_vars)
    doc["all"]["children"] = {
        SUPERLINK: {"hosts": {superlink.name: superlink.to_vars() or None}},
        SUPERNODES: {"hosts": {h.name: h.to_vars() or None for h in supernodes}},
    }
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    return (header + body) if header else body


def write(path: Path, text: str) -> Inventory:
    """Validate ``text`` as an inventory, then write it atomically.

    Validation runs on the text first, so a bad host never reaches the disk.
    """
    path = Path(path)
    loader = _StrictLoader(text)
    loader.name = str(path)
    try:
        doc = loader.get_single_data()
    finally:
        loader.dispose()
    inventory = _Reader(path).read(doc)
    atomic_write(path, text)
    return inventory
