"""Scan hosts over SSH: what each one is, and whether fledge's preflight would take it.

One SSH login and one remote shell command per host (:func:`remote_command`)
read the architecture (the kernel's and the userland's), the OS, the
Python, memory, free disk, the Raspberry Pi model and the clock; the hosts
are scanned a bounded number at a time, each within a time limit, and a
host that cannot be reached is a result with its error, not a failure of
the scan.

The verdict (:func:`judge`) applies the checks of the collection's
``preflight`` role with the role's own settings, read from its
``defaults/main.yml`` and ``vars/main.yml`` (:func:`preflight_settings`):
each threshold is declared once, there, for Ansible and for this scan.

Host keys are checked as everywhere in fledge (:func:`fledge.ssh.connect`);
only with ``accept_new_host_key`` is the key of a host that known_hosts
does not know yet recorded (never a changed one), and the result says so.

:func:`extend_inventory` adds scanned hosts to an existing YAML inventory.
Nothing here prints.
"""

from __future__ import annotations

import getpass
import re
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fledge import inventory
from fledge.ansible_vars import role_defaults
from fledge.collection import collection_dir
from fledge.errors import FledgeError
from fledge.fsutil import atomic_write
from fledge.inventory import HostSpec
from fledge.lazy import lazy

if TYPE_CHECKING:
    import paramiko
    import yaml

    from fledge import ssh
else:
    paramiko = lazy("paramiko")
    yaml = lazy("yaml")
    ssh = lazy("fledge.ssh")

# Hosts scanned at once: SSH handshakes are CPU work on a small controller.
MAX_PARALLEL = 16
# Seconds to log in, and then for the probe to answer, per host.
DEFAULT_TIMEOUT = 15.0
DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
REINSTALL_FIX = "reinstall fledge (pip install --force-reinstall fledge-edge)"
# Begins each section of the probe's output; no value of a section starts with it.
_MARK = "::fledge-scan::"


# --- What preflight demands ------------------------------------------------


@dataclass(frozen=True)
class Needs:
    """Free disk and total memory a kind of host needs, in MB."""

    disk_mb: int
    memory_mb: int


@dataclass(frozen=True)
class Preflight:
    """The preflight role's settings, as its defaults and vars declare them."""

    python: str
    python_min_version: str
    disk_path: str
    requirements: Mapping[str, Needs]
    clock_max_ahead: float
    clock_max_behind: float
    # Userland architectures (dpkg's names) to the names Python wheels use.
    architectures: Mapping[str, str]

    @property
    def runtimes(self) -> list[str]:
        """The device runtimes that have requirements of their own."""
        return [kind for kind in self.requirements if kind != inventory.SUPERLINK]


def preflight_settings() -> Preflight:
    """Read the preflight role's defaults and vars from this fledge's collection."""
    role = collection_dir() / "roles" / "preflight"
    defaults_path, vars_path = role / "defaults" / "main.yml", role / "vars" / "main.yml"
    defaults, variables = _role_file(defaults_path), _role_file(vars_path)

    def get(doc: Mapping[str, Any], path: Path, key: str, kind: type | tuple[type, ...]) -> Any:
        value = doc.get(key)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise FledgeError(
                f"{value!r} is not what fledge inventory scan can read here",
                path=path,
                field=key,
                fix=f"give {key} a literal value (the role's own is one), or {REINSTALL_FIX}",
            )
        return value

    number = (int, float)
    requirements = {}
    for kind, needs in get(defaults, defaults_path, "preflight_requirements", dict).items():
        where = f"preflight_requirements.{kind}"
        if not isinstance(needs, dict):
            raise FledgeError(
                "not a mapping", path=defaults_path, field=where, fix="{disk_mb: N, memory_mb: N}"
            )
        requirements[str(kind)] = Needs(
            disk_mb=get(needs, defaults_path, "disk_mb", int),
            memory_mb=get(needs, defaults_path, "memory_mb", int),
        )
    return Preflight(
        python=get(defaults, defaults_path, "preflight_python", str),
        python_min_version=str(
            get(defaults, defaults_path, "preflight_python_min_version", (str, *number))
        ),
        disk_path=_common_path(get(defaults, defaults_path, "preflight_disk_path", str)),
        requirements=requirements,
        clock_max_ahead=get(defaults, defaults_path, "preflight_clock_max_ahead", number),
        clock_max_behind=get(defaults, defaults_path, "preflight_clock_max_behind", number),
        architectures={
            str(k): str(v)
            for k, v in get(variables, vars_path, "_preflight_architectures", dict).items()
        },
    )


