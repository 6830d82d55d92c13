"""`annae train / ask / eval / models` from the command line, with bad input."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from annae.cli import app

runner = CliRunner()


def _slice(datasets, name, n_labels=6, per_label=12):
    """The first ``per_label`` rows of the first ``n_labels`` BANKING77 intents."""
    rows, counts = [], {}
    with open(datasets / "banking77" / name, newline="") as fh:
        for row in csv.DictReader(fh):
            label = row["category"]
            if label not in counts and len(counts) == n_labels:
                continue
            if counts.get(label, 0) < per_label:
                counts[label] = counts.get(label, 0) + 1
                rows.append(row)
    return rows


def _write(path, rows, cols=("text", "category")):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(cols), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def banking_files(datasets, tmp_path):
    train = _slice(datasets, "train.csv")
    labels = {r["category"] for r in train}
    test = [
        r for r in _slice(datasets, "test.csv", n_labels=77, per_label=5) if r["category"] in labels
    ]
    # an intent the model never saw in training: out of scope for it
    unseen = [
        r
        for r in _slice(datasets, "test.csv", n_labels=77, per_label=3)
        if r["category"] not in labels
    ][:6]
    return (
        _write(tmp_path / "train.csv", train),
        _write(tmp_path / "test.csv", test + unseen),
        len(test),
        len(unseen),
    )


def test_eval_json_contract(banking_files, monkeypatch):
    monkeypatch.setenv("ANNAE_ENCODER", "none")
    from annae.settings import get_settings

    get_settings.cache_clear()
    train, test, n_in, n_unseen = banking_files
    result = runner.invoke(
        app,
        ["eval", "--train", str(train), "--test", str(test), "--label-col", "category", "--json"],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    for key in (
        "in_scope_accuracy",
        "oos_recall",
        "coverage_at_target_precision",
        "answered_precision",
        "threshold",
        "n_train",
        "n_test",
        "fit_seconds",
        "latency_ms_p50",
        "latency_ms_p99",
    ):
        assert key in data, key
    assert (
        data["n_train"] == 72
        and data["n_test"] == n_in + n_unseen
        and data["n_test_oos"] == n_unseen
    )
    assert len(data["unseen_test_labels"]) >= 1
    assert 0.5 <= data["in_scope_accuracy"] <= 1.0
    assert 0.0 <= data["oos_recall"] <= 1.0
    assert data["latency_ms_p50"] <= data["latency_ms_p99"]
    assert data["classifier"] in ("logreg", "svm")
    get_settings.cache_clear()


def test_eval_readable_table(banking_files, monkeypatch):
    train, test, *_ = banking_files
    result = runner.invoke(
        app,
        [
            "eval",
            "--train",
            str(train),
            "--test",
            str(test),
            "--label-col",
            "category",
            "--encoder",
            "none",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "in_scope_accuracy" in result.stdout and "annae eval" in result.stdout


def test_eval_bad_files(tmp_path):
    good = _write(
        tmp_path / "g.csv", [{"text": "hi", "category": "a"}, {"text": "yo", "category": "b"}]
    )
    r = runner.invoke(app, ["eval", "--train", str(good), "--test", str(good)])
    assert (
        r.exit_code == 1 and "missing column(s) label" in r.output and "text, category" in r.output
    )
    r = runner.invoke(app, ["eval", "--train", str(tmp_path / "nope.csv"), "--test", str(good)])
    assert r.exit_code == 1 and "no such file" in r.output
    (tmp_path / "latin1.csv").write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    r = runner.invoke(app, ["eval", "--train", str(tmp_path / "latin1.csv"), "--test", str(good)])
    assert r.exit_code == 1 and "not UTF-8" in r.output
    empty = _write(
        tmp_path / "e.csv", [{"text": "hi", "category": "a"}, {"text": " ", "category": "b"}]
    )
    r = runner.invoke(
        app, ["eval", "--train", str(empty), "--test", str(good), "--label-col", "category"]
    )
    assert r.exit_code == 1 and "e.csv:3: empty text" in r.output
    one = _write(
        tmp_path / "one.csv", [{"text": "hi", "category": "a"}, {"text": "hey", "category": "a"}]
    )
    r = runner.invoke(
        app,
        [
            "eval",
            "--train",
            str(one),
            "--test",
            str(good),
            "--label-col",
            "category",
            "--encoder",
            "none",
        ],
    )
    assert r.exit_code == 1 and "at least two entries" in r.output


def test_train_ask_models_on_the_demo_kb(annae_home, monkeypatch):
    monkeypatch.setenv("ANNAE_ENCODER", "none")
    from annae.settings import get_settings

    get_settings.cache_clear()
    r = runner.invoke(app, ["ask", "hello"])
    assert r.exit_code == 1 and "no trained model" in r.output
    r = runner.invoke(app, ["train"])
    assert r.exit_code == 1 and "Import a knowledge base first" in r.output
    assert runner.invoke(app, ["kb", "import", "--demo"]).exit_code == 0
    r = runner.invoke(app, ["train"])
    assert r.exit_code == 0, r.output
    assert "model v1" in r.stdout and "(live)" in r.stdout
    r = runner.invoke(app, ["ask", "상담원 연결해 주세요"])
    d = json.loads(r.stdout)
    assert (
        d["type"] == "handoff" and d["reason"] == "human_requested" and d["model_version"] == "v1"
    )
    r = runner.invoke(app, ["ask", "   "])
    assert json.loads(r.stdout)["reason"] == "empty"
    r = runner.invoke(app, ["models"])
    assert r.exit_code == 0 and "v1" in r.stdout
    get_settings.cache_clear()


def test_operating_points_name_the_korean_fast_path(capsys):
    from annae.cli import print_operating_points

    fast = {"features": "lexical", "model": "svm", "threshold": 0.979, "cv_accuracy": 0.7917}
    print_operating_points({"threshold": 0.928, "fast_path": fast})
    assert "Korean fast path" in capsys.readouterr().out
    print_operating_points({"threshold": 0.928, "fast_path": {**fast, "threshold": 1.000000001}})
    assert "e5 reads every Korean question" in capsys.readouterr().out
    print_operating_points({"threshold": 0.928, "fast_path": None})  # no e5, or an older model
    assert "fast path" not in capsys.readouterr().out
