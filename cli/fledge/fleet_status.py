"""A fleet at a glance (`fledge fleet status`): each host as SSH, systemd, its Flower,
the controller's records and the SuperLink see it, and what needs attention.

It gathers and prints nothing. Hosts are asked concurrently (a bounded pool
of threads, beside one more for the SuperLink's node list), each login and
each command within a time limit. A host that cannot be reached still gets
its row, and the devices theirs when the coordinator is down.

What is asked on a host, as the login user unless noted:

- ``systemctl is-active`` of its units (services.units);
- its Flower release: ``<venv>/bin/python -c ...`` in fledge's virtual
  environment; on a device of the container runtime, first in the running
  SuperNode container (``sudo -n docker exec``: the engine's socket is
  root's), the virtual environment on the host when that container does not
  run (the flower role installs it on every host);
- on the coordinator, the SuperLink's certificate (``sudo -n cat``, the way
  `fledge certs status` reads it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import paramiko
from cryptography import x509

from ansible_collections.fledge.edge.plugins.plugin_utils import pki, registry
from fledge import certificates, control, remote, services
from fledge.errors import FledgeError
from fledge.flower.records import Node
from fledge.inventory import SUPERLINK, Host, Inventory

SUPERNODE = "supernode"

# Seconds to log in to a host, and for each command there.
LOGIN_TIMEOUT = 15.0
COMMAND_TIMEOUT = 30.0
# Hosts asked at once.
MAX_WORKERS = 8
VERSION_SCRIPT = "import importlib.metadata as m; print(m.version('flwr'))"

# The kinds of finding, as the JSON output names them.
UNREACHABLE = "unreachable"
SUDO_PASSWORD = "sudo_password"
CHECK_FAILED = "check_failed"
SERVICE_INACTIVE = "service_inactive"
VERSION_MISMATCH = "version_mismatch"
NO_NODE_ID = "no_node_id"
NOT_REGISTERED = "not_registered"
OFFLINE = "offline"
UNKNOWN_NODE = "unknown_node"
SUPERLINK_UNREACHABLE = "superlink_unreachable"
CERTIFICATE = "certificate"

_REISSUE_FIX = "`fledge certs init` (or `fledge provision`) issues a new one"
_DEVICE_CHECK = "see `fledge logs {host}` and, on the device, `systemctl status fledge-supernode`"
# What a broken session raises besides FledgeError.
_SESSION_ERRORS = (paramiko.SSHException, OSError, EOFError)

T = TypeVar("T")


@dataclass(frozen=True)
class Finding:
    """Something that needs attention; ``host`` is None for the fleet as a whole."""

    kind: str
    host: str | None
    message: str
    fix: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class HostStatus:
    """One host's row; None where a value could not be read."""

    host: str
    role: str
    address: str
    runtime: str | None
    reachable: bool = False
    error: str | None = None
    services: dict[str, str] = field(default_factory=dict)
    flower_version: str | None = None
    flower_source: str | None = None
    node_id: str | None = None
    node_status: str | None = None
    online_at: str | None = None
    offline_at: str | None = None

    @property
    def services_active(self) -> bool:
        return bool(self.services) and all(s == "active" for s in self.services.values())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FleetStatus:
    inventory: Path
    flower_version: str
    hosts: list[HostStatus]
    superlink: dict[str, Any]
    certificates: dict[str, dict[str, Any] | None]
    findings: list[Finding]

    @property
    def needs_attention(self) -> bool:
        return bool(self.findings)

    def to_json(self) -> dict[str, Any]:
        return {
            "inventory": str(self.inventory),
            "flower_version": self.flower_version,
            "attention": self.needs_attention,
            "hosts": [host.to_json() for host in self.hosts],
            "superlink": self.superlink,
            "certificates": self.certificates,
            "findings": [finding.to_json() for finding in self.findings],
        }


@dataclass
class _Probe:
    """What one host's session found."""

    row: HostStatus
    findings: list[Finding] = field(default_factory=list)
    # The coordinator's: the certificate it serves; False when it was not read.
    certificate: x509.Certificate | bool | None = False