def _common_path(value: str) -> str:
    """A path that names fledge.edge.common's directories (``{{ fledge_install_dir }}``),
    with their defaults."""
    common = role_defaults("common")
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(common.get(m.group(1), m.group(0))), value)


def default_runtime() -> str:
    """How devices run their SuperNode unless the inventory says otherwise."""
    return str(role_defaults("common")["supernode_runtime"])


def _role_file(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise FledgeError(
            f"cannot read the role's settings: {exc}", path=path, fix=REINSTALL_FIX
        ) from None
    if not isinstance(doc, dict):
        raise FledgeError("not a YAML mapping", path=path, fix=REINSTALL_FIX)
    return doc


# --- What a host is ----------------------------------------------------------


@dataclass(frozen=True)
class Clock:
    """The host's clock, read between two readings of the controller's (Unix seconds)."""

    before: float
    remote: float
    after: float

    @property
    def offset(self) -> float:
        """The host's clock against the controller's: positive when it is ahead."""
        return self.remote - (self.before + self.after) / 2

    @property
    def uncertainty(self) -> float:
        """How far the true offset may be from :attr:`offset`: half the window."""
        return (self.after - self.before) / 2

    @property
    def ahead(self) -> float:
        """How far ahead at least, as preflight measures it (the network's delay in its favour)."""
        return self.remote - self.after

    @property
    def behind(self) -> float:
        """How far behind at least, as preflight measures it."""
        return self.before - self.remote


@dataclass(frozen=True)
class Facts:
    """What one probe read; None where the host did not tell."""

    architecture: str | None  # the kernel's (uname -m)
    userland: str | None  # dpkg --print-architecture; None: no dpkg
    os: str | None  # os-release's PRETTY_NAME
    codename: str | None  # os-release's VERSION_CODENAME
    python: str | None
    memory_mb: int | None
    disk_mb: int | None
    pi_model: str | None
    systemd: bool
    clock: Clock | None


def remote_command(settings: Preflight) -> str:
    """One POSIX shell command that prints every fact, each in a section of its own.

    The clock goes first, closest to the controller's reading before; every
    section ends with a newline even when its file does not (a device-tree
    model ends with a NUL instead), and a failing read leaves its section empty.
    """
    python = shlex.quote(settings.python)
    sections = {
        "clock": "date +%s.%N",
        "kernel": "uname -m",
        "userland": "dpkg --print-architecture",
        "os_release": "cat /etc/os-release || cat /usr/lib/os-release",
        "python": f"{python} -c 'import platform; print(platform.python_version())'",
        "memory": "grep '^MemTotal:' /proc/meminfo",
        # Blocks available to unprivileged users, times their size: what
        # Python's shutil.disk_usage (preflight's reading) calls free.
        # The nearest directory that exists, as preflight reads it on a fresh host.
        "disk": f"p={shlex.quote(settings.disk_path)}; "
        'while [ ! -e "$p" ]; do p=$(dirname "$p"); done; stat -f -c \'%a %S\' "$p"',
        "model": "cat /proc/device-tree/model || cat /sys/firmware/devicetree/base/model",
        "systemd": "test -d /run/systemd/system && echo yes",
    }
    script = "LC_ALL=C; export LC_ALL; " + " ".join(
        f"echo '{_MARK}{name}'; {{ {command}; }} 2>/dev/null; echo;"
        for name, command in sections.items()
    )
    return f"sh -c {shlex.quote(script)}"


def sections(text: str) -> dict[str, str]:
    """The probe's output by section."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(_MARK):
            current = found.setdefault(line[len(_MARK) :].strip(), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in found.items()}


def parse(text: str, before: float, after: float) -> Facts:
    """The facts in the probe's output, read between ``before`` and ``after``."""
    parts = sections(text)
    if "clock" not in parts or "systemd" not in parts:
        raise ValueError("the host's output is not the probe's")

    def first_line(name: str) -> str | None:
        for line in parts.get(name, "").splitlines():
            if line.strip():
                return line.strip()
        return None

    release = os_release(parts.get("os_release", ""))
    python = first_line("python")
    memory = re.search(r"^MemTotal:\s*(\d+)\s*kB", parts.get("memory", ""), re.MULTILINE)
    disk = re.fullmatch(r"(\d+)\s+(\d+)", first_line("disk") or "")
    model = parts.get("model", "").replace("\0", "").strip()
    remote = _float(first_line("clock"))
    return Facts(
        architecture=first_line("kernel"),
        userland=first_line("userland"),
        os=release.get("PRETTY_NAME") or release.get("NAME") or None,
        codename=release.get("VERSION_CODENAME") or None,
        python=python if python and re.match(r"\d+\.\d+", python) else None,
        memory_mb=int(memory[1]) // 1024 if memory else None,
        disk_mb=int(disk[1]) * int(disk[2]) // 2**20 if disk else None,
        pi_model=model or None,
        systemd=first_line("systemd") == "yes",
        clock=Clock(before, remote, after) if remote is not None else None,
    )


def os_release(text: str) -> dict[str, str]:
    """The fields of an os-release file (shell-quoted values, comments, blank lines)."""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or not re.fullmatch(r"[A-Z0-9_]+", key):
            continue
        try:
            words = shlex.split(value)
        except ValueError:  # an unbalanced quote: take the text as it is
            words = [value.strip("\"'")]
        fields[key] = " ".join(words)
    return fields


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


# --- Would preflight take it -------------------------------------------------


def judge(facts: Facts, kind: str, settings: Preflight) -> list[str]:
    """Why the preflight role would refuse a host that runs ``kind``, each in a few words
    (its own messages say more); empty: it would take the host."""
    from ansible.plugins.test.core import version_compare  # preflight's `version` test

    reasons = []
    if not facts.systemd:
        reasons.append("no systemd")
    if facts.userland is None:
        reasons.append("no dpkg: not Debian-family (Raspberry Pi OS, Debian, Ubuntu)")
    elif facts.userland not in settings.architectures:
        reasons.append(
            f"{facts.userland} userland (needs {' or '.join(settings.architectures)}: a 64-bit OS)"
        )
    if facts.python is None:
        reasons.append(f"no {settings.python}")
    elif not version_compare(facts.python, settings.python_min_version, ">="):
        reasons.append(f"Python {facts.python} (needs {settings.python_min_version}+)")
    needs = settings.requirements[kind]
    if facts.memory_mb is None:
        reasons.append("memory unreadable")
    elif facts.memory_mb < needs.memory_mb:
        reasons.append(f"{facts.memory_mb} MB memory (a {kind} host needs {needs.memory_mb} MB)")
    if facts.disk_mb is None:
        reasons.append(f"free disk on {settings.disk_path} unreadable")
    elif facts.disk_mb < needs.disk_mb:
        reasons.append(
            f"{facts.disk_mb} MB free on {settings.disk_path} (a {kind} host needs "
            f"{needs.disk_mb} MB)"
        )
    clock = facts.clock
    if clock is None:
        reasons.append("clock unreadable")
    elif clock.ahead > settings.clock_max_ahead:
        reasons.append(f"clock {clock.ahead:.1f} s ahead (at most {settings.clock_max_ahead} s)")
    elif clock.behind > settings.clock_max_behind:
        reasons.append(f"clock {clock.behind:.1f} s behind (at most {settings.clock_max_behind} s)")
    return reasons


# --- Scanning ----------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A host to scan, and what it would run (``superlink`` or a device runtime)."""

    spec: HostSpec
    kind: str

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def port(self) -> int:
        return self.spec.port or inventory.DEFAULT_SSH_PORT


@dataclass(frozen=True)
class Access:
    """How to log in: the default user, a private key, the known_hosts file, time limits."""

    known_hosts: Path
    user: str | None = None
    key_file: Path | None = None
    accept_new_host_key: bool = False
    timeout: float = DEFAULT_TIMEOUT

    def user_for(self, target: Target) -> str:
        return target.spec.user or self.user or getpass.getuser()


@dataclass(frozen=True)
class RecordedKey:
    """A host key that known_hosts did not have, recorded because the operator said so."""

    type: str
    fingerprint: str  # SHA256:..., as ssh-keygen -l shows it
    known_hosts: Path
    entry: str  # the host's name in the file


@dataclass(frozen=True)
class Result:
    target: Target
    user: str
    facts: Facts | None = None
    reasons: Sequence[str] = ()
    error: FledgeError | None = None
    recorded_key: RecordedKey | None = None

    @property
    def reached(self) -> bool:
        return self.facts is not None

    @property
    def ok(self) -> bool:
        return self.reached and not self.reasons

    @property
    def verdict(self) -> str:
        return "ok" if self.ok else "refused" if self.reached else "unreachable"


def check_access(access: Access) -> None:
    """Refuse a key or known_hosts file that cannot serve, before any host is tried."""
    if access.key_file is not None:
        try:
            paramiko.PKey.from_path(access.key_file)
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise FledgeError(
                f"cannot load the SSH private key: {getattr(exc, 'strerror', None) or exc}",
                path=access.key_file,
                field="--key",
                fix="point at an unencrypted OpenSSH private key readable by you",
            ) from None
    known_hosts = access.known_hosts
    if known_hosts.is_file():
        try:
            paramiko.HostKeys(str(known_hosts))
        except OSError as exc:
            raise FledgeError(
                f"cannot read known_hosts: {exc.strerror}", path=known_hosts, field="--known-hosts"
            ) from None
    elif known_hosts.exists():
        raise FledgeError(
            "known_hosts is not a regular file", path=known_hosts, field="--known-hosts",
            fix="give the path of a known_hosts file",
        )  # fmt: skip
    elif not access.accept_new_host_key:
        raise FledgeError(
            "no known_hosts file to check the hosts' keys against",
            path=known_hosts,
            field="--known-hosts",
            fix="add the hosts' keys to it, read over a channel you trust (ssh-keyscan on a "
            "network you trust, or each host's console); or, on such a network, pass "
            "--accept-new-host-key to record the keys the hosts show",
        )
    elif not known_hosts.parent.is_dir():
        raise FledgeError(
            f"there is no directory {known_hosts.parent} for known_hosts",
            path=known_hosts,
            field="--known-hosts",
            fix=f"create it first (mkdir -m 700 -p {known_hosts.parent})",
        )


def scan(
    targets: Sequence[Target],
    access: Access,
    settings: Preflight,
    on_result: Callable[[Result], None] | None = None,
) -> list[Result]:
    """Scan every target, at most :data:`MAX_PARALLEL` at once; results in the order given."""
    if not targets:
        return []
    command = remote_command(settings)

    def one(target: Target) -> Result:
        result = scan_host(target, access, settings, command)
        if on_result is not None:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(targets))) as pool:
        return list(pool.map(one, targets))


