"""`fledge certs`: the fleet's certificate authority and the SuperLink's certificate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fledge.commands.fleet import load as load_fleet
from fledge.commands.playbooks import play
from fledge.console import (
    Format,
    FormatOption,
    InventoryOption,
    display_path,
    err,
    handle_errors,
    print_json,
)
from fledge.fsutil import open_state_dir
from fledge.lazy import lazy

if TYPE_CHECKING:
    from ansible_collections.fledge.edge.plugins.plugin_utils import pki
    from fledge import certificates
else:
    pki = lazy("ansible_collections.fledge.edge.plugins.plugin_utils.pki")
    certificates = lazy("fledge.certificates")

app = typer.Typer(
    help="The fleet's certificate authority and TLS certificates.", no_args_is_help=True
)


REISSUE_FIX = "`fledge certs init` (or `fledge provision`) issues a new one"


def _describe(path: Path, ca: pki.CertificateAuthority | None = None) -> dict[str, Any]:
    cert = pki.read_certificate(path, fix=REISSUE_FIX)
    info: dict[str, Any] = {
        "path": str(path),
        "subject": cert.subject.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "sha256": certificates.fingerprint(cert),
        "sans": sorted(pki.certificate_sans(cert)),
    }
    if ca is not None:
        info["issued_by_ca"] = pki.issued_by(cert, ca.cert)
    return info


def _print(ca_info: dict, server_info: dict | None, output: Format, **more: Any) -> None:
    if output is Format.json:
        print_json({"ca": ca_info, "superlink": server_info, **more})
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
            "--force",
            help="Replace an existing CA; every host must then be provisioned again. The old "
            "CA is kept in <state dir>/pki/replaced/<UTC time>/; to undo, copy its ca.crt and "
            "ca.key back into <state dir>/pki/ and provision again.",
        ),
    ] = False,
    output: FormatOption = Format.text,
) -> None:
    """Create the fleet's CA and the SuperLink's certificate (names from the inventory).

    An existing CA is kept unless --force is given; a replaced one is kept
    too, in pki/replaced/ (see --force). The CA's private key stays on this
    controller (0600); provisioning copies only certificates, and the
    SuperLink's own key to the SuperLink.
    """
    fleet = load_fleet(inventory_path)
    sans = fleet.superlink_sans  # checked before anything is written
    pki_dir = open_state_dir(fleet.state_dir) / "pki"
    shown = escape(display_path(pki_dir))
    replaced = None
    if pki.has_ca(pki_dir) and not force:
        ca = pki.load_ca(pki_dir)
        err.print(f"Keeping the existing CA in {shown} (--force replaces it).")
    else:
        ca, replaced = pki.replace_ca(pki_dir)
        err.print(f"Created a CA in {shown}.")
    if replaced:
        kept = escape(display_path(replaced))
        err.print(
            f"[yellow]The CA was replaced: provision the whole fleet again.[/]\n"
            f"The old CA is in {kept}; to undo, copy its ca.crt and ca.key back into {shown} "
            "and provision again."
        )
    issued = pki.ensure_server_cert(pki_dir, fleet.superlink.name, sans)
    if issued.changed:
        err.print(f"Issued the SuperLink's certificate ({', '.join(issued.reasons)}).")
    _print(
        _describe(pki_dir / pki.CA_CERT),
        _describe(issued.cert_path, ca),
        output,
        replaced_ca=str(replaced) if replaced else None,
    )


@app.command()
@handle_errors
def show(inventory_path: InventoryOption, output: FormatOption = Format.text) -> None:
    """Show the CA and the SuperLink's certificate, and whether it needs reissuing."""
    fleet = load_fleet(inventory_path)
    pki_dir = fleet.state_dir / "pki"
    ca = pki.load_ca(pki_dir)
    cert_path = pki_dir / pki.SERVER_CERT
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


@app.command()
@handle_errors
def status(inventory_path: InventoryOption, output: FormatOption = Format.text) -> None:
    """The certificates' expiry, and whether the coordinator serves the one issued here.

    The CA's and the SuperLink certificate's expiry; the certificate the
    coordinator serves is read over SSH.

    Exits 1 when something needs attention: a certificate expired or expiring
    (the CA within a year, the SuperLink's within 30 days), one not issued by
    the CA, or a coordinator serving another certificate. Cron-friendly.
    """
    fleet = load_fleet(inventory_path)
    pki_dir = fleet.state_dir / "pki"
    ca = pki.load_ca(pki_dir)
    ca_info = _describe(pki_dir / pki.CA_CERT) | certificates.expiry(
        ca.cert, certificates.CA_WARN_BEFORE
    )
    problems = [f"the CA {ca_info['state']}"] if ca_info["state"] != "valid" else []
    cert_path = pki_dir / pki.SERVER_CERT
    server: dict[str, Any] | None = None
    if not cert_path.is_file():
        problems.append("no SuperLink certificate: `fledge provision` issues it")
    else:
        cert = pki.read_certificate(cert_path, fix=REISSUE_FIX)
        server = _describe(cert_path, ca) | certificates.expiry(
            cert, certificates.SERVER_WARN_BEFORE
        )
        if server["state"] != "valid":
            problems.append(f"the SuperLink's certificate {server['state']}")
        if not server["issued_by_ca"]:
            problems.append("the SuperLink's certificate was not issued by this CA")
        on_coordinator = certificates.read_deployed(fleet)
        deployed = certificates.fingerprint(on_coordinator) if on_coordinator else None
        server["on_coordinator"] = deployed
        if deployed != server["sha256"]:
            problems.append(
                f"{fleet.superlink.name} serves another certificate ({deployed or 'none'}): "
                "`fledge provision` installs this one"
            )
    if output is Format.json:
        print_json({"ca": ca_info, "superlink": server, "problems": problems})
    else:
        _print(ca_info, server, output)
        if server is not None:
            same = server["on_coordinator"] == server["sha256"]
            err.print(
                f"On {escape(fleet.superlink.name)}: "
                + ("[green]this certificate[/]" if same else "[red]another certificate[/]")
            )
        for problem in problems:
            err.print(f"[red]attention:[/] {escape(problem)}")
    if problems:
        raise typer.Exit(1)


@app.command()
@handle_errors
def rotate(
    inventory_path: InventoryOption,
    wait: Annotated[
        int,
        typer.Option(
            "--wait",
            min=0,
            help="Seconds to wait for runs in progress to end (default: refuse while one runs).",
        ),
    ] = 0,
    output: FormatOption = Format.text,
) -> None:
    """Issue a new certificate and key for the SuperLink and install them.

    Once no run is in progress; devices, which trust the CA, reconnect by
    themselves (checked)."""
    fleet = load_fleet(inventory_path)
    err.print(f"Rotating the certificate of {escape(fleet.superlink.name)}")
    play(fleet, "rotate", "Rotation", output, extravars={"rotate_idle_timeout": wait})
    err.print("[green]Rotated[/]: the SuperLink serves its new certificate; every device is back.")
