"""How long the fleet's certificates have left, and the SuperLink certificate the
coordinator really serves (read over SSH): what `fledge certs status` and
`fledge fleet status` check, with the same thresholds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from ansible_collections.fledge.edge.plugins.plugin_utils import pki
from fledge import remote, services
from fledge.inventory import Inventory

# When a certificate asks for attention: a CA is replaced with every host,
# so a year ahead; the SuperLink's certificate when provisioning would
# reissue it anyway.
CA_WARN_BEFORE = dt.timedelta(days=365)
SERVER_WARN_BEFORE = pki.RENEW_BEFORE
# Seconds to read the certificate on the coordinator.
READ_TIMEOUT = 60.0


def expiry(cert: x509.Certificate, warn_before: dt.timedelta) -> dict[str, Any]:
    """Days left, and the state: ``valid``, ``expires soon`` (within ``warn_before``) or
    ``expired``."""
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    state = "expired" if left.total_seconds() <= 0 else "expires soon"
    return {
        "days_left": left.days,
        "state": "valid" if left > warn_before else state,
    }


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":")


def deployed_path(fleet: Inventory) -> str:
    """Where provisioning puts the SuperLink's certificate on the coordinator."""
    return f"{fleet.superlink.vars['_common_tls_dir']}/superlink.crt"


def read_deployed(fleet: Inventory, shell: remote.Shell | None = None) -> x509.Certificate | None:
    """The SuperLink certificate on the coordinator, read as root (the TLS directory
    is the service's); None when there is none, or none that parses.

    Over ``shell`` when given (a session the caller holds), else over a session
    of its own; a coordinator that is this machine is read directly. Raises
    services.SudoPasswordRequired when sudo there wants a password.
    """
    path = deployed_path(fleet)
    coordinator = fleet.superlink
    if coordinator.vars.get("ansible_connection") == "local":
        pem = Path(path).read_bytes() if Path(path).is_file() else b""
    elif shell is not None:
        pem = _cat(shell, fleet, path)
    else:
        with remote.shell(coordinator) as own:
            pem = _cat(own, fleet, path)
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError:
        return None


def _cat(shell: remote.Shell, fleet: Inventory, path: str) -> bytes:
    status, out, _ = services.run_as_root(
        shell,
        fleet.superlink,
        ["cat", path],
        what=f"read the SuperLink's certificate ({path})",
        timeout=READ_TIMEOUT,
    )
    return out.encode() if status == 0 else b""