def scan_host(target: Target, access: Access, settings: Preflight, command: str) -> Result:
    """One host's result; an unreachable host's carries the error."""
    user = access.user_for(target)
    recorded: list[RecordedKey] = []
    try:
        output, before, after = probe(target, access, command, recorded.append)
        try:
            facts = parse(output, before, after)
        except ValueError as exc:
            raise FledgeError(
                f"{user}@{target.spec.address}: {exc} ({output.strip()[:200]!r})",
                fix="check that the login user's shell runs sh -c (fledge's probe is a "
                "POSIX shell command)",
            ) from None
    except (paramiko.SSHException, OSError, EOFError) as exc:  # what the seams did not name
        error = FledgeError(
            f"SSH to {user}@{target.spec.address}:{target.port} failed: "
            f"{exc or type(exc).__name__}",
            host=target.name,
            fix="check that the host is up and sshd listens on that port",
        )
        return Result(target, user, error=error, recorded_key=next(iter(recorded), None))
    except FledgeError as exc:
        if exc.host is None:
            exc.host = target.name
        return Result(target, user, error=exc, recorded_key=next(iter(recorded), None))
    return Result(
        target,
        user,
        facts=facts,
        reasons=judge(facts, target.kind, settings),
        recorded_key=next(iter(recorded), None),
    )


