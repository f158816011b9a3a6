"""Write fledge's metrics for the Prometheus node exporter's textfile collector.

Run by fledge-metrics.timer under the Flower virtual environment's Python
(it has flwr and cryptography). Standard library otherwise, so the role's
unit tests import it on the controller.

The file is written whole, then renamed into place: the node exporter reads
the directory on every scrape and must never see half a file.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path


def _escape(value: str) -> str:
    """A label value as the Prometheus text format wants it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items())


def render(
    fledge_version: str,
    flwr_version: str,
    units: dict[str, bool],
    certificates: dict[str, float],
) -> str:
    """The metrics in the Prometheus text exposition format (version 0.0.4)."""
    lines = [
        "# HELP fledge_info The fledge and Flower releases on this host.",
        "# TYPE fledge_info gauge",
        f"fledge_info{{{_labels(fledge_version=fledge_version, flwr_version=flwr_version)}}} 1",
        "# HELP fledge_service_up Whether the fledge systemd unit is active (1) or not (0).",
        "# TYPE fledge_service_up gauge",
    ]
    lines += [f"fledge_service_up{{{_labels(unit=u)}}} {int(up)}" for u, up in units.items()]
    lines += [
        "# HELP fledge_certificate_expiry_seconds When the certificate expires (notAfter), "
        "as a Unix time.",
        "# TYPE fledge_certificate_expiry_seconds gauge",
    ]
    lines += [
        f"fledge_certificate_expiry_seconds{{{_labels(path=p)}}} {expiry:.0f}"
        for p, expiry in certificates.items()
    ]
    return "\n".join(lines) + "\n"


def unit_is_active(unit: str) -> bool:
    """`systemctl is-active`: exit status 0 means the unit is active."""
    result = subprocess.run(
        ["systemctl", "is-active", "--quiet", f"{unit}.service"], check=False, timeout=30
    )
    return result.returncode == 0


def certificate_expiry(path: Path) -> float:
    """The certificate's notAfter as a Unix time."""
    from cryptography import x509  # the venv's; only this function needs it

    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return cert.not_valid_after_utc.timestamp()


def flwr_version() -> str:
    try:
        return importlib.metadata.version("flwr")
    except importlib.metadata.PackageNotFoundError:
        return "none"


def collect(
    fledge_version: str,
    units: Iterable[str],
    certificates: Iterable[Path],
    is_active: Callable[[str], bool] = unit_is_active,
) -> str:
    """Read the host's state and render it; an unreadable certificate is left out (and logged)."""
    expiries = {}
    for path in certificates:
        try:
            expiries[str(path)] = certificate_expiry(path)
        except (OSError, ValueError) as exc:
            print(f"fledge-metrics: skipping {path}: {exc}", file=sys.stderr)
    return render(fledge_version, flwr_version(), {u: is_active(u) for u in units}, expiries)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one rename, world-readable for the node exporter."""
    # The temporary name does not end in .prom: the node exporter ignores it.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help="the .prom file to write")
    parser.add_argument("--fledge-version", required=True)
    parser.add_argument("--unit", action="append", default=[], help="a systemd unit, repeatable")
    parser.add_argument(
        "--certificate", action="append", default=[], type=Path, help="a PEM file, repeatable"
    )
    args = parser.parse_args(argv)
    write_atomically(args.output, collect(args.fledge_version, args.unit, args.certificate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
