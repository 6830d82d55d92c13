"""`annae demo` / `make demo`: a working product from a fresh clone."""

from __future__ import annotations

import secrets

from rich.console import Console

from annae.settings import get_settings

DEMO_USERS = (("admin", "admin"), ("agent", "agent"))


def prepare_demo(out: Console) -> None:
    """Load the demo KB (if the KB is empty), train (if no model is live) and create accounts."""
    from annae.kb import entries
    from annae.kb.demo import demo_path
    from annae.kb.importers import import_kb
    from annae.kb.training import train_from_db
    from annae.nlu.registry import ModelRegistry
    from annae.progress import progress_bar
    from annae.store.db import get_engine, init_db, session_scope

    settings = get_settings()
    engine = init_db(get_engine())
    out.print(f"database: {settings.database}")
    with session_scope(engine) as session:
        empty = not entries.list_entries(session)
    if empty:
        result = import_kb(engine, demo_path(), author="demo")
        out.print(
            f"loaded the demo knowledge base: {len(result.added)} entries "
            f"({', '.join(f'{n} {lang}' for lang, n in sorted(result.languages.items()))})"
        )
    registry = ModelRegistry(settings.models_dir)
    if registry.live_version() is None:
        with progress_bar() as update:
            info = train_from_db(registry, engine, author="demo", progress=update)
        out.print(f"trained model {info.version} (threshold {info.manifest['threshold']:.3f})")
    _create_users(engine, out)


def _create_users(engine, out: Console) -> None:
    from annae.agents import users
    from annae.store.db import session_scope

    with session_scope(engine) as session:
        existing = {u.username for u in users.list_users(session)}
    for name, role in DEMO_USERS:
        if name in existing:
            continue
        password = secrets.token_urlsafe(12)
        users.create_user(engine, name, role, password)
        out.print(
            f"created the {role} account [bold]{name}[/] with password [bold]{password}[/] "
            "(shown once; change it with `annae user passwd`)"
        )