def probe(
    target: Target,
    access: Access,
    command: str,
    on_recorded: Callable[[RecordedKey], None],
) -> tuple[str, float, float]:
    """Log in and run ``command``: its output, and the controller's time just before and
    just after (the seam the unit tests replace)."""
    user = access.user_for(target)
    if access.accept_new_host_key:
        recorded = _record_new_host_key(target, access)
        if recorded is not None:
            on_recorded(recorded)
    client = ssh.connect(
        target.spec.address,
        target.port,
        user,
        access.key_file,
        access.known_hosts,
        timeout=access.timeout,
    )
    with client:
        before = time.time()
        try:
            status, output, errors = ssh.run(client, command, timeout=access.timeout)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise FledgeError(
                f"SSH to {user}@{target.spec.address}:{target.port}: the connection failed "
                f"while the probe ran ({exc or type(exc).__name__})",
                fix="check the host's sshd log (journalctl -u ssh) and scan again",
            ) from None
        after = time.time()
    if status != 0 and _MARK not in output:
        raise FledgeError(
            f"the probe exited {status}: {errors.strip()[-300:] or 'no message'}",
            fix="check that the login user has a working shell",
        )
    return output, before, after


# known_hosts is rewritten whole (atomically): one host at a time.
_KNOWN_HOSTS_LOCK = threading.Lock()


