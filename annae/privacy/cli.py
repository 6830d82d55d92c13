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


def _engine():
    """The configured database, migrated."""
    from annae.settings import get_settings
    from annae.store.db import get_engine, init_db

    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    return init_db(get_engine(settings.database))


@app.command()
def consent(
    customer: str = typer.Argument(..., help="The customer's external id."),
    grant: list[str] = typer.Option([], "--grant", "-g", help="Purpose to grant (repeatable)."),
    withdraw: list[str] = typer.Option(
        [], "--withdraw", "-w", help="Purpose to withdraw (repeatable)."
    ),
    text_version: str = typer.Option(
        "", "--text-version", help="Version of the notice agreed to (needed with --grant)."
    ),
    source: str = typer.Option("cli", "--source", help="Where the consent was given."),
    actor: str = typer.Option("cli", "--actor", help="Who records it (for the audit log)."),
    as_json: bool = typer.Option(False, "--json", help="Print status and history as JSON."),
) -> None:
    """Grant or withdraw CUSTOMER's consent to service/training/marketing, then show it."""
    from rich.console import Console
    from rich.table import Table

    from annae.privacy import audit
    from annae.privacy import consent as consents
    from annae.store.db import session_scope

    if grant and not text_version:
        raise typer.BadParameter("--grant needs --text-version (the notice the customer agreed to)")
    if set(grant) & set(withdraw):
        raise typer.BadParameter("a purpose cannot be granted and withdrawn at once")
    try:
        with session_scope(_engine()) as session:
            for purpose in grant:
                ev = consents.grant(
                    session, customer, purpose, text_version=text_version, source=source
                )
                audit.record(
                    session,
                    actor,
                    "consent.grant",
                    customer,
                    {"purpose": ev.purpose, "text_version": ev.text_version, "source": source},
                )
            for purpose in withdraw:
                ev = consents.withdraw(
                    session, customer, purpose, source=source, text_version=text_version or None
                )
                audit.record(
                    session,
                    actor,
                    "consent.withdraw",
                    customer,
                    {"purpose": ev.purpose, "source": source},
                )
            now = consents.status(session, customer)
            events = [consents.to_dict(e) for e in consents.history(session, customer)]
    except (consents.ConsentError, audit.AuditError) as exc:
        Console(stderr=True).print(f"[red]Nothing was recorded:[/red] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(
            json.dumps(
                {"customer_id": customer, "consent": now, "history": events},
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    console = Console()
    console.print(
        f"[bold]{customer}[/]: "
        + ", ".join(f"{p} {'[green]yes[/]' if ok else '[red]no[/]'}" for p, ok in now.items())
    )
    if events:
        table = Table(title="history", title_justify="left")
        for col in ("at", "purpose", "granted", "source", "text version"):
            table.add_column(col)
        for e in events:
            table.add_row(
                e["at"][:19],
                e["purpose"],
                "grant" if e["granted"] else "withdraw",
                e["source"],
                e["text_version"] or "",
            )
        console.print(table)


@app.command("audit")
def audit_log(
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many events, newest first."),
    action: str | None = typer.Option(
        None, "--action", help="Only this action (a trailing '.' matches a prefix)."
    ),
    actor: str | None = typer.Option(None, "--actor", help="Only this actor."),
    target: str | None = typer.Option(None, "--target", help="Only this target."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """Show the append-only audit log of admin actions."""
    from rich.console import Console
    from rich.table import Table

    from annae.privacy import audit
    from annae.store.db import session_scope

    with session_scope(_engine()) as session:
        events = [
            audit.to_dict(e)
            for e in audit.query(session, actor=actor, action=action, target=target, limit=limit)
        ]
    if as_json:
        for e in events:
            typer.echo(json.dumps(e, ensure_ascii=False))
        return
    table = Table(title=f"audit log ({len(events)} newest)", title_justify="left")
    for col in ("id", "at", "actor", "action", "target", "details"):
        table.add_column(col, overflow="fold", no_wrap=col in ("id", "at"))
    for e in events:
        table.add_row(
            str(e["id"]),
            e["at"][:19].replace("T", " "),
            e["actor"],
            e["action"],
            e["target"],
            json.dumps(e["details"], ensure_ascii=False),
        )
    Console().print(table)
