"""`fledge certs`: the fleet's certificate authority and the SuperLink's certificate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from rich.markup import escape
from rich.table import Table

from ansible_collections.fledge.edge.plugins.plugin_utils import pki
from fledge import inventory
from fledge.console import (
    Format,
    FormatOption,
    InventoryOption,
    display_path,
    err,
    handle_errors,
    print_json,
)
from fledge.fsutil import private_dir

app = typer.Typer(
    help="The fleet's certificate authority and TLS certificates.", no_args_is_help=True
)


def _describe(path: Path, ca: pki.CertificateAuthority | None = None) -> dict[str, Any]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    info: dict[str, Any] = {
        "path": str(path),
        "subject": cert.subject.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sha256": cert.fingerprint(hashes.SHA256()).hex(":"),
        "sans": sorted(pki.certificate_sans(cert)),
    }
    if ca is not None:
        info["issued_by_ca"] = pki.issued_by(cert, ca.cert)
    return info


def _print(ca_info: dict, server_info: dict | None, output: Format) -> None:
    if output is Format.json:
        print_json({"ca": ca_info, "superlink": server_info})
        return
    table = Table(show_header=False, box=None)
    table.add_column()
    table.add_column(overflow="fold")
    table.add_row("CA", escape(display_path(Path(ca_info["path"]))))
    table.add_row("  fingerprint", ca_info["sha256"])
    table.add_row("  expires", ca_info["not_after"])
    if server_info:
        table.add_row("SuperLink", escape(display_path(Path(server_info["path"]))))
        table.add_row("  names", escape(", ".join(server_info["sans"])))
        table.add_row("  expires", server_info["not_after"])
        table.add_row("  issued by CA", "yes" if server_info.get("issued_by_ca") else "[red]no[/]")
    err.print(table)


@app.command()
@handle_errors
def init(
    inventory_path: InventoryOption,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace an existing CA. Every host must then be provisioned again."
        ),
    ] = False,
    output: FormatOption = Format.text,
) -> None:
    """Create the fleet's CA and the SuperLink's certificate (names from the inventory).

    An existing CA is kept unless --force is given. The CA's private key stays
    on this controller (0600); provisioning copies only certificates, and the
    SuperLink's own key to the SuperLink.
    """
    fleet = inventory.load(inventory_path)
    pki_dir = private_dir(fleet.state_dir) / "pki"
    if (pki_dir / pki.CA_KEY).exists() and not force:
        ca = pki.load_ca(pki_dir)
        err.print(
            f"Keeping the existing CA in {escape(display_path(pki_dir))} (--force replaces it)."
        )
    else:
        ca = pki.init_ca(pki_dir, force=force)
        err.print(f"Created a CA in {escape(display_path(pki_dir))}.")
        if force:
            err.print("[yellow]The CA was replaced: provision the whole fleet again.[/]")
    issued = pki.ensure_server_cert(pki_dir, fleet.superlink.name, fleet.superlink_sans)
    if issued.changed:
        err.print(f"Issued the SuperLink's certificate ({', '.join(issued.reasons)}).")
    _print(_describe(pki_dir / pki.CA_CERT), _describe(issued.cert_path, ca), output)


@app.command()
@handle_errors
def show(inventory_path: InventoryOption, output: FormatOption = Format.text) -> None:
    """Show the CA and the SuperLink's certificate, and whether it needs reissuing."""
    fleet = inventory.load(inventory_path)
    pki_dir = fleet.state_dir / "pki"
    ca = pki.load_ca(pki_dir)
    cert_path = pki_dir / f"{fleet.superlink.name}.crt"
    server = None
    if cert_path.exists():
        server = _describe(cert_path, ca)
        server["reissue"] = pki.reasons_to_reissue(cert_path, ca, fleet.superlink_sans)
    _print(_describe(pki_dir / pki.CA_CERT), server, output)
    if output is Format.text:
        if server is None:
            err.print(
                "No SuperLink certificate yet: `fledge provision` or `fledge certs init` issues it."
            )
        elif server["reissue"]:
            err.print(
                f"[yellow]The next provisioning reissues it: {', '.join(server['reissue'])}.[/]"
            )
