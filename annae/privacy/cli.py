"""`annae privacy ...`: redact text; record consent; read the audit log."""

from __future__ import annotations

import json
import sys

import typer

app = typer.Typer(help="Privacy: redaction, consent, audit log.", no_args_is_help=True)


@app.callback()
def _privacy() -> None:
    """Privacy: PII redaction, consent per purpose, the append-only audit log."""


@app.command()
def redact(
    text: str = typer.Argument(..., help="The text to redact; '-' reads standard input."),
    types: str = typer.Option("", "--types", "-t", help="Comma-separated types (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print the spans and counts as JSON."),
) -> None:
    """Replace personal data in TEXT by [EMAIL], [PHONE], [CARD], [RRN], [ACCOUNT], [IP], [ADDRESS]."""
    from annae.privacy.redact import ALL
    from annae.privacy.redact import redact as do_redact

    if text == "-":
        text = sys.stdin.read()
    chosen = [t.strip() for t in types.split(",") if t.strip()] or ALL
    try:
        result = do_redact(text, types=chosen)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--types") from exc
    if as_json:
        payload = {
            "text": result.text,
            "spans": [{"type": s.type, "start": s.start, "end": s.end} for s in result.spans],
            "counts": result.counts,
        }
        typer.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        typer.echo(result.text)
