"""`annae rec ...` end to end: import, train, recommend, similar, consent, link, eval --json."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from annae.recommend.cli import app
from annae.recommend.sample import retail_slice, write_synthetic_csv

runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, list(args))
    return result


def test_import_train_recommend(annae_home, tmp_path):
    shop = write_synthetic_csv(tmp_path / "shop.csv")
    r = run("import", str(shop), "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["interactions_written"] == report["rows_kept"] > 0
    r = run("import", str(shop))
    assert (
        r.exit_code == 1 and "already imported" in r.output and "nothing was imported" in r.output
    )
    r = run("train")
    assert r.exit_code == 0, r.output
    assert "model v1 (hybrid, engine local) is live" in r.output
    assert (annae_home / "models" / "recommend" / "v1" / "model.joblib").exists()
    r = run("recommend", "C002", "--json")
    assert json.loads(r.output)["consent"] is False
    assert run("consent", "C002", "--yes").exit_code == 0
    r = run("recommend", "C002", "--k", "3", "--json")
    body = json.loads(r.output)
    assert body["consent"] is True and len(body["items"]) == 3
    r = run("recommend", "C002", "--list", "also_like")
    assert r.exit_code == 0 and "recommendations for C002" in r.output
    r = run("similar", "A01", "--k", "2", "--json")
    assert len(json.loads(r.output)["items"]) == 2
    r = run("similar", "NOPE")
    assert r.exit_code == 1 and "no product" in r.output
    r = run("link", "123", "A01")
    assert r.exit_code == 1 and "no knowledge-base entry" in r.output
    r = run("status")
    assert "* v1 hybrid/local" in r.output


def test_malformed_file_imports_nothing(annae_home, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,product_id,timestamp\nC1,P1,2024-01-01\nC2,P2,yesterday-ish\n")
    r = run(
        "import",
        str(bad),
        "--map",
        "quantity=",
        "--map",
        "price=",
        "--map",
        "name=",
        "--map",
        "description=",
        "--map",
        "category=",
        "--map",
        "kind=",
    )
    assert r.exit_code == 1 and "line 3" in r.output and "nothing was imported" in r.output
    r = run("status")
    assert "0 customers" in r.output and "0 interactions" in r.output
    r = run("import", str(bad), "--preset", "nonsense")
    assert r.exit_code == 1 and "unknown preset" in r.output
    # messages are printed as written, never read as Rich markup
    r = run("import", str(tmp_path / "shop[recommend].csv"))
    assert r.exit_code == 1 and "shop[recommend].csv: no such file" in r.output, r.output


@pytest.mark.slow
def test_eval_json_contract(datasets, tmp_path):
    path = retail_slice(
        datasets / "online-retail/online_retail.csv.gz", tmp_path / "r.csv.gz", every=8
    )
    r = run(
        "eval",
        "--interactions",
        str(path),
        "--split-date",
        "2011-11-01",
        "--k",
        "10",
        "--json",
        "--baselines",
        "popularity_7d,repurchase_popularity,ease,als",
    )
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    metrics = {"recall@10", "ndcg@10", "precision@10", "coverage@10"}
    for key in ("novel", "repeat"):
        assert metrics <= set(result[key])
        assert all(0 <= result[key][m] <= 1 for m in metrics)
    assert {"fit_seconds", "latency_ms_p50", "latency_ms_p99", "n_customers", "baselines"} <= set(
        result
    )
    assert set(result["baselines"]) == {"popularity_7d", "repurchase_popularity", "ease", "als"}
    for base in result["baselines"].values():
        assert metrics <= set(base["novel"]) and metrics <= set(base["repeat"])
    assert result["n_customers"] > 50
    # the repeat-inclusive ranking must beat plain 7-day popularity on any real slice
    assert result["repeat"]["ndcg@10"] > result["baselines"]["popularity_7d"]["repeat"]["ndcg@10"]
    r = run("eval", "--interactions", str(path), "--split-date", "2030-01-01")
    assert r.exit_code == 1 and "empty" in r.output