def gather(fleet: Inventory) -> FleetStatus:
    """Ask every host, and the SuperLink, at once; then compare with the inventory."""
    pin = str(fleet.superlink.vars["flower_version"])
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(fleet.hosts) + 1)) as pool:
        listed = pool.submit(_list_nodes, fleet)
        asked = [pool.submit(_probe, fleet, host) for host in fleet.hosts]
        probes = [future.result() for future in asked]
        nodes, link_error = listed.result()
    findings = [finding for probe in probes for finding in probe.findings]
    for probe in probes:
        findings += _compare_host(probe.row, pin)
    findings += _match_nodes(fleet, [p.row for p in probes], nodes, link_error)
    certs: dict[str, dict[str, Any] | None] = {}
    if fleet.tls:
        certs, found = _certificates(fleet, probes[0].certificate)
        findings += found
    order = {host.name: index for index, host in enumerate(fleet.hosts)}
    findings.sort(key=lambda f: order.get(f.host, len(order)) if f.host else len(order))
    online = None if nodes is None else sum(1 for n in nodes if n.online)
    return FleetStatus(
        inventory=fleet.path,
        flower_version=pin,
        hosts=[probe.row for probe in probes],
        superlink={
            "reachable": nodes is not None,
            "error": link_error.message if link_error else None,
            "nodes": None if nodes is None else len(nodes),
            "online": online,
        },
        certificates=certs,
        findings=findings,
    )


# --- on each host -----------------------------------------------------------


def _probe(fleet: Inventory, host: Host) -> _Probe:
    role = SUPERLINK if host.group == SUPERLINK else SUPERNODE
    probe = _Probe(HostStatus(host.name, role, host.address, services.runtime(host)))
    row = probe.row
    try:
        with remote.shell(host, timeout=LOGIN_TIMEOUT) as shell:
            row.reachable = True
            row.services = _attempt(probe, "read the services' states", _states, shell, host) or {}
            version = _attempt(probe, "read the Flower version", _flower_version, shell, host)
            row.flower_version, row.flower_source = version or (None, None)
            if host.group == SUPERLINK and fleet.tls:
                _attempt(probe, "read the SuperLink's certificate", _read_cert, probe, shell, fleet)
    except (FledgeError, *_SESSION_ERRORS) as exc:
        if row.reachable:  # the session broke half way: what was read stays
            probe.findings.append(_failed(host.name, "finish its checks", exc))
        else:
            row.error = _message(exc)
            probe.findings.append(
                Finding(
                    UNREACHABLE,
                    host.name,
                    _message(exc),
                    getattr(exc, "fix", None)
                    or "check that the host is up and reachable from this controller",
                )
            )
    return probe


def _attempt(probe: _Probe, what: str, call: Callable[..., T], *args: Any) -> T | None:
    """``call(*args)``; on failure a finding, and None."""
    try:
        return call(*args)
    except services.SudoPasswordRequired as exc:
        probe.findings.append(Finding(SUDO_PASSWORD, probe.row.host, exc.message, exc.fix))
    except (FledgeError, *_SESSION_ERRORS) as exc:
        probe.findings.append(_failed(probe.row.host, what, exc))
    return None


def _failed(host: str, what: str, exc: BaseException) -> Finding:
    return Finding(
        CHECK_FAILED, host, f"could not {what}: {_message(exc)}", getattr(exc, "fix", None)
    )


def _message(exc: BaseException) -> str:
    if isinstance(exc, FledgeError):
        return exc.message
    return str(exc) or type(exc).__name__


def _states(shell: remote.Shell, host: Host) -> dict[str, str]:
    """Each unit's ``systemctl is-active`` answer (active, inactive, failed, ...)."""
    units = services.units(host)
    status, out, err = shell.run(["systemctl", "is-active", *units], timeout=COMMAND_TIMEOUT)
    states = out.split()
    if len(states) != len(units):
        raise FledgeError(
            f"`systemctl is-active` answered {(out.strip() or err.strip() or status)!r}"
        )
    return dict(zip(units, states, strict=True))


