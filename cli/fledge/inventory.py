"""Fleet inventories: read as Ansible reads them, checked before anything runs.

A fleet's inventory is a plain Ansible inventory with two groups::

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

Anything else Ansible allows works too (parent groups, ``group_vars/`` and
``host_vars/`` beside the file, other formats): fledge resolves hosts and
variables with ansible-core itself (:mod:`fledge.ansible_vars`), on top of
the collection's fleet-wide defaults, so fledge and Ansible never disagree.

fledge then checks what it and the roles rely on, and every error names the
file, the line, the host and the field at fault.
"""

from __future__ import annotations

import os
import shlex
import stat
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fledge import ansible_vars
from fledge.addresses import (
    is_host_name,
    is_ip,
    is_user_name,
    is_valid_address,
    parse_port,
)
from fledge.errors import FledgeError
from fledge.fsutil import atomic_write
from fledge.lazy import lazy

if TYPE_CHECKING:
    import yaml
else:
    yaml = lazy("yaml")

SUPERLINK = "superlink"
SUPERNODES = "supernodes"
# The collection roles whose defaults a host gets, as the deploy playbook's
# plays give them (later roles win).
ROLE_DEFAULTS = {"all": ["common"], SUPERLINK: ["superlink"], SUPERNODES: ["supernode"]}
DEFAULT_SSH_PORT = 22
# An inventory is a few kilobytes; anything this big is not one (and
# /dev/zero, a FIFO or a device would never end).
MAX_BYTES = 1 << 20

# SSH options that would turn host key checking off (fledge promises it is on).
_TRUSTING_OPTIONS = {
    "stricthostkeychecking": {"no", "off", "accept-new", "false"},
    "userknownhostsfile": {"/dev/null"},
}


@dataclass(frozen=True)
class Host:
    """One host with its variables as a play sees them (inventory over role defaults)."""

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

    def host(self, name: str) -> Host:
        """The host called ``name``; a FledgeError listing the fleet's hosts otherwise."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise FledgeError(
            f"no host {name!r} in this fleet",
            path=self.path,
            fix=f"name one of its hosts: {', '.join(h.name for h in self.hosts)}",
        )

    @property
    def state_dir(self) -> Path:
        """Where the controller keeps this fleet's CA, data and logs (``fledge_state_dir``)."""
        return Path(self.superlink.vars["fledge_state_dir"])

    @property
    def superlink_port(self) -> int:
        return int(self.superlink.vars["superlink_port"])

    @property
    def fleet_host(self) -> str:
        """The name or address devices dial to reach the SuperLink."""
        return str(self.superlink.vars["superlink_fleet_host"])

    @property
    def tls(self) -> bool:
        """False only when the operator turned TLS off (``fledge_tls``, read as Ansible does)."""
        return _boolean(self.superlink, "fledge_tls")

    @property
    def superlink_sans(self) -> list[str]:
        """Names and addresses the SuperLink's certificate carries."""
        v = self.superlink.vars
        # Here, not at the top: it brings cryptography, which most commands never need.
        from ansible_collections.fledge.edge.plugins.plugin_utils.pki import superlink_sans

        return superlink_sans(
            name=self.superlink.name,
            address=self.superlink.address,
            fleet_host=self.fleet_host,
            listen_address=v.get("superlink_listen_address"),
            extra=v.get("superlink_tls_extra_sans") or [],
        )


