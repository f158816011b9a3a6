"""`fledge inventory`: placeholder, being written."""

import typer

app = typer.Typer(help="(inventory)", no_args_is_help=True)
