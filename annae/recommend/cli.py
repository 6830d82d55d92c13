"""`annae rec ...`: import interactions, train, evaluate and query recommenders."""

import typer

app = typer.Typer(help="Product recommendations.", no_args_is_help=True)