def load(path: Path | str) -> Inventory:
    """Read and check an inventory; raise FledgeError naming what is wrong."""
    path = Path(path)
    _check_file(path)
    read = ansible_vars.read(path, ROLE_DEFAULTS)
    superlinks = read.groups.get(SUPERLINK, [])
    devices = read.groups.get(SUPERNODES, [])
    both = set(superlinks) & set(devices)
    if both:
        name = sorted(both)[0]
        raise FledgeError(
            f"host '{name}' is in both 'superlink' and 'supernodes'",
            path=path,
            host=name,
            fix="a host is either the coordinator or a device; keep one entry",
        )
    clash = sorted(set(read.hosts) & set(read.groups))
    if clash:
        raise FledgeError(
            f"the host '{clash[0]}' has the name of a group: Ansible would run that group's "
            "plays on it",
            path=path,
            host=clash[0],
            fix=f"rename the host '{clash[0]}' (a host pattern cannot tell them apart)",
        )
    # Each host's own mistakes first: they come with a line to go to.
    hosts = [_host(path, name, SUPERLINK, read.hosts[name]) for name in superlinks]
    hosts += [_host(path, name, SUPERNODES, read.hosts[name]) for name in devices]
    if len(superlinks) != 1:
        raise FledgeError(
            f"the 'superlink' group must have exactly one host, found {len(superlinks)}",
            path=path,
            fix="list the coordinator (the host running the SuperLink) under superlink.hosts",
        )
    if not devices:
        raise FledgeError(
            "the 'supernodes' group has no hosts",
            path=path,
            fix="list your devices under supernodes.hosts",
        )
    return Inventory(path, hosts[0], tuple(hosts[1:]))


def write(path: Path, text: str) -> Inventory:
    """Check ``text`` as an inventory at ``path``, then write it atomically.

    It is checked where it will live (``group_vars/`` beside it count), from a
    private temporary file, so a bad host never reaches ``path``.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    except OSError as exc:  # name the file being written, not its temporary twin
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        checked = load(Path(tmp))
    finally:
        Path(tmp).unlink(missing_ok=True)
    atomic_write(path, text)
    return Inventory(path, checked.superlink, checked.supernodes)


def _check_file(path: Path) -> None:
    """A regular, readable UTF-8 file of sane size: Ansible would hang on /dev/zero."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise FledgeError(
            "inventory not found",
            path=path,
            fix="pass --inventory PATH, or create one with `fledge inventory generate` "
            "(or `fledge lab up` for a local test fleet)",
        ) from None
    except OSError as exc:
        raise FledgeError(f"cannot read the inventory: {exc.strerror}", path=path) from None
    if not stat.S_ISREG(info.st_mode):
        raise FledgeError(
            "the inventory is not a regular file",
            path=path,
            fix="point --inventory (or FLEDGE_INVENTORY) at your fleet's inventory file",
        )
    if info.st_size > MAX_BYTES:
        raise FledgeError(
            f"the inventory is {info.st_size} bytes; fleet inventories are a few kilobytes "
            f"(at most {MAX_BYTES})",
            path=path,
            fix="point --inventory (or FLEDGE_INVENTORY) at your fleet's inventory file",
        )
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FledgeError(
            "the inventory is not UTF-8 text",
            path=path,
            line=line,
            fix="save the file as UTF-8",
        ) from None


def _host(path: Path, name: str, group: str, variables: ansible_vars.HostVars) -> Host:
    """The host, once every value fledge and the roles rely on is checked."""

    def fail(key: str, message: str, fix: str) -> FledgeError:
        where = variables.where(key)
        return FledgeError(
            message, path=where.path or path, line=where.line, host=name, field=key, fix=fix
        )

    if not is_host_name(name):
        raise FledgeError(
            f"'{name}' is not a usable host name",
            path=path,
            host=name,
            fix="use letters, digits, '.', '_' and '-', starting with a letter or digit",
        )
    address = variables.get("ansible_host", name)
    if not isinstance(address, str) or not is_valid_address(address):
        raise fail(
            "ansible_host",
            f"'{address}' is not an IP address or host name",
            "set ansible_host to the device's IP address or DNS name, without a port",
        )
    for key in ("ansible_port", "superlink_port"):
        if key in variables and _port(variables[key]) is None:
            raise fail(
                key,
                f"'{variables[key]}' is not a port number (1-65535)",
                f"set {key} to a number from 1 to 65535",
            )
    user = variables.get("ansible_user")
    if user is not None and not (isinstance(user, str) and is_user_name(user)):
        raise fail(
            "ansible_user",
            f"'{user}' is not a valid Linux user name",
            "set ansible_user to the login user on the device, for example pi",
        )
    _check_ssh_options(variables, fail)
    _boolean_or_fail(variables, "fledge_tls", fail)
    if group == SUPERLINK:
        _check_superlink(variables, fail)
    return Host(name, group, variables)


