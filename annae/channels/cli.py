"""``annae channel ...``: add, list and disable channels; deliver the outbox once."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from annae.progress import fail, migrated_db

app = typer.Typer(help="KakaoTalk and e-mail channels, and the outbox.", no_args_is_help=True)
console = Console()


@app.command("add")
def add(
    kind: str = typer.Argument(..., help="kakao or email"),
    name: str = typer.Argument(..., help="A name for this channel (letters, digits, . _ -)."),
    bot_id: list[str] = typer.Option(
        [], "--bot-id", help="Kakao: only accept requests from these bot ids (repeatable)."
    ),
) -> None:
    """Create a channel; its secret is printed once, as the last line."""
    from annae.channels.registry import ChannelError, create
    from annae.store.db import session_scope

    config = {"bot_ids": bot_id} if bot_id else {}
    try:
        with session_scope(migrated_db()) as session:
            ch, secret = create(session, kind, name, config)
            cid = ch.id
    except ChannelError as exc:
        fail(str(exc))
    if kind == "kakao":
        typer.echo(f"channel {name} (kakao, id {cid}) created.")
        typer.echo("Skill URL: POST <your host>/channels/kakao/skill")
        typer.echo("Send this secret in the header X-Annae-Secret (shown only now):")
    else:
        typer.echo(f"channel {name} ({kind}, id {cid}) created; its secret (shown only now):")
    typer.echo(secret)


@app.command("list")
def list_() -> None:
    """List channels (secrets are stored hashed)."""
    from annae.channels.registry import list_all
    from annae.store.db import session_scope

    table = Table("id", "kind", "name", "active", "created")
    with session_scope(migrated_db()) as session:
        for ch in list_all(session):
            table.add_row(
                str(ch.id), ch.kind, ch.name, "yes" if ch.active else "no", str(ch.created_at)
            )
    console.print(table)


@app.command("disable")
def disable(name: str) -> None:
    """Stop accepting requests for a channel (within a few seconds)."""
    from annae.channels.registry import ChannelError, set_active
    from annae.store.db import session_scope

    try:
        with session_scope(migrated_db()) as session:
            set_active(session, name, False)
    except ChannelError as exc:
        fail(str(exc))
    typer.echo(f"channel {name} disabled")


@app.command("deliver")
def deliver() -> None:
    """Deliver what is due in the outbox now, once (``annae serve`` does this continuously)."""
    from annae.channels.outbox import Deliverer

    n = Deliverer(migrated_db()).drain()
    typer.echo(f"{n} delivery attempts")


def register(top: typer.Typer) -> None:
    """Add the ``channel`` group to the top-level app."""
    top.add_typer(app, name="channel")
