"""A newcomer's first hour: offline API docs, the command list, lazy command start-up."""

from __future__ import annotations

import subprocess
import sys

from fastapi.testclient import TestClient

from annae.settings import Settings
from annae.web.app import create_app


def test_docs_are_served_without_a_cdn(tmp_path):
    app = create_app(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'a.db'}"))
    client = TestClient(app)  # no lifespan needed for static pages
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "http" not in page.text.split("<body>")[0]
    for asset in ("/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"):
        r = client.get(asset)
        assert r.status_code == 200 and len(r.content) > 10_000, asset


def test_cli_start_imports_no_recommender_and_lists_passwd():
    code = (
        "import sys, annae.cli\n"
        "heavy = [m for m in ('annae.recommend.service', 'sklearn', 'scipy', 'torch') "
        "if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    helped = subprocess.run(
        [sys.executable, "-m", "annae.cli", "user", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "passwd" in helped.stdout


def test_cli_tables_never_cut_column_names():
    from rich.console import Console

    from annae.progress import table

    t = table("version", "status", "created", "KB rev", "examples", "gate")
    t.add_row("v2", "live", "2026-11-26T21:49:11+00:00", "1", "529", "acc 0.780 vs 0.765")
    console = Console(width=60, record=True)
    console.print(t)
    header = console.export_text().splitlines()[1]
    for name in ("version", "status", "created", "KB rev", "examples", "gate"):
        assert name in header, header