def known_hosts_entry(address: str, port: int) -> str:
    """The name OpenSSH and paramiko look a host up by in known_hosts."""
    return address if port == inventory.DEFAULT_SSH_PORT else f"[{address}]:{port}"


def _record_new_host_key(target: Target, access: Access) -> RecordedKey | None:
    """Record the key the host shows when known_hosts has none for it (never replace one)."""
    entry = known_hosts_entry(target.spec.address, target.port)
    path = access.known_hosts
    if _knows(path, entry):
        return None  # a changed key is refused by ssh.connect, as always
    key = fetch_host_key(target.spec.address, target.port, access.timeout)
    with _KNOWN_HOSTS_LOCK:
        try:
            if _knows(path, entry):
                return None
            old = path.read_text(encoding="utf-8") if path.exists() else ""
            if old and not old.endswith("\n"):
                old += "\n"
            atomic_write(path, f"{old}{entry} {key.get_name()} {key.get_base64()}\n")
        except OSError as exc:
            raise FledgeError(
                f"cannot record the host's key: {exc.strerror or exc}",
                path=path,
                field="--known-hosts",
                fix="give a known_hosts file you can write",
            ) from None
    return RecordedKey(key.get_name(), key.fingerprint, path, entry)


def _knows(path: Path, entry: str) -> bool:
    return path.exists() and paramiko.HostKeys(str(path)).lookup(entry) is not None


def fetch_host_key(address: str, port: int, timeout: float) -> paramiko.PKey:
    """The host key the host shows (what ``ssh-keyscan`` prints), no login."""
    where = f"{address}:{port}"
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
    except OSError as exc:
        raise FledgeError(
            f"SSH to {where} failed: {exc.strerror or exc}",
            fix="check that the host is up and sshd listens on that port",
        ) from None
    transport = paramiko.Transport(sock)
    transport.banner_timeout = timeout
    try:
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise FledgeError(
            f"SSH to {where} failed: {exc or type(exc).__name__}",
            fix="check that the host is up and sshd listens on that port",
        ) from None
    finally:
        transport.close()


# --- Adding hosts to an inventory -------------------------------------------


def check_extendable(path: Path, additions: Mapping[str, Sequence[str]]) -> None:
    """Refuse an inventory that :func:`extend_inventory` could not add these hosts to
    (``additions``: group to host names)."""
    _load_for_edit(path, additions)


def extend_inventory(
    path: Path, additions: Mapping[str, Sequence[HostSpec]]
) -> tuple[inventory.Inventory, bool]:
    """Add hosts to groups of the YAML inventory at ``path`` (``additions``: group to
    hosts): checked as a whole, then written at once.

    The file is read with PyYAML and written back as plain YAML: its leading
    comment lines are kept, other comments are not (the second value says
    whether the file may have had any). Names that the inventory holds
    already (a host or a group) are refused; so is a second coordinator.
    """
    names = {group: [spec.name for spec in specs] for group, specs in additions.items()}
    doc, groups, header, text = _load_for_edit(path, names)
    for group, specs in additions.items():
        hosts = groups[group].get("hosts")
        if not isinstance(hosts, dict):
            hosts = groups[group]["hosts"] = {}
        for spec in specs:
            hosts[spec.name] = spec.to_vars() or None
    try:
        fleet = inventory.write(
            path, header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
        )
    except FledgeError as exc:
        # inventory.write checks a temporary twin beside the file: name the file.
        if exc.path is not None and exc.path.name.startswith(f".{path.stem}."):
            exc.path, exc.line = path, None
        exc.message = f"with the scanned hosts added: {exc.message}"
        raise
    return fleet, "#" in text[len(header) :]


