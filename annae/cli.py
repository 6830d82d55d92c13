"""The ``annae`` command: everything the web UI does, from a terminal."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from annae.channels import cli as channel_cli
from annae.kb import cli as kb_cli
from annae.learning import cli as learning_cli
from annae.ops import cli as ops_cli
from annae.privacy import cli as privacy_cli
from annae.progress import fail, migrated_db
from annae.progress import progress_bar as _progress_bar
from annae.progress import table as cli_table
from annae.recommend import cli as rec_cli
from annae.settings import get_settings
from annae.web import cli as web_cli

app = typer.Typer(
    help="Annae (안내): a self-hosted contact-center assistant.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
for package_cli in (kb_cli, rec_cli, privacy_cli, web_cli, channel_cli, learning_cli, ops_cli):
    package_cli.register(app)  # each package adds its commands and groups, one way

out = Console()
err = Console(stderr=True, soft_wrap=True)


def progress_bar():
    """The shared progress bar (``annae.progress``) on this command's stderr console."""
    return _progress_bar(err)


def registry():
    from annae.nlu.registry import ModelRegistry

    return ModelRegistry(get_settings().models_dir)


@app.command()
def init() -> None:
    """Create ANNAE_HOME and the database schema."""
    settings = get_settings()
    migrated_db()
    out.print(f"database ready: {settings.database}")


@app.command()
def train(
    no_live: bool = typer.Option(False, "--no-live", help="Save the model without making it live."),
) -> None:
    """Train a model on the knowledge base and save it as a new version."""
    from annae.kb.training import train_from_db
    from annae.learning import oos_share
    from annae.nlu.classifier import TrainingError
    from annae.store.db import session_scope

    engine = migrated_db()
    with session_scope(engine) as session:
        share = oos_share.resolve(get_settings(), session)
    try:
        with progress_bar() as update:
            info = train_from_db(
                registry(),
                engine,
                author="cli",
                progress=update,
                make_live=not no_live,
                oos_share=share.pair(),
            )
    except TrainingError as exc:
        hint = (
            " Import a knowledge base first (annae kb import FILE, or annae kb import --demo)."
            if "got 0" in str(exc)
            else ""
        )
        fail(f"cannot train: {exc}.{hint}")
    m = info.manifest
    metrics = m["metrics"]
    out.print(
        f"[bold green]model {info.version}[/] saved to {info.path}" + ("" if no_live else " (live)")
    )
    out.print(
        f"KB revision {m['kb_revision']}, {m['data']['n_examples']} examples, {metrics['n_entries']} entries; "
        f"cross-validated accuracy {metrics['cv_accuracy']:.3f}; answer threshold {m['threshold']:.3f} "
        f"(expected precision {metrics['expected_precision']:.3f} at {metrics['oos_share_assumed']:.0%} "
        f"out-of-scope traffic{_share_note(share)}); fit {metrics['total_fit_seconds']:.1f} s"
    )
    print_operating_points(m)


def _share_note(share) -> str:
    """Where the assumed out-of-scope share came from (annae.learning.oos_share)."""
    if share.source == "traffic":
        return f", from {share.n_labelled} labelled questions"
    if share.source == "setting":
        return ", ANNAE_OOS_SHARE"
    return f"; the default: {share.reason}" if share.n_labelled else ""


def print_operating_points(manifest: dict) -> None:
    """The operating curve of a model (its manifest), and what it cannot promise."""
    from annae.learning.calibrate import marked_points

    metrics = manifest.get("metrics", {})
    points = marked_points(manifest)
    if points:
        table = Table(
            "target precision",
            "answer threshold",
            "expected precision",
            "answered (all traffic)",
            "in-scope answered right",
            title="operating points (estimated from training data, "
            f"{metrics.get('oos_share_assumed', 0):.0%} out-of-scope traffic)",
        )
        for p in points:
            table.add_row(
                f"{p['target']:.2f}" + (" (live)" if p["live"] else ""),
                f"{p['threshold']:.3f}" if p["reached_target"] else "not reachable",
                f"{p['expected_precision']:.3f}" if p["reached_target"] else "–",
                f"{p['expected_coverage']:.1%}",
                f"{p['expected_containment']:.1%}",
            )
        out.print(table)
    clarify = manifest.get("clarify_threshold")
    if clarify is not None:
        out.print(
            f"clarify threshold {clarify:.3f} (right entry among the options "
            f"{metrics.get('clarify_expected_precision', 0):.0%} of the time, target "
            f"{metrics.get('clarify_target', 0):.0%}); out-of-scope threshold "
            f"{manifest.get('oos_threshold') or 0:.3f}"
        )
    fast = manifest.get("fast_path")
    if fast:
        bar = max(fast["threshold"], manifest.get("threshold") or 0)
        out.print(
            f"Korean fast path: lexical features alone ({fast['model']}, cross-validated accuracy "
            f"{fast['cv_accuracy']:.3f}) "
            + (
                f"answer a Korean question without e5 from confidence {bar:.3f}"
                if bar <= 1
                else "never reach their threshold on this data: e5 reads every Korean question"
            )
        )
    for limit in metrics.get("limits", []):
        out.print(f"[yellow]cannot promise:[/] {limit}")


