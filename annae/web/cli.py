"""`annae serve` and `annae user ...`."""

from __future__ import annotations

import os
import sys
import tempfile

import typer
from rich.console import Console

from annae.progress import db_session, fail, migrated_db
from annae.progress import table as cli_table
from annae.settings import get_settings

user_app = typer.Typer(
    help="Agent and admin accounts, and API keys for channels.", no_args_is_help=True
)
apikey_app = typer.Typer(
    help="API keys for server-to-server channels (X-API-Key).", no_args_is_help=True
)
user_app.add_typer(apikey_app, name="apikey")
widget_app = typer.Typer(
    help="The widget's signed customer identity (the shop signs customer ids with this secret).",
    no_args_is_help=True,
)
console = Console()


def serve_forever(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
    access_log: bool = True,
) -> None:
    """Migrate the database, then run uvicorn with ``workers`` processes until interrupted
    (see :mod:`annae.web.serving` for its logging, limits and worker checks)."""
    from annae.web import serving

    migrated_db()
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # one scrape of /metrics sums every worker (prometheus-client multiprocess mode)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="annae-metrics-")
    serving.run(
        "annae.web.app:create_app",
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
    )


def register(app: typer.Typer) -> None:
    """Add the service's commands (serve) and the ``user`` and ``widget`` groups to the
    top-level app."""
    app.add_typer(user_app, name="user")
    app.add_typer(widget_app, name="widget")

    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="Address to listen on."),
        port: int = typer.Option(8000, help="Port to listen on."),
        workers: int = typer.Option(
            1, min=1, max=64, help="Worker processes (use PostgreSQL and Redis for >1)."
        ),
        log_level: str = typer.Option("info", help="Log level (JSON lines on stderr)."),
        access_log: bool = typer.Option(
            True,
            "--access-log/--no-access-log",
            help="One JSON line per request (credentials in query strings are redacted).",
        ),
    ) -> None:
        """Run the chat, console and API service (FastAPI + uvicorn)."""
        serve_forever(host, port, workers, log_level, access_log)


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@user_app.command("add")
def add(
    name: str,
    role: str = typer.Option("agent", help="agent or admin"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from stdin."
    ),
) -> None:
    """Create an account."""
    from annae.agents.users import UserError, create_user

    try:
        user_id = create_user(migrated_db(), name, role, _read_password(password_stdin))
    except UserError as exc:
        fail(str(exc))
    console.print(f"created {role} {name} (id {user_id})")


@user_app.command("list")
def list_() -> None:
    """List accounts."""
    from annae.agents.users import list_users

    table = cli_table("id", "username", "role", "active", "last login")
    with db_session() as session:
        for u in list_users(session):
            table.add_row(
                str(u.id),
                u.username,
                u.role,
                "yes" if u.active else "no",
                str(u.last_login_at or "-"),
            )
    console.print(table)


def _change(name: str, fn, done: str) -> None:
    from annae.agents.users import UserError

    with db_session(UserError) as session:
        fn(session)
    console.print(f"{name}: {done}")


@user_app.command("passwd")
def passwd(name: str, password_stdin: bool = typer.Option(False, "--password-stdin")) -> None:
    """Set a new password (logs the user out everywhere)."""
    from annae.agents.users import set_password

    password = _read_password(password_stdin)
    _change(name, lambda s: set_password(s, name, password), "password changed")


@user_app.command("disable")
def disable(name: str) -> None:
    """Disable an account (logs it out everywhere)."""
    from annae.agents.users import set_active

    _change(name, lambda s: set_active(s, name, False), "disabled")


@user_app.command("enable")
def enable(name: str) -> None:
    """Enable a disabled account."""
    from annae.agents.users import set_active

    _change(name, lambda s: set_active(s, name, True), "enabled")


@apikey_app.command("create")
def apikey_create(name: str) -> None:
    """Create an API key for a channel; it is printed once."""
    from annae.agents.users import UserError, create_api_key

    with db_session(UserError) as session:
        key = create_api_key(session, name)
    typer.echo(key)


@apikey_app.command("list")
def apikey_list() -> None:
    """List API keys (names only; keys are stored hashed)."""
    from annae.agents.users import list_api_keys

    table = cli_table("id", "name", "active", "created")
    with db_session() as session:
        for k in list_api_keys(session):
            table.add_row(str(k.id), k.name, "yes" if k.active else "no", str(k.created_at))
    console.print(table)


@apikey_app.command("revoke")
def apikey_revoke(name: str) -> None:
    """Revoke an API key."""
    from annae.agents.users import revoke_api_key

    _change(name, lambda s: revoke_api_key(s, name), "revoked")


@widget_app.command("secret")
def widget_secret(
    rotate: bool = typer.Option(
        False, "--rotate", help="Replace an existing secret (signatures made with it stop working)."
    ),
) -> None:
    """Create the widget secret (printed once; keep it on the shop's server only)."""
    from annae.agents.identity import load_secret, rotate_secret, secret_path

    settings = get_settings()
    if settings.widget_secret:
        fail("ANNAE_WIDGET_SECRET is set; change it there instead")
    if load_secret(settings.home) is not None and not rotate:
        fail(f"{secret_path(settings.home)} already holds a secret; use --rotate to replace it")
    typer.echo(rotate_secret(settings.home))


@widget_app.command("sign")
def widget_sign(customer_id: str) -> None:
    """Print the signature of CUSTOMER_ID (to test an embed page; shops sign on their server)."""
    from annae.agents.identity import customer_id_problem, load_secret, sign

    settings = get_settings()
    secret = load_secret(settings.home, settings.widget_secret)
    if secret is None:
        fail("no widget secret yet: run `annae widget secret`")
    problem = customer_id_problem(customer_id)
    if problem:
        fail(f"this customer id cannot be verified ({problem})")
    typer.echo(sign(secret, customer_id))