def _flower_version(shell: remote.Shell, host: Host) -> tuple[str | None, str]:
    """The flwr release the host's Flower runs, and where it was read."""
    if services.runtime(host) == "container":
        status, out, _ = services.run_as_root(
            shell,
            host,
            ["docker", "exec", services.SUPERNODE_CONTAINER, "python3", "-c", VERSION_SCRIPT],
            what="ask the SuperNode container for its Flower version",
            timeout=COMMAND_TIMEOUT,
        )
        if status == 0 and out.strip():
            return out.strip(), f"container {services.SUPERNODE_CONTAINER}"
        # Not running (a stopped service says so on its own): the host's venv.
    venv = str(host.vars["_common_venv"])
    status, out, _ = shell.run(
        [f"{venv}/bin/python", "-c", VERSION_SCRIPT], timeout=COMMAND_TIMEOUT
    )
    return (out.strip() or None) if status == 0 else None, venv


def _read_cert(probe: _Probe, shell: remote.Shell, fleet: Inventory) -> None:
    probe.certificate = certificates.read_deployed(fleet, shell)


def _compare_host(row: HostStatus, pin: str) -> list[Finding]:
    if not row.reachable:
        return []
    found = [
        Finding(
            SERVICE_INACTIVE,
            row.host,
            f"{unit} is {state}",
            (_DEVICE_CHECK if row.role == SUPERNODE else "see `fledge logs {host}`").format(
                host=row.host
            )
            + "; `fledge provision` starts it again",
        )
        for unit, state in row.services.items()
        if state != "active"
    ]
    if row.flower_source is not None and row.flower_version != pin:
        installed = f"Flower {row.flower_version}" if row.flower_version else "no Flower"
        found.append(
            Finding(
                VERSION_MISMATCH,
                row.host,
                f"{installed} in {row.flower_source}, the inventory pins {pin} (flower_version)",
                "`fledge provision` installs the pinned release (or, host by host while "
                "training runs, `ansible-playbook -i INVENTORY playbooks/upgrade.yml`)",
            )
        )
    return found


# --- the SuperLink's view -----------------------------------------------------


def _list_nodes(fleet: Inventory) -> tuple[list[Node] | None, FledgeError | None]:
    try:
        with control.superlink(fleet) as link:
            return link.list_nodes(), None
    except FledgeError as exc:
        return None, exc
    except _SESSION_ERRORS as exc:
        return None, FledgeError(_message(exc))


def _match_nodes(
    fleet: Inventory,
    rows: list[HostStatus],
    nodes: list[Node] | None,
    link_error: FledgeError | None,
) -> list[Finding]:
    """Each device's node as the controller recorded it (when it enrolled the device)
    and as the SuperLink lists it; and online nodes that are no device's."""
    found: list[Finding] = []
    if nodes is None:
        reason = link_error.message if link_error else "no answer"
        found.append(
            Finding(
                SUPERLINK_UNREACHABLE,
                fleet.superlink.name,
                f"cannot list the SuperLink's nodes: {reason}",
                (link_error.fix if link_error else None)
                or f"`fledge logs {fleet.superlink.name}` shows the SuperLink's journal",
            )
        )
    if not fleet.tls:  # no enrolments: nodes cannot be matched to hosts
        return found + ([] if nodes is None else _count_open_fleet(fleet, nodes))
    enrolments = registry.read_all(fleet.state_dir)
    by_id = {node.node_id: node for node in nodes or []}
    devices = [row for row in rows if row.role == SUPERNODE]
    for row in devices:
        enrolment = enrolments.get(row.host)
        if enrolment is None or not enrolment.node_id or enrolment.revoked:
            revoked = enrolment is not None and enrolment.revoked
            found.append(
                Finding(
                    NO_NODE_ID,
                    row.host,
                    f"has no node ID: it was revoked ({enrolment.revoked_at})"
                    if revoked and enrolment
                    else "has no node ID: it was never enrolled",
                    f"`fledge provision --enrol {row.host}` enrols it again, with a new key"
                    if revoked
                    else "`fledge provision` enrols it",
                )
            )
            continue
        row.node_id = enrolment.node_id
        if nodes is None:
            continue
        node = by_id.get(enrolment.node_id)
        row.node_status = node.status if node is not None else "unknown"
        if node is not None:
            row.online_at, row.offline_at = node.online_at, node.offline_at
        if node is None or node.status == "unregistered":
            found.append(
                Finding(
                    NOT_REGISTERED,
                    row.host,
                    f"its node {enrolment.node_id} is "
                    + ("unregistered" if node else "unknown to the SuperLink"),
                    f"`fledge provision --enrol {row.host}` enrols it again, with a new key",
                )
            )
        elif not node.online:
            since = f" since {node.offline_at}" if node.offline_at else ""
            found.append(
                Finding(
                    OFFLINE,
                    row.host,
                    f"its node {node.node_id} is {node.status}{since}",
                    _DEVICE_CHECK.format(host=row.host),
                )
            )
    mine = {row.node_id for row in devices if row.node_id}
    owners = {e.node_id: e for e in enrolments.values() if e.node_id}
    for node in nodes or []:
        if not node.online or node.node_id in mine:
            continue
        owner = owners.get(node.node_id)
        whose = (
            f"recorded for {owner.host}, which is "
            + ("revoked" if owner.revoked else "not in the inventory")
            if owner
            else "no host's in the controller's records"
        )
        found.append(
            Finding(
                UNKNOWN_NODE,
                None,
                f"node {node.node_id} is online but belongs to no device ({whose})",
                "if it is not yours, unregister it: `fledge tunnel`, then "
                f"`flwr supernode unregister {node.node_id} fledge`",
            )
        )
    return found


