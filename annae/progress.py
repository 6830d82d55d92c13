"""The command line's kit: the database every command opens, one Rich progress bar for every long
step, its tables, its one way to stop with an error."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NoReturn

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

Update = Callable[[str, int, int], None]


@contextmanager
def progress_bar(console: Console | None = None, *, transient: bool = False) -> Iterator[Update]:
    """A progress bar on stderr; yields ``update(stage, done, total)`` (a bar per stage)."""
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=transient,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def table(*headers: str, **options) -> Table:
    """A Rich table whose column names are never cut: each column is at least as wide as its
    name (long cell values wrap instead)."""
    out = Table(**options)
    for name in headers:
        out.add_column(name, min_width=len(name), overflow="fold")
    return out


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop the command: ``error: <message>`` on stderr, exit status ``code``. The message is
    plain text, never Rich markup, so an install hint such as ``pip install 'annae[train]'`` or a
    file name with brackets is printed as written; long lines are not cut."""
    import typer

    Console(stderr=True, soft_wrap=True).print(Text("error: ", style="bold red") + Text(message))
    raise typer.Exit(code)


def migrated_db():
    """The configured database (``ANNAE_DATABASE_URL``, or the SQLite file in ``ANNAE_HOME``, whose
    folder is created), migrated to the current schema."""
    from annae.store.db import get_engine, init_db

    return init_db(get_engine())


@contextmanager
def db_session(*errors: type[Exception], prefix: str = "", code: int = 1) -> Iterator[Session]:
    """A transaction on :func:`migrated_db`; one of ``errors`` raised in it rolls it back and
    stops the command (:func:`fail` with ``prefix`` and the error's message, status ``code``)."""
    from annae.store.db import session_scope

    try:
        with session_scope(migrated_db()) as session:
            yield session
    except errors as exc:
        fail(f"{prefix}{exc}", code)
