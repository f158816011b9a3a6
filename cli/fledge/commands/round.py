"""`fledge round`: placeholder, being written."""

import typer

app = typer.Typer(help="(round)", no_args_is_help=True)
