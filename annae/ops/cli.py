"""`annae backup DIR`, `annae restore DIR` and `annae doctor`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from annae.progress import fail
from annae.settings import get_settings

out = Console()


def register(app: typer.Typer) -> None:
    """Add the operations commands (doctor, backup, restore) to the top-level app."""

    @app.command()
    def doctor(
        workers: int = typer.Option(
            None, "--workers", min=1, help="Workers the service runs (default $ANNAE_WORKERS or 1)."
        ),
        as_json: bool = typer.Option(False, "--json", help="One JSON array instead of a table."),
    ) -> None:
        """Check the deployment (database, schema, Redis, model hashes, disk, clock, secrets)."""
        from rich.table import Table

        from annae.ops.doctor import run_checks, to_json, workers_default

        checks = run_checks(get_settings(), workers=workers or workers_default())
        if as_json:
            typer.echo(to_json(checks))
        else:
            table = Table("check", "", "found", "to fix")
            marks = {"ok": "[green]ok[/]", "warn": "[yellow]warn[/]", "fail": "[bold red]FAIL[/]"}
            for c in checks:
                table.add_row(c.name, marks[c.status], c.detail, c.fix)
            out.print(table)
        if any(c.status == "fail" for c in checks):
            raise typer.Exit(1)

    @app.command("backup")
    def backup_cmd(
        folder: Path = typer.Argument(..., help="A new (or empty) folder for the backup."),
    ) -> None:
        """Back up the database (SQLite online backup or pg_dump), models and settings."""
        from annae.ops.backup import BackupError, backup

        try:
            manifest = backup(folder, get_settings())
        except BackupError as exc:
            fail(str(exc))
        size = sum(f["size"] for f in manifest["files"].values())
        out.print(
            f"backup of the {manifest['database']['dialect']} database (schema "
            f"{', '.join(manifest['database']['revisions'])}) and {len(manifest['files'])} files "
            f"({size / 1e6:.1f} MB) written to {folder}"
        )

    @app.command("restore")
    def restore_cmd(
        folder: Path = typer.Argument(..., help="A folder written by `annae backup`."),
        erasure_log: list[Path] = typer.Option(
            [],
            "--erasure-log",
            help="More erasure logs to re-apply (the backup's and ANNAE_ERASURE_LOG are read anyway).",
        ),
    ) -> None:
        """Restore a backup into an empty database and ANNAE_HOME; re-apply later erasures."""
        from annae.ops.backup import BackupError, restore

        try:
            report = restore(folder, get_settings(), erasure_logs=list(erasure_log))
        except (BackupError, ValueError) as exc:
            fail(str(exc))
        out.print(
            f"restored the {report.database} backup of {report.created_at}: "
            f"models {', '.join(report.models) or 'none'}; "
            f"{len(report.reerased)} customer(s) erased after the backup erased again"
        )