def _check_superlink(variables: Mapping[str, Any], fail: Any) -> None:
    fleet_host = variables["superlink_fleet_host"]
    if not (isinstance(fleet_host, str) and is_valid_address(fleet_host)):
        raise fail(
            "superlink_fleet_host",
            f"'{fleet_host}' is not an IP address or host name",
            "set it to the name or address devices use to reach the coordinator",
        )
    state_dir = variables["fledge_state_dir"]
    if not (isinstance(state_dir, str) and Path(state_dir).is_absolute()):
        raise fail(
            "fledge_state_dir",
            f"'{state_dir}' is not an absolute path",
            "use an absolute path (Ansible and fledge would resolve a relative one apart)",
        )
    listen = variables.get("superlink_listen_address")
    if listen is not None and not (isinstance(listen, str) and is_ip(listen)):
        raise fail(
            "superlink_listen_address",
            f"'{listen}' is not an IP address",
            "use one of the coordinator's IP addresses, or 0.0.0.0 for all of them",
        )
    sans = variables.get("superlink_tls_extra_sans", [])
    if not isinstance(sans, list) or not all(isinstance(s, str) for s in sans):
        raise fail(
            "superlink_tls_extra_sans",
            f"{sans!r} is not a list of names",
            f"write it as a list, e.g. superlink_tls_extra_sans: [{sans}]"
            if isinstance(sans, str)
            else "write it as a list of DNS names or IP addresses",
        )


def _check_ssh_options(variables: Mapping[str, Any], fail: Any) -> None:
    """Refuse settings that would let Ansible trust an unknown or changed host key."""
    for key in ("ansible_host_key_checking", "ansible_ssh_host_key_checking"):
        if key in variables and not _boolean_or_fail(variables, key, fail):
            raise fail(
                key,
                "this turns SSH host key checking off; fledge always checks host keys",
                f"remove {key}; add the hosts' keys to known_hosts, read over a channel you trust",
            )
    for key in ("ansible_ssh_common_args", "ansible_ssh_extra_args", "ansible_ssh_args"):
        value = variables.get(key)
        if not value:
            continue
        for option, setting in ssh_options(str(value)):
            if setting.lower() in _TRUSTING_OPTIONS.get(option.lower(), set()):
                raise fail(
                    key,
                    f"'-o {option}={setting}' turns SSH host key checking off; fledge always "
                    "checks host keys",
                    "remove it; add the hosts' keys to known_hosts (for example with "
                    "UserKnownHostsFile=FILE), read over a channel you trust",
                )


def ssh_options(args: str) -> Iterable[tuple[str, str]]:
    """The ``-o Name=value`` options (or ``-o Name value``, ``-oName=value``) of SSH arguments."""
    words = shlex.split(args)
    for index, word in enumerate(words):
        if word == "-o" and index + 1 < len(words):
            option = words[index + 1]
        elif word.startswith("-o") and len(word) > 2:
            option = word[2:]
        else:
            continue
        name, _, setting = option.replace("=", " ", 1).partition(" ")
        yield name.strip(), setting.strip()


def _port(value: Any) -> int | None:
    """A port as Ansible takes it: a number, or a string of digits."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        return parse_port(str(value))
    except ValueError:
        return None


def _boolean(host: Host, key: str) -> bool:
    from ansible.module_utils.parsing.convert_bool import boolean

    return bool(boolean(host.vars[key], strict=True))


def _boolean_or_fail(variables: Mapping[str, Any], key: str, fail: Any) -> bool:
    """A boolean as Ansible's ``bool`` reads it, so that both sides agree; else an error."""
    from ansible.module_utils.parsing.convert_bool import boolean

    try:
        return bool(boolean(variables[key], strict=True))
    except TypeError:
        raise fail(
            key,
            f"{variables[key]!r} is not a boolean",
            f"set {key} to true or false",
        ) from None


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
