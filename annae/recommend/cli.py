"""`annae rec ...`: import interactions, train, evaluate and query recommenders."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from annae.progress import fail, migrated_db

if TYPE_CHECKING:  # pragma: no cover
    from sqlalchemy.orm import Session

app = typer.Typer(help="Product recommendations.", no_args_is_help=True)
console = Console(stderr=True)
out = Console()


def _mapping(preset: str, maps: list[str] | None):
    from annae.recommend.data import PRESETS, ImportFileError

    if preset not in PRESETS:
        raise ImportFileError(f"unknown preset {preset!r}; one of {', '.join(PRESETS)}")
    overrides = {}
    for item in maps or []:
        if "=" not in item:
            raise ImportFileError(f"--map takes FIELD=COLUMN, got {item!r}")
        key, value = item.split("=", 1)
        overrides[key.strip()] = value.strip()
    return PRESETS[preset].with_overrides(overrides)


def _need_pandas(task: str) -> None:
    """Stop with the install line on a serving-only install (no pandas)."""
    from annae.recommend.data import ImportFileError, require_pandas

    try:
        require_pandas(task)
    except ImportFileError as exc:
        fail(str(exc))


@app.command("import")
def import_cmd(
    path: Path = typer.Argument(..., help="CSV (optionally .gz) or Parquet file of interactions."),
    preset: str = typer.Option("default", help="Column mapping: 'default' or 'online-retail'."),
    map_: list[str] = typer.Option(
        None, "--map", help="Override one mapping field: customer=CustID (repeatable)."
    ),
    replace: bool = typer.Option(
        False, help="Re-import a file imported before (its old rows are deleted)."
    ),
    consent_all: bool = typer.Option(
        False,
        "--consent-all",
        help="Mark every customer as consenting to marketing (demo data only).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the import report as JSON."),
) -> None:
    """Import customers, products and interactions (one transaction; a bad file imports nothing)."""
    from annae.recommend.data import ImportFileError, load_interactions
    from annae.recommend.store import import_frame, imported_rows, set_marketing_consent_bulk
    from annae.store.db import session_scope

    try:
        mapping = _mapping(preset, map_)
        with console.status(f"reading {path.name}"):
            frame, report = load_interactions(path, mapping)
        engine = migrated_db()
        previous = imported_rows(engine, report.source)
        if previous and not replace:
            raise ImportFileError(
                f"{report.source} was already imported ({previous} interactions); "
                "use --replace to import it again"
            )
        with Progress(
            TextColumn("writing"),
            BarColumn(),
            TextColumn("{task.completed:,}/{task.total:,}"),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
        ) as bar:
            task = bar.add_task("rows", total=len(frame))
            import_frame(
                engine,
                frame,
                report,
                replace=replace,
                progress=lambda d, _t: bar.update(task, completed=d),
            )
        if consent_all:
            with session_scope(engine) as session:
                set_marketing_consent_bulk(session, True)
    except ImportFileError as exc:
        fail(f"{exc}\nnothing was imported")
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    table = Table(title=f"import report: {report.source}", show_header=False)
    for key, value in report.to_dict().items():
        table.add_row(key.replace("_", " "), str(value))
    out.print(table)


@app.command()
def train(
    engine_kind: str = typer.Option(
        "local", "--engine", help="'local' (hybrid, in process) or 'spark' (MLlib ALS)."
    ),
    spark_master: str = typer.Option(
        "local[2]", "--master", help="Spark master URL for --engine spark."
    ),
) -> None:
    """Train on the stored interactions and make the new model live."""
    _need_pandas("training a recommender")
    from annae.recommend.store import RecommendError
    from annae.recommend.train import train_from_db
    from annae.settings import get_settings

    settings = get_settings()
    try:
        with console.status("training") as status:
            saved = train_from_db(
                migrated_db(),
                settings.models_dir,
                engine_kind=engine_kind,
                spark_master=spark_master,
                progress=lambda msg: status.update(msg),
            )
    except RecommendError as exc:
        fail(str(exc))
    m = saved.manifest
    out.print(
        f"model {saved.version} ({m['kind']}, engine {m['engine']}) is live: {m['n_customers']:,} customers, "
        f"{m['n_products']:,} products, {m['n_interactions']:,} interactions, fit {m['fit_seconds']} s"
    )
    out.print(f"saved in {saved.path}")


@app.command("eval")
def eval_cmd(
    interactions: Path = typer.Option(
        ..., "--interactions", help="Interactions file (read directly; no database)."
    ),
    split_date: str = typer.Option(
        ..., "--split-date", help="Train before this date, test on and after it."
    ),
    k: int = typer.Option(10, "--k", min=1, max=100),
    preset: str = typer.Option("online-retail", help="Column mapping preset."),
    map_: list[str] = typer.Option(
        None, "--map", help="Override one mapping field: customer=CustID."
    ),
    baselines: str = typer.Option(
        "popularity,popularity_7d,repurchase_popularity,item_knn,ease,als,bpr,content",
        help="Comma-separated baselines.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Hybrid vs baselines on a time split: NDCG, recall, precision, coverage, fit time, latency."""
    _need_pandas("evaluating recommenders")
    from annae.recommend.data import ImportFileError
    from annae.recommend.store import RecommendError
    from annae.recommend.train import evaluate_file

    try:
        mapping = _mapping(preset, map_)
        with console.status("evaluating") as status:
            result = evaluate_file(
                interactions,
                mapping,
                split_date,
                k,
                baselines=tuple(b for b in baselines.split(",") if b),
                progress=lambda msg: status.update(msg),
            )
    except (ImportFileError, RecommendError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps(result))
        return
    table = Table(title=f"split {split_date}, {result['n_customers']:,} known customers, k={k}")
    metrics = [(setting, m) for setting in ("novel", "repeat") for m in ("ndcg", "recall")]
    for col in ("model", *(f"{s} {m}@{k}" for s, m in metrics), f"coverage@{k}", "fit s", "p99 ms"):
        table.add_column(col)
    for name, r in [("hybrid", result), *result["baselines"].items()]:
        table.add_row(
            name,
            *(f"{r[s][f'{m}@{k}']:.4f}" for s, m in metrics),
            f"{r['novel'][f'coverage@{k}']:.3f}",
            f"{r['fit_seconds']:.1f}",
            f"{r['latency_ms_p99']:.2f}",
        )
    out.print(table)


