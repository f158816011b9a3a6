"""The seam to ansible-core's own inventory and variable handling.

fledge reads a fleet's inventory exactly as Ansible does: every inventory
format Ansible reads, ``group_vars/`` and ``host_vars/`` beside it, parent
groups with children, variable precedence; with the collection's role
defaults beneath, as a play of the deploy playbook sees them. Values are
templated (Jinja) on first use, with Ansible's own templar, so a default
like ``{{ inventory_dir }}/.fledge`` means the same to fledge and Ansible.

Every value remembers where it was set (Ansible tags what it loads with its
origin), so errors can name the file and the line.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pkgutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ansible_collections.fledge.edge.plugins.plugin_utils as plugin_utils
from fledge.collection import collection_dir
from fledge.errors import FledgeError
from fledge.lazy import lazy

YAML_SUFFIXES = (".yml", ".yaml", ".json")
# Ansible's settings while fledge reads an inventory: duplicate keys are
# mistakes (YAML keeps the last one silently), and an inventory Ansible
# cannot parse is an error, not an empty fleet with a warning. Set while
# fledge reads an inventory only, never for the processes fledge starts.
_STRICT = {
    "ANSIBLE_DUPLICATE_YAML_DICT_KEY": "error",
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
}


@dataclass(frozen=True)
class Where:
    """Where a value was set, when Ansible knows."""

    path: Path | None = None
    line: int | None = None


class HostVars(Mapping[str, Any]):
    """One host's variables as a play sees them, templated on first use."""

    def __init__(self, host: str, raw: Mapping[str, Any], templar: Any) -> None:
        self.host = host
        self._raw = raw
        self._templar = templar
        self._resolved: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._resolved:
            raw = self._raw[key]
            try:
                value = self._templar.template(raw)
            except Exception as exc:  # Ansible's errors have no common base we can rely on
                where = where_set(raw)
                raise FledgeError(
                    f"cannot resolve the value: {_first_line(exc)}",
                    path=where.path,
                    line=where.line,
                    host=self.host,
                    field=key,
                    fix="check the Jinja expression and the variables it uses",
                ) from None
            self._resolved[key] = plain(value)
        return self._resolved[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def where(self, key: str) -> Where:
        """Where ``key`` was set for this host (a role default: the defaults file)."""
        return where_set(self._raw.get(key))


@dataclass(frozen=True)
class AnsibleInventory:
    """Groups in Ansible's order, and each host's variables."""

    groups: Mapping[str, Sequence[str]]
    hosts: Mapping[str, HostVars]


def read(path: Path, role_defaults: Mapping[str, Sequence[str]]) -> AnsibleInventory:
    """Read the inventory at ``path`` as ansible-playbook would.

    ``role_defaults`` maps a group to the collection roles whose defaults and
    vars its hosts get (in order, later roles win), as the deploy playbook's
    plays give them.
    """
    with _environment(_STRICT):  # ansible reads these settings as it parses
        return _read(path, role_defaults)


def _read(path: Path, role_defaults: Mapping[str, Sequence[str]]) -> AnsibleInventory:
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.plugins.loader import init_plugin_loader
    from ansible.template import Templar
    from ansible.vars.hostvars import HostVars as AnsibleHostVars
    from ansible.vars.manager import VariableManager

    _init_plugins(init_plugin_loader)
    loader = DataLoader()
    try:
        if path.suffix in YAML_SUFFIXES:
            _check_yaml(loader, path)
        manager = InventoryManager(loader=loader, sources=[str(path)])
        variables = VariableManager(loader=loader, inventory=manager)
        # Registers itself with the variable manager: `hostvars` in templates.
        AnsibleHostVars(inventory=manager, variable_manager=variables, loader=loader)
        groups = {name: list(hosts) for name, hosts in manager.get_groups_dict().items()}
        roles = _roles(role_defaults)
        defaults = {role: _role_file(loader, role, "defaults") for role in roles}
        role_vars = {role: _role_file(loader, role, "vars") for role in roles}
        hosts = {}
        for host in manager.get_hosts():
            # Ansible's precedence: role defaults < inventory < role vars.
            layered: dict[str, Any] = {}
            mine = _roles_for(host.get_groups(), role_defaults)
            for role in mine:
                layered.update(defaults[role])
            layered.update(variables.get_vars(host=host))
            for role in mine:
                layered.update(role_vars[role])
            hosts[host.name] = HostVars(host.name, layered, Templar(loader, variables=layered))
    except AnsibleError as exc:
        where = where_set(getattr(exc, "obj", None))
        raise FledgeError(
            f"Ansible cannot read the inventory: {_first_line(exc)}",
            path=where.path or path,
            line=where.line,
            fix="fix the file Ansible names; `ansible-inventory -i INVENTORY --list` shows "
            "how Ansible reads it",
        ) from None
    return AnsibleInventory(groups, hosts)


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """``values`` in the environment (where not set already), then as it was."""
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@functools.cache
def _init_plugins(init_plugin_loader: Any) -> None:
    """Ansible's plugin loader, once per process (lookups in templates need it).

    From then on Ansible's collection finder answers every ``ansible_collections``
    import, and refuses the modules of a collection imported before it was there
    (as fledge.edge is, for its plugin_utils): every one of them is found now, to
    run when first used.
    """
    for module in pkgutil.iter_modules(plugin_utils.__path__):
        lazy(f"{plugin_utils.__name__}.{module.name}")
    init_plugin_loader()


def _check_yaml(loader: Any, path: Path) -> None:
    """Parse a YAML inventory first, to report what Ansible's inventory plugins only
    warn about (syntax, duplicate keys, the wrong shape) as one error with its line."""
    from ansible.errors import AnsibleError

    try:
        doc = loader.load_from_file(str(path), cache="none")
    except RecursionError:
        raise FledgeError(
            "the inventory is nested too deeply to be an inventory",
            path=path,
            fix="an inventory nests groups a few levels deep; check the file",
        ) from None
    except AnsibleError as exc:
        where = where_set(getattr(exc, "obj", None))
        raise FledgeError(
            f"not valid YAML: {_first_line(exc).removeprefix('YAML parsing failed: ')}",
            path=path,
            line=where.line,
            fix="fix the YAML at that line (indentation, colons, quotes; each key once)",
        ) from None
    if not isinstance(doc, Mapping):
        raise FledgeError(
            "an inventory must be a YAML mapping with an 'all' group",
            path=path,
            fix="see inventories/example.yml for the format",
        )


def role_defaults(role: str) -> dict[str, Any]:
    """A collection role's defaults as written (not templated): for facts fledge needs
    before any inventory exists, such as the lab's SuperLink port."""
    import yaml

    path = collection_dir() / "roles" / role / "defaults" / "main.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def where_set(value: Any) -> Where:
    """The file and line a loaded value came from (Ansible's origin tag), or that an
    error's origin names."""
    try:
        from ansible._internal._datatag._tags import Origin
    except ImportError:  # another ansible-core than the pinned 2.19: no locations
        return Where()
    origin = value if isinstance(value, Origin) else Origin.get_tag(value)
    if origin is None or origin.path is None:
        return Where()
    return Where(Path(origin.path), origin.line_num)


def plain(value: Any) -> Any:
    """A templated value as plain Python types, without Ansible's tags."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _role_file(loader: Any, role: str, kind: str) -> dict[str, Any]:
    """A role's ``defaults`` or ``vars``, with their templates trusted as Ansible trusts them."""
    path = collection_dir() / "roles" / role / kind / "main.yml"
    if not path.is_file():
        return {}
    return dict(loader.load_from_file(str(path), trusted_as_template=True) or {})


def _roles(role_defaults: Mapping[str, Sequence[str]]) -> list[str]:
    return list(dict.fromkeys(role for roles in role_defaults.values() for role in roles))


def _roles_for(groups: Sequence[Any], role_defaults: Mapping[str, Sequence[str]]) -> list[str]:
    names = {group.name for group in groups}
    return list(
        dict.fromkeys(
            role for group, roles in role_defaults.items() if group in names for role in roles
        )
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
