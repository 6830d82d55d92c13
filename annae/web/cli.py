"""`annae serve` and `annae user ...`."""

import typer

user_app = typer.Typer(help="Agent and admin accounts.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the service's commands (serve) to the top-level app."""