@contextmanager
def _session() -> Iterator[Session]:
    """A session on the migrated database; a refused request stops the command with its message."""
    from annae.recommend.store import RecommendError
    from annae.store.db import session_scope

    try:
        with session_scope(migrated_db()) as session:
            yield session
    except RecommendError as exc:
        fail(str(exc))


def _live():
    from annae.recommend.registry import registry_for
    from annae.settings import get_settings

    return registry_for(get_settings().models_dir).load_live()


def _print_items(result: dict, as_json: bool, title: str) -> None:
    if as_json:
        out.print_json(json.dumps(result))
        return
    if result.get("reason"):
        out.print(f"[dim]{result['reason']}[/dim]")
    if not result["items"]:
        out.print("no products")
        return
    table = Table(title=title)
    for col in ("#", "product", "name", "list", "reason"):
        table.add_column(col)
    for n, item in enumerate(result["items"], 1):
        table.add_row(str(n), item["product_id"], item["name"], item["list"], item["reason"])
    out.print(table)


@app.command()
def recommend(
    customer: str = typer.Argument(..., help="Customer id."),
    k: int = typer.Option(10, "--k", min=1, max=100),
    list_: str = typer.Option("mixed", "--list", help="mixed, buy_again or also_like."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Recommendations for one customer, with reasons."""
    from annae.recommend.service import recommend as rec

    with _session() as session:
        result = rec(session, _live(), customer, k, list_)
    _print_items(result, as_json, f"recommendations for {customer} ({list_})")


@app.command()
def similar(
    product: str = typer.Argument(..., help="Product id (e.g. a StockCode)."),
    k: int = typer.Option(10, "--k", min=1, max=100),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Products bought by the customers who bought this one."""
    from annae.recommend.service import similar as sim

    with _session() as session:
        result = sim(session, _live(), product, k)
    _print_items(result, as_json, f"similar to {product} {result['name']}")


@app.command()
def consent(
    customer: str = typer.Argument(..., help="Customer id."),
    granted: bool = typer.Option(True, "--yes/--no", help="Give or withdraw marketing consent."),
) -> None:
    """Set a customer's marketing-consent flag (until the privacy capability manages consent)."""
    from annae.recommend.store import set_marketing_consent

    with _session() as session:
        set_marketing_consent(session, customer, granted)
    out.print(f"customer {customer}: marketing consent {'given' if granted else 'withdrawn'}")


@app.command()
def link(
    entry_id: int = typer.Argument(..., help="Knowledge-base entry id."),
    products: list[str] = typer.Argument(..., help="Product ids to link (replaces earlier links)."),
) -> None:
    """Link a knowledge-base entry to products (shown as cards after the bot answers it)."""
    from annae.recommend.store import link_entry

    with _session() as session:
        ids = link_entry(session, entry_id, products)
    out.print(f"entry {entry_id} linked to {', '.join(ids)}")


@app.command()
def status() -> None:
    """What is stored and which model is live."""
    from annae.recommend.registry import list_models
    from annae.recommend.store import counts

    with _session() as session:
        c = counts(session)
        models = list_models(session)
    out.print(", ".join(f"{v:,} {k.replace('_', ' ')}" for k, v in c.items()))
    for m in models:
        out.print(
            f"{'*' if m.live else ' '} {m.version} {m.kind}/{m.engine} {m.n_customers:,} customers "
            f"{m.n_products:,} products fit {m.fit_seconds:.1f}s {m.created_at:%Y-%m-%d %H:%M}"
        )


def register(top: typer.Typer) -> None:
    """Add the ``rec`` group to the top-level app."""
    top.add_typer(app, name="rec")