@app.command("operating-point")
def operating_point(
    target: float = typer.Argument(
        None, help="Target precision to switch to (one of the live model's points, e.g. 0.90)."
    ),
    from_traffic: bool = typer.Option(
        False,
        "--from-traffic",
        help="Estimate precision on labelled traffic (agents' labels, customers' ratings) "
        "and show the threshold it supports.",
    ),
    apply: bool = typer.Option(
        False, "--apply", help="With --from-traffic: make that threshold live."
    ),
) -> None:
    """Show the live model's operating curve, or switch it to another target precision.

    The switch is a new model version with other thresholds (no retraining), audit-logged;
    `annae rollback VERSION` restores the previous one."""
    from annae.learning.calibrate import from_traffic as traffic_estimate
    from annae.learning.calibrate import set_operating_point
    from annae.learning.retrain import GateError

    reg = registry()
    live = reg.live_version()
    if live is None:
        fail("no trained model yet: run `annae train` first")
    if from_traffic:
        est, change = traffic_estimate(reg, migrated_db(), target=target, author="cli", apply=apply)
        metrics = reg.manifest(live).get("metrics", {})
        observed = est.observed_precision_live
        out.print(
            f"model {live}: {est.n_labelled} labelled questions ({est.n_rated_answers} rated "
            f"answers, {est.n_labelled_handoffs} labelled hand-offs); precision at the live "
            f"threshold: expected {metrics.get('expected_precision', 0):.3f}, observed "
            + ("–" if observed is None else f"{observed:.3f}")
        )
        if est.proposed_threshold is None:
            out.print(f"[yellow]no change:[/] {est.reason}")
            raise typer.Exit(2 if apply else 0)
        out.print(
            f"labelled traffic supports answer threshold {est.proposed_threshold:.3f} "
            f"(precision {est.proposed_precision:.3f} on that traffic)"
            + ("" if apply else "; --apply makes it live")
        )
        if change is not None:
            out.print(
                f"[bold green]model {change.version}[/] live (was {change.previous}); "
                f"`annae rollback {change.previous}` restores it"
            )
        return
    if target is None:
        print_operating_points(reg.manifest(live))
        return
    try:
        change = set_operating_point(reg, target, author="cli", db_engine=migrated_db())
    except GateError as exc:
        fail(str(exc))
    out.print(
        f"[bold green]model {change.version}[/] live: target {change.target:.2f}, answer threshold "
        f"{change.threshold:.3f} (expected precision {change.expected_precision:.3f}, answers "
        f"{change.expected_coverage:.1%} of traffic); was {change.previous} — "
        f"`annae rollback {change.previous}` restores it"
    )


def _live_engine():
    # no warm-up: the first question does the same work (one inference fewer per `annae ask`)
    engine = registry().load_live(warm=False)
    if engine is None:
        fail("no trained model yet: run `annae train` first")
    return engine


@app.command()
def ask(text: str = typer.Argument(..., help="The customer's question.")) -> None:
    """Print the decision for one question as JSON."""
    decision = _live_engine().decide(text)
    out.print_json(json.dumps(decision.to_dict(), ensure_ascii=False))


@app.command()
def chat() -> None:
    """A terminal chat with the live model (Ctrl-D or 'quit' to leave)."""
    engine = _live_engine()
    out.print(f"[dim]model {engine.version} — ask a question (quit to leave)[/]")
    while True:
        try:
            text = out.input("[bold cyan]you>[/] ")
        except (EOFError, KeyboardInterrupt):
            out.print()
            break
        if text.strip().lower() in {"quit", "exit", "q"}:
            break
        d = engine.decide(text)
        if d.type == "answer":
            out.print(f"[bold green]bot>[/] {d.answer} [dim]({d.entry_key}, {d.confidence:.2f})[/]")
        elif d.type == "clarify":
            out.print("[bold yellow]bot>[/] Did you mean:")
            for i, c in enumerate(d.candidates[:3], 1):
                out.print(f"   {i}. {c.question} [dim]({c.confidence:.2f})[/]")
        else:
            out.print(
                f"[bold red]bot>[/] Let me connect you to a person. [dim](hand-off: {d.reason})[/]"
            )


def _read_labelled(path: Path, text_col: str, label_col: str) -> tuple[list[str], list[str]]:
    if not path.exists():
        fail(f"{path}: no such file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            cols = reader.fieldnames or []
            missing = [c for c in (text_col, label_col) if c not in cols]
            if missing:
                fail(
                    f"{path}: missing column(s) {', '.join(missing)}; the file has {', '.join(cols) or 'no header'}"
                )
            texts, labels = [], []
            for line, row in enumerate(reader, start=2):
                text, label = (row.get(text_col) or "").strip(), (row.get(label_col) or "").strip()
                if not text or not label:
                    fail(f"{path}:{line}: empty {'text' if not text else 'label'}")
                texts.append(text)
                labels.append(label)
    except UnicodeDecodeError as exc:
        fail(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})")
    if not texts:
        fail(f"{path}: no rows")
    return texts, labels


