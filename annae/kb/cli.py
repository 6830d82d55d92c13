"""`annae kb ...`: import, export and list the knowledge base."""

import typer

app = typer.Typer(help="Import, export and list the knowledge base.", no_args_is_help=True)
