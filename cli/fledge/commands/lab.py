"""`fledge lab`: placeholder, being written."""

import typer

app = typer.Typer(help="(lab)", no_args_is_help=True)
