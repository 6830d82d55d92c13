"""`annae privacy ...`: redact, export, erase, retain."""

import typer

app = typer.Typer(help="Privacy: redaction, export, erasure, retention.", no_args_is_help=True)
