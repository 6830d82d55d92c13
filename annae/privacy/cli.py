"""`annae privacy ...`: redact, consent, audit, export, erase, retain, explain."""

from __future__ import annotations

import json
import sys

import typer

from annae.progress import db_session, fail, migrated_db

app = typer.Typer(
    help="Privacy: redaction, consent, audit log, export, erasure, retention.", no_args_is_help=True
)


@app.callback()
def _privacy() -> None:
    """Privacy: PII redaction, consent, audit log, export, erasure, retention, explanations."""


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

    if grant and not text_version:
        raise typer.BadParameter("--grant needs --text-version (the notice the customer agreed to)")
    if set(grant) & set(withdraw):
        raise typer.BadParameter("a purpose cannot be granted and withdrawn at once")
    ref = audit.customer_ref(customer)  # the audit log names customers by pseudonym only
    errors = (consents.ConsentError, audit.AuditError)
    with db_session(*errors, prefix="nothing was recorded: ") as session:
        for purpose in grant:
            ev = consents.grant(
                session, customer, purpose, text_version=text_version, source=source
            )
            details = {"purpose": ev.purpose, "text_version": ev.text_version, "source": source}
            audit.record(session, actor, "consent.grant", ref, details)
        for purpose in withdraw:
            ev = consents.withdraw(
                session, customer, purpose, source=source, text_version=text_version or None
            )
            details = {"purpose": ev.purpose, "source": source}
            audit.record(session, actor, "consent.withdraw", ref, details)
        now = consents.status(session, customer)
        events = [consents.to_dict(e) for e in consents.history(session, customer)]
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

    with db_session() as session:
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


@app.command()
def export(
    customer: str = typer.Option(..., "--customer", "-c", help="The customer's external id."),
    out: str = typer.Option("-", "--out", "-o", help="Write the JSON here ('-': standard output)."),
    actor: str = typer.Option("cli", "--actor", help="Who asks (for the audit log)."),
) -> None:
    """Write everything held about a customer as JSON (conversations, consents, interactions, models)."""
    from pathlib import Path

    from annae.privacy import audit, rights

    with db_session(rights.RightsError) as session:
        data = rights.export_customer(session, customer)
        details = {"found": data["found"], "conversations": len(data["conversations"])}
        audit.record(session, actor, "privacy.export", audit.customer_ref(customer), details)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if out == "-":
        typer.echo(text)
    else:
        Path(out).write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {out} ({'data found' if data['found'] else 'nothing held'})")


@app.command()
def erase(
    customer: str = typer.Option(..., "--customer", "-c", help="The customer's external id."),
    actor: str = typer.Option("cli", "--actor", help="Who asks (for the audit log)."),
    retrain: bool = typer.Option(
        True, "--retrain/--no-retrain", help="Retrain affected live models now."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a customer's conversations, interactions, consents and derived examples; retrain."""
    from rich.console import Console

    from annae.privacy import rights

    if not yes:
        typer.confirm(
            f"Erase everything held about {customer!r}? This cannot be undone", abort=True
        )
    console = Console()
    try:
        with console.status("erasing") as status:
            report = rights.erase_customer(
                migrated_db(),
                customer,
                actor=actor,
                retrain=retrain,
                progress=lambda m: status.update(m),
            )
    except rights.AlreadyErased as exc:
        fail(str(exc), 3)
    except rights.UnknownCustomer as exc:
        fail(str(exc), 2)
    except rights.RightsError as exc:
        fail(str(exc))
    r = report
    console.print(
        f"erased {r.customer_ref}: {r.conversations} conversations ({r.messages} messages), "
        f"{r.consents} consent events, {r.interactions} interactions, {r.examples} derived examples"
    )
    if r.stale_models or r.stale_recommenders:
        console.print(
            f"stale models: {', '.join(r.stale_models + ['recommend/' + v for v in r.stale_recommenders])}"
        )
    if r.retrained or r.retrained_recommender:
        console.print(
            f"retrained: answer engine {r.retrained or '-'}, recommender {r.retrained_recommender or '-'}"
        )
    if r.purged:
        console.print(f"deleted model files: {', '.join(r.purged)}")
    if r.pending:
        console.print(f"[yellow]still to retrain: {', '.join(r.pending)}[/yellow]")


@app.command()
def retain(
    days: int = typer.Option(
        ..., "--days", "-d", min=1, help="Delete transcripts idle for longer than this."
    ),
    actor: str = typer.Option("retention", "--actor", help="Who runs it (for the audit log)."),
) -> None:
    """Delete old transcripts (schedule it daily, e.g. from cron); keeps anonymous counts."""
    from annae.privacy import rights

    result = rights.retain(migrated_db(), days=days, actor=actor)
    typer.echo(
        f"deleted {result['conversations']} conversations ({result['messages']} messages) "
        f"idle since before {result['cutoff'][:19]}"
    )


@app.command()
def explain(
    message_id: int = typer.Argument(..., help="A customer message id or a bot reply id."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole explanation as JSON."),
) -> None:
    """Explain how the bot decided on a message: entry, confidence, threshold, model."""
    from annae.privacy import rights

    with db_session(rights.RightsError, code=2) as session:
        info = rights.explain(session, message_id)
    typer.echo(json.dumps(info, ensure_ascii=False, indent=2) if as_json else info["summary"])


def register(top: typer.Typer) -> None:
    """Add the ``privacy`` group to the top-level app."""
    top.add_typer(app, name="privacy")