def _read_answers(path: Path, train_labels: set[str]) -> dict[str, list[str]]:
    """``label,question,answer`` rows as label -> [question, answer] (checked before training)."""
    if not path.exists():
        fail(f"{path}: no such file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        fail(f"{path}: not a UTF-8 CSV file ({exc})")
    need = {"label", "question", "answer"}
    if not rows or not need <= set(rows[0]):
        fail(f"{path}: needs the columns label,question,answer")
    out: dict[str, list[str]] = {}
    for i, row in enumerate(rows, start=2):
        label = (row.get("label") or "").strip()
        if not label:
            fail(f"{path}: line {i} has no label")
        texts = [(row.get(k) or "").strip() for k in ("question", "answer")]
        out.setdefault(label, []).extend(t for t in texts if t)
    unknown = sorted(set(out) - train_labels)
    if unknown:
        err.print(
            f"[yellow]note:[/] {len(unknown)} answer label(s) not in the training file are "
            "ignored: " + ", ".join(unknown[:10])
        )
    return out


@app.command("eval")
def eval_(
    train_file: Path = typer.Option(..., "--train", help="Training CSV."),
    test_file: Path = typer.Option(..., "--test", help="Test CSV."),
    text_col: str = typer.Option("text", "--text-col"),
    label_col: str = typer.Option("label", "--label-col"),
    oos_label: str = typer.Option("oos", "--oos-label"),
    target_precision: float = typer.Option(None, "--target-precision", min=0.01, max=0.999),
    oos_share: float = typer.Option(None, "--oos-share", min=0.0, max=0.99),
    clarify_precision: float = typer.Option(
        None,
        "--clarify-precision",
        min=0.01,
        max=0.999,
        help="How often the right entry must be among the options offered when clarifying.",
    ),
    encoder: str = typer.Option(
        None, "--encoder", help="'bundled', 'none' or a sentence-transformers model."
    ),
    label_names: bool = typer.Option(
        True, "--label-names/--no-label-names", help="Use each label's name as its entry title."
    ),
    answers_file: Path = typer.Option(
        None,
        "--answers",
        help="CSV with label,question,answer rows: each entry's canonical question and answer, "
        "used as evidence for it (as a KB entry's are).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object last."),
) -> None:
    """Train a fresh model on TRAIN only (nothing saved) and score every TEST row."""
    from annae.nlu.classifier import TrainingError
    from annae.nlu.evaluate import evaluate
    from annae.nlu.features import FeatureConfig

    settings = get_settings()
    tr_x, tr_y = _read_labelled(train_file, text_col, label_col)
    te_x, te_y = _read_labelled(test_file, text_col, label_col)
    answers = _read_answers(answers_file, set(tr_y)) if answers_file else None
    try:
        with progress_bar() as update:
            result = evaluate(
                tr_x,
                tr_y,
                te_x,
                te_y,
                oos_label=oos_label,
                target_precision=target_precision or settings.target_precision,
                oos_share=settings.oos_share if oos_share is None else oos_share,
                clarify_precision=clarify_precision or settings.clarify_precision,
                features=FeatureConfig(encoder=encoder or settings.encoder),
                progress=update,
                label_names=label_names,
                answers=answers,
            )
    except TrainingError as exc:
        fail(f"cannot train on {train_file}: {exc}")
    if result["unseen_test_labels"]:
        err.print(
            f"[yellow]note:[/] {len(result['unseen_test_labels'])} test label(s) never seen in training "
            "count as out of scope: " + ", ".join(result["unseen_test_labels"][:10])
        )
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    table = Table("metric", "value", title=f"annae eval: {train_file.name} → {test_file.name}")
    for key, value in result.items():
        if key != "unseen_test_labels":
            table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    out.print(table)


@app.command()
def models() -> None:
    """List saved model versions with their metrics."""
    reg = registry()
    live = reg.live_version()
    table = cli_table(
        "version", "live", "created", "KB rev", "examples", "cv acc", "threshold", "exp. precision"
    )
    for version in reg.versions():
        m = reg.manifest(version)
        met = m.get("metrics", {})
        table.add_row(
            version,
            "●" if version == live else "",
            m.get("created_at", ""),
            str(m.get("kb_revision", "")),
            str(m.get("data", {}).get("n_examples", "")),
            f"{met.get('cv_accuracy', 0):.3f}",
            f"{m.get('threshold', 0):.3f}",
            f"{met.get('expected_precision', 0):.3f}",
        )
    out.print(table)


@app.command()
def demo(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    terminal: bool = typer.Option(
        False, "--terminal", help="Chat in the terminal instead of serving."
    ),
) -> None:
    """Load the demo gift-shop knowledge base, train, create accounts and serve it."""
    from annae.demo import prepare_demo

    prepare_demo(out)
    if terminal:
        chat()
    else:
        out.print(
            f"[bold]Annae is on http://{host}:{port}/chat[/] (agent console: http://{host}:{port}/console)"
        )
        web_cli.serve_forever(host, port, 1)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