def _load_for_edit(
    path: Path, additions: Mapping[str, Sequence[str]]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], str, str]:
    """The inventory's YAML, where each group of ``additions`` is defined in it (made when
    missing), its leading comments, and its text."""
    from fledge import ansible_vars

    fix_yaml = "add the hosts by hand, or write a new inventory with --output"
    if path.suffix not in (".yml", ".yaml"):
        raise FledgeError(
            "fledge can add hosts to a YAML inventory (.yml, .yaml) only",
            path=path, field="--add-to", fix=fix_yaml,
        )  # fmt: skip
    # Ansible's reading first: it names what is wrong with the file, if anything.
    read = ansible_vars.read(path, inventory.ROLE_DEFAULTS)
    for name in (name for names in additions.values() for name in names):
        if name in read.hosts or name in read.groups:
            what = "a host" if name in read.hosts else "a group"
            raise FledgeError(
                f"the inventory has {what} called {name!r} already",
                path=path,
                host=name,
                field="--add-to",
                fix="give the scanned host another name (NAME=ADDRESS), or leave it out",
            )
    coordinators = read.groups.get(inventory.SUPERLINK)
    if additions.get(inventory.SUPERLINK) and coordinators:
        raise FledgeError(
            f"the inventory has a coordinator already ({coordinators[0]})",
            path=path,
            field="--coordinator",
            fix="a fleet has one coordinator: scan the new host as a device, or write a new "
            "inventory with --output",
        )
    text = path.read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # Ansible's own tags (!vault, !unsafe) PyYAML cannot keep
        raise FledgeError(
            f"fledge cannot edit this YAML without losing what it says: {exc}",
            path=path, field="--add-to", fix=fix_yaml,
        ) from None  # fmt: skip
    if not isinstance(doc, dict):
        raise FledgeError("not a YAML inventory", path=path, field="--add-to", fix=fix_yaml)
    groups = {}
    for group in additions:
        definitions = list(_definitions(doc, group))
        # Where it lists hosts already, else where it is first defined, else a new one.
        found = next((d for d in definitions if "hosts" in d), None) or next(
            iter(definitions), None
        )
        groups[group] = found if found is not None else _new_group(doc, group, path, fix_yaml)
    header = "".join(_leading_comments(text.splitlines(keepends=True)))
    return doc, groups, header, text


def _new_group(doc: dict[str, Any], group: str, path: Path, fix: str) -> dict[str, Any]:
    """A group the inventory does not define yet, among the children of ``all``."""
    if doc.get("all") is None:
        doc["all"] = {}
    top = doc["all"]
    if isinstance(top, dict) and top.get("children") is None:
        top["children"] = {}
    children = top.get("children") if isinstance(top, dict) else None
    if not isinstance(children, dict):
        raise FledgeError(
            f"cannot find where to add the group {group!r}", path=path, field="--add-to", fix=fix
        )
    node: dict[str, Any] = children.setdefault(group, {})
    return node


def _definitions(doc: dict[str, Any], group: str) -> Iterable[dict[str, Any]]:
    """Each mapping that defines ``group``: a top-level key, or one under a group's children."""
    queue: list[dict[str, Any]] = [doc]
    while queue:
        groups = queue.pop(0)
        for name, node in groups.items():
            if node is None and name == group:  # `supernodes:` with nothing under it
                groups[name] = node = {}
            if not isinstance(node, dict):
                continue
            if name == group:
                yield node
            children = node.get("children")
            if isinstance(children, dict):
                queue.append(children)


def _leading_comments(lines: list[str]) -> list[str]:
    """The comment lines (and blank lines among them) before the first line of YAML."""
    out = []
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            break
        out.append(line)
    return out