def _count_open_fleet(fleet: Inventory, nodes: list[Node]) -> list[Finding]:
    """Without TLS nodes are not authenticated: a SuperNode gets a new node ID at each
    start, so nodes cannot be told apart; only their number counts."""
    online = sum(1 for node in nodes if node.online)
    if online >= len(fleet.supernodes):
        return []
    return [
        Finding(
            OFFLINE,
            None,
            f"{online} of {len(fleet.supernodes)} devices are online (without TLS, nodes "
            "cannot be matched to hosts)",
            "see the devices' services above, and `fledge logs --all`",
        )
    ]


# --- certificates -----------------------------------------------------------


def _certificates(
    fleet: Inventory, served: x509.Certificate | bool | None
) -> tuple[dict[str, dict[str, Any] | None], list[Finding]]:
    """The CA's (on the controller) and the SuperLink's, as the coordinator serves it
    (``served``: None when it has none, False when it could not be read; then the
    controller's copy tells the expiry)."""
    pki_dir = fleet.state_dir / "pki"
    out: dict[str, dict[str, Any] | None] = {"ca": None, "superlink": None}
    found: list[Finding] = []
    ca_path = pki_dir / pki.CA_CERT
    if ca_path.is_file():
        ca = pki.read_certificate(ca_path, fix=_REISSUE_FIX)
        out["ca"] = _describe(ca, str(ca_path), "controller", certificates.CA_WARN_BEFORE)
    else:
        found.append(
            Finding(CERTIFICATE, None, "the fleet has no CA yet", "`fledge provision` creates it")
        )
    local = pki_dir / pki.SERVER_CERT
    if isinstance(served, x509.Certificate):
        where = certificates.deployed_path(fleet)
        out["superlink"] = _describe(
            served, where, fleet.superlink.name, certificates.SERVER_WARN_BEFORE
        )
    elif served is None:
        found.append(
            Finding(
                CERTIFICATE,
                fleet.superlink.name,
                f"no SuperLink certificate in {certificates.deployed_path(fleet)}",
                "`fledge provision` installs it",
            )
        )
    elif local.is_file():
        cert = pki.read_certificate(local, fix=_REISSUE_FIX)
        out["superlink"] = _describe(
            cert, str(local), "controller", certificates.SERVER_WARN_BEFORE
        )
    fixes = {
        "ca": "a new CA: `fledge certs init --force`, then `fledge provision` (every host)",
        "superlink": "`fledge certs rotate` (or `fledge provision`) issues a new one",
    }
    names = {"ca": "the CA", "superlink": "the SuperLink's certificate"}
    for key, info in out.items():
        if info is not None and info["state"] != "valid":
            found.append(
                Finding(
                    CERTIFICATE,
                    None,
                    f"{names[key]} {info['state']}: valid until {info['not_after']} "
                    f"({info['days_left']} days)",
                    fixes[key],
                )
            )
    return out, found


def _describe(
    cert: x509.Certificate, path: str, read_on: str, warn_before: dt.timedelta
) -> dict[str, Any]:
    return {
        "path": path,
        "read_on": read_on,
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sha256": certificates.fingerprint(cert),
    } | certificates.expiry(cert, warn_before)
