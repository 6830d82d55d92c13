"""`annae kb ...`: import, export and list the knowledge base."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from sqlalchemy.exc import SQLAlchemyError

from annae.kb import entries
from annae.kb.demo import demo_path
from annae.kb.exporters import KBExportError, export_kb
from annae.kb.importers import FORMATS, KBImportError, RevertError, import_kb
from annae.progress import migrated_db
from annae.store.db import session_scope

MAX_DIFF = 20  # entries listed per kind of change

app = typer.Typer(help="Import, export and list the knowledge base.", no_args_is_help=True)

FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format", "-f", help=f"One of {', '.join(FORMATS)} (default: from the file name)."
    ),
]


def _show_problems(error: KBImportError) -> None:
    console = Console(stderr=True)
    n = len(error.problems)
    plural = "s" if n != 1 else ""
    console.print(
        f"[bold red]Cannot import {escape(error.path.name)}: {n} problem{plural}, nothing was written[/]"
    )
    table = Table()
    table.add_column("where", style="cyan", no_wrap=True)
    table.add_column("problem", style="red")
    for where, reason in error.problems[:50]:
        table.add_row(Text(where or error.path.name), Text(reason))
    if len(error.problems) > 50:
        table.add_row("...", f"and {len(error.problems) - 50} more")
    console.print(table)


def _import(
    path: Path,
    *,
    answers: Path | None,
    fmt: str | None,
    replace: bool,
    author: str,
    dry_run: bool = False,
    overwrite_newer: bool = False,
) -> None:
    try:
        r = import_kb(
            migrated_db(),
            path,
            answers=answers,
            fmt=fmt,
            replace=replace,
            author=author,
            dry_run=dry_run,
            overwrite_newer=overwrite_newer,
        )
    except KBImportError as e:
        if isinstance(e, RevertError):
            Console(stderr=True).print(
                f"[yellow]warning: {escape(path.name)} is older than changes it would overwrite; "
                "nothing was written[/]"
            )
        _show_problems(e)
        raise typer.Exit(1) from None
    except (entries.KBError, SQLAlchemyError) as e:
        Console(stderr=True).print(
            f"[red]Import of {escape(path.name)} failed, nothing was written:[/red] {escape(str(e))}"
        )
        raise typer.Exit(1) from None
    title = (
        f"Checked {path.name} (dry run: nothing was written)"
        if dry_run
        else f"Imported {path.name}"
    )
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("entries added", str(len(r.added)))
    table.add_row("entries changed", str(len(r.changed)))
    table.add_row("entries unchanged", str(len(r.unchanged)))
    if replace:
        table.add_row("entries removed", str(len(r.removed)))
    table.add_row(
        "example questions", f"{r.examples_after:,} ({r.examples_after - r.examples_before:+,})"
    )
    table.add_row("out-of-scope examples", f"{r.oos_after:,} ({r.oos_after - r.oos_before:+,})")
    languages = ", ".join(f"{lang}: {n}" for lang, n in sorted(r.languages.items()))
    table.add_row("languages in file", languages or "-")
    table.add_row("KB revision", f"{r.revision} (would be)" if dry_run else str(r.revision))
    console = Console()
    console.print(f"[bold]{escape(title)}[/]")
    console.print(table)
    for key in r.added[:MAX_DIFF]:
        console.print(f"  [green]+ {escape(key)}[/]")
    for key, fields in list(r.changed.items())[:MAX_DIFF]:
        console.print(f"  [yellow]~ {escape(key)}[/]: {escape(', '.join(fields))}")
    for key in r.removed[:MAX_DIFF]:
        console.print(f"  [red]- {escape(key)}[/]")
    more = sum(max(0, len(keys) - MAX_DIFF) for keys in (r.added, r.changed, r.removed))
    if more:
        console.print(f"  … and {more} more")
    if r.reverted:
        console.print(
            f"[yellow]overwrote newer changes (--overwrite-newer): {escape(', '.join(r.reverted))}[/]"
        )


@app.command("import")
def import_(
    file: Annotated[
        Path | None, typer.Argument(help="CSV, JSON, XLSX or Rasa file (or Rasa folder).")
    ] = None,
    answers: Annotated[
        Path | None,
        typer.Option("--answers", "-a", help="Answers for text,label CSVs; domain.yml for Rasa."),
    ] = None,
    fmt: FormatOpt = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Delete entries that are not in the file.")
    ] = False,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load the bundled Annae Gift Shop demo KB.")
    ] = False,
    author: Annotated[str, typer.Option(help="Recorded in the KB revision.")] = "import",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and count the changes, write nothing.")
    ] = False,
    overwrite_newer: Annotated[
        bool,
        typer.Option(
            "--overwrite-newer",
            help="Import even where the knowledge base was changed after the file was exported.",
        ),
    ] = False,
) -> None:
    """Validate a file, then write it to the knowledge base in one transaction.

    Prints what changes (entries added, changed with their fields, removed, unchanged); refuses
    a file older than the changes it would overwrite."""
    if demo == (file is not None):
        Console(stderr=True).print("[red]Give a FILE or --demo (not both).[/red]")
        raise typer.Exit(2)
    _import(
        file or demo_path(),
        answers=answers,
        fmt=fmt,
        replace=replace,
        author=author,
        dry_run=dry_run,
        overwrite_newer=overwrite_newer,
    )


@app.command()
def demo(
    replace: Annotated[
        bool, typer.Option("--replace", help="Delete entries that are not in the demo.")
    ] = False,
) -> None:
    """Load the bundled demo knowledge base (Annae Gift Shop, English and Korean)."""
    _import(demo_path(), answers=None, fmt="json", replace=replace, author="demo")


@app.command()
def export(
    file: Annotated[Path, typer.Argument(help="Where to write (for rasa: a folder or nlu.yml).")],
    fmt: FormatOpt = None,
    active_only: Annotated[
        bool, typer.Option("--active-only", help="Leave out inactive entries.")
    ] = False,
) -> None:
    """Write the knowledge base to a file that `annae kb import` reads back."""
    with session_scope(migrated_db()) as session:
        data = entries.dump_kb(session, active_only=active_only)
    try:
        written = export_kb(data, file, fmt)
    except (KBExportError, OSError) as e:
        Console(stderr=True).print(f"[red]Cannot export:[/red] {escape(str(e))}")
        raise typer.Exit(1) from None
    n_ex = sum(len(e.examples) for e in data.entries)
    files = ", ".join(str(p) for p in written)
    Console().print(
        Text(
            f"Wrote {len(data.entries)} entries, {n_ex} example questions, "
            f"{len(data.oos_examples)} out-of-scope examples to {files}"
        )
    )


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    language: Annotated[
        str | None, typer.Option("--language", "-l", help="Only entries in this language.")
    ] = None,
) -> None:
    """Show the knowledge-base entries."""
    with session_scope(migrated_db()) as session:
        rows: list[dict[str, Any]] = [
            {
                "id": e.id,
                "key": e.key,
                "language": e.language,
                "question": e.question,
                "answer": e.answer,
                "tags": list(e.tags or []),
                "examples": len(e.examples),
                "active": e.active,
            }
            for e in entries.list_entries(session)
            if language is None or e.language == language
        ]
        revision = entries.current_revision(session)
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    scope = f" ({language})" if language else ""
    title = f"Knowledge base{scope}: {len(rows)} entries, revision {revision}"
    table = Table(title=title, title_justify="left")
    for name, kw in (("id", {"justify": "right"}), ("key", {}), ("lang", {}), ("question", {"ratio": 1}),
                     ("examples", {"justify": "right"}), ("active", {})):  # fmt: skip
        table.add_column(name, min_width=len(name), **kw)  # names are never cut
    for r in rows:
        table.add_row(
            str(r["id"]),
            Text(r["key"]),
            r["language"],
            Text(r["question"]),
            str(r["examples"]),
            "yes" if r["active"] else "no",
        )
    Console().print(table)


def register(top: typer.Typer) -> None:
    """Add the ``kb`` group to the top-level app."""
    top.add_typer(app, name="kb")
