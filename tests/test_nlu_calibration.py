"""Thresholds, operating points, the out-of-scope score, evaluation metrics and bad KBs."""

from __future__ import annotations

import numpy as np
import pytest

from annae.nlu import calibration
from annae.nlu.classifier import IntentClassifier, TrainingError
from annae.nlu.evaluate import decision_metrics, oracle_coverage
from annae.nlu.features import FeatureConfig
from annae.nlu.policy import Candidate, PolicyConfig, decide

LEXICAL = FeatureConfig(encoder="none")


def _calibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.3, 1.0, n)
    return conf, rng.uniform(size=n) < conf


def test_threshold_is_the_lowest_reaching_the_target_not_the_first_dip():
    # a few wrong answers at the very top used to stop the scan there (threshold 1)
    conf_in = np.r_[np.full(5, 0.999), np.linspace(0.99, 0.5, 500)]
    correct = np.r_[[False, False, True, True, True], np.linspace(0.99, 0.5, 500) > 0.6]
    choice = calibration.precision_curve(conf_in, correct, np.zeros(0), oos_share=0).choose(0.9)
    assert choice.reached_target and choice.threshold < 0.9
    answered = conf_in >= choice.threshold
    assert correct[answered].mean() >= 0.9


def test_sources_weigh_the_same_and_separated_oos_never_costs_coverage():
    conf_in, correct = _calibrated(4000, 2)
    rng = np.random.default_rng(3)
    pseudo = rng.uniform(0.2, 0.95, 3000)  # held-out entries: close to the known ones
    far = rng.uniform(0.0, 0.3, 40)  # the company's oos examples: easy to tell apart
    alone = calibration.precision_curve(conf_in, correct, [pseudo], oos_share=0.2).choose(0.9)
    both = calibration.precision_curve(conf_in, correct, [pseudo, far], oos_share=0.2).choose(0.9)
    pooled = calibration.precision_curve(
        conf_in, correct, np.r_[pseudo, far], oos_share=0.2
    ).choose(0.9)
    assert both.threshold < alone.threshold  # 40 measured examples count, not drowned
    assert both.expected_coverage > alone.expected_coverage
    assert pooled.threshold == pytest.approx(alone.threshold, abs=0.01)


def test_operating_points_are_monotone():
    conf_in, correct = _calibrated(3000, 4)
    oos = np.random.default_rng(5).uniform(0.0, 0.9, 2000)
    curve = calibration.precision_curve(conf_in, correct, [oos], oos_share=0.2)
    points = curve.operating_points((0.8, 0.9, 0.95))
    assert [p["target"] for p in points] == [0.8, 0.9, 0.95]
    assert all(p["reached_target"] for p in points)
    thresholds = [p["threshold"] for p in points]
    coverage = [p["expected_coverage"] for p in points]
    assert thresholds == sorted(thresholds) and coverage == sorted(coverage, reverse=True)
    assert all(p["expected_precision"] >= p["target"] for p in points)


def test_oos_score_is_calibrated_and_its_threshold_keeps_the_target():
    rng = np.random.default_rng(6)
    conf_in = rng.beta(5, 1, 5000)  # in scope: mostly confident
    conf_oos = rng.beta(1, 3, 5000)  # out of scope: mostly not
    score = calibration.fit_oos_score(conf_in, [conf_oos], oos_share=0.3, target=0.95)
    assert score(0.01) > 0.9 and score(0.99) < 0.05
    assert score(0.2) >= score(0.5) >= score(0.8)  # never rises with confidence
    assert 0.0 < score.threshold <= 1.0 and score.expected_precision >= 0.95
    # check the promise on the rows themselves: "out of scope" at score ≥ threshold
    said_in = score(conf_in) >= score.threshold
    said_oos = score(conf_oos) >= score.threshold
    precision = 0.3 * said_oos.mean() / (0.3 * said_oos.mean() + 0.7 * said_in.mean())
    assert precision >= 0.95 - 0.01
    none = calibration.fit_oos_score(conf_in, [], oos_share=0.2, target=0.95)
    assert none.threshold > 1.0 and none(0.0) == 0.0


def test_oracle_coverage_is_the_best_threshold_in_hindsight():
    conf = np.array([0.99, 0.98, 0.97, 0.9, 0.8, 0.7])
    correct = np.array([True, True, False, True, True, False])
    # 5 rows at 4/5 = 0.8; 4 rows at 3/4; 2 rows at 1.0
    assert oracle_coverage(conf, correct, 0.8) == pytest.approx(5 / 6, abs=1e-4)
    assert oracle_coverage(conf, correct, 0.95) == pytest.approx(2 / 6, abs=1e-4)
    # ties: one threshold takes all rows of the same confidence or none of them
    tied = np.array([0.9, 0.9, 0.9, 0.5])
    assert oracle_coverage(tied, np.array([True, False, True, True]), 0.9) == 0.0
    assert oracle_coverage(np.zeros(0), np.zeros(0, bool), 0.9) is None


def test_decision_metrics():
    types = ["answer", "answer", "clarify", "clarify", "handoff", "answer", "clarify"]
    top1 = ["a", "b", "c", "a", "b", "a", "a"]
    conf = [0.99, 0.97, 0.6, 0.5, 0.2, 0.98, 0.4]
    offered = [set(), set(), {"c", "d"}, {"a", "b"}, set(), set(), {"a", "c"}]
    gold = ["a", "a", "d", "c", "b", "oos", "oos"]
    m = decision_metrics(types, top1, conf, offered, gold, 0.9)
    # in scope: rows 0-4; contained: 0 (right answer) and 2 (right entry offered)
    assert m["containment"] == pytest.approx(2 / 5, abs=1e-4)
    assert m["clarify_rate"] == pytest.approx(3 / 7, abs=1e-4)
    assert m["clarify_hit_rate"] == pytest.approx(1 / 3, abs=1e-4)
    # wrong: row 1 (wrong entry) and row 5 (out of scope answered), over all rows
    assert m["wrong_answer_rate"] == pytest.approx(2 / 7, abs=1e-4)
    assert m["answered_precision"] == pytest.approx(1 / 3, abs=1e-4)
    assert m["coverage_at_target_precision"] == pytest.approx(3 / 7, abs=1e-4)


def _cands(*confs):
    return [
        Candidate(key=f"e{i}", entry_id=i, question=f"q{i}", answer=f"a{i}", confidence=c)
        for i, c in enumerate(confs)
    ]


def test_decision_carries_the_out_of_scope_score():
    cfg = PolicyConfig(threshold=0.9, clarify_threshold=0.7, oos_threshold=0.8)
    d = decide(_cands(0.1, 0.05, 0.01), cfg, language="en", oos_score=0.93)
    assert d.type == "out_of_scope" and d.oos_score == 0.93 and d.oos_threshold == 0.8
    assert d.confidently_out_of_scope and d.to_dict()["oos_score"] == 0.93
    d = decide(_cands(0.5, 0.3, 0.04), cfg, language="en", oos_score=0.4)
    # the third option adds next to nothing: two offered, 0.8 ≥ 0.7
    assert d.type == "clarify" and len(d.candidates) == 2 and not d.confidently_out_of_scope
    d = decide(_cands(0.95, 0.03), cfg, language="en")
    assert d.type == "answer" and d.oos_score is None and not d.confidently_out_of_scope


TOPIC_WORDS = ["shipping", "refund", "password", "wrapping", "coupon", "invoice", "warranty"]


def _fit(texts, labels):
    return IntentClassifier(LEXICAL).fit(texts, labels)


def test_one_entry_and_all_oos_are_refused_clearly():
    with pytest.raises(TrainingError, match="at least two entries"):
        _fit(["where is my parcel", "parcel status"], ["shipping", "shipping"])
    with pytest.raises(TrainingError, match="every example is marked out of scope"):
        _fit(["tell me a joke", "weather today"], ["oos", "oos"])


def test_two_entries_train_and_say_what_they_cannot_promise():
    texts = [f"{w} question number {i}" for w in ("shipping", "refund") for i in range(4)]
    labels = [w for w in ("shipping", "refund") for _ in range(4)]
    clf = _fit(texts, labels)
    limits = " ".join(clf.metrics_["limits"])
    assert "no out-of-scope estimate" in limits
    assert clf.clarify_threshold_ <= clf.threshold_ + 1e-9


def test_one_example_per_entry_and_identical_examples_do_not_crash():
    texts = [f"{w} {i}" for i in range(80) for w in ("question about topic",)]
    labels = [f"entry_{i}" for i in range(80)]
    clf = _fit(texts, labels)
    limits = " ".join(clf.metrics_["limits"])
    assert "80 of 80 entries have fewer than 2 example questions" in limits
    assert clf.threshold_ > 1.0 and "cannot be reached" in limits
    same = _fit(["same text"] * 6, ["a", "a", "a", "b", "b", "b"])
    assert "appear under more than one entry" in " ".join(same.metrics_["limits"])
    assert same.threshold_ > 1.0  # nothing can be told apart: never answers


def test_clarify_threshold_never_above_the_answer_threshold():
    texts, labels = [], []
    for w in TOPIC_WORDS:
        for i, tail in enumerate(["please", "help", "now", "today", "question", "asap"]):
            texts.append(f"{w} {tail} {i}")
            labels.append(w)
    clf = _fit(texts, labels)
    assert clf.clarify_threshold_ <= clf.threshold_ + 1e-9
    assert [p["target"] for p in clf.operating_points_] == list(calibration.CURVE_TARGETS)
    assert "oos_threshold" in clf.metrics_


def test_train_prints_the_curve_and_the_operating_point_is_reversible(annae_home, monkeypatch):
    from typer.testing import CliRunner

    from annae.cli import app
    from annae.privacy import audit
    from annae.settings import get_settings
    from annae.store.db import get_engine, session_scope

    monkeypatch.setenv("ANNAE_ENCODER", "none")
    get_settings.cache_clear()
    runner = CliRunner()
    assert runner.invoke(app, ["kb", "import", "--demo"]).exit_code == 0
    r = runner.invoke(app, ["train"])
    assert r.exit_code == 0, r.output
    assert "operating points" in r.stdout and "0.90" in r.stdout and "0.98" in r.stdout
    assert "clarify threshold" in r.stdout
    r = runner.invoke(app, ["operating-point"])
    assert r.exit_code == 0 and "operating points" in r.stdout
    points = {
        p["target"]: p
        for p in __import__("json").loads(
            (annae_home / "models" / "v1" / "manifest.json").read_text()
        )["operating_points"]
    }
    reachable = [t for t, p in points.items() if p["reached_target"]]
    if not reachable:  # the demo KB without the encoder: nothing reachable, a clear refusal
        r = runner.invoke(app, ["operating-point", "0.9"])
        assert r.exit_code == 1 and "cannot reach" in r.output
        return
    target = min(reachable)
    r = runner.invoke(app, ["operating-point", str(target)])
    assert r.exit_code == 0, r.output
    assert "model v2" in r.stdout and "annae rollback v1" in r.stdout
    live = runner.invoke(app, ["ask", "how long does delivery take"])
    assert __import__("json").loads(live.stdout)["threshold"] == pytest.approx(
        points[target]["threshold"], abs=1e-4
    )
    with session_scope(get_engine()) as session:
        events = audit.query(session, action="model.operating_point")
        assert [e.target for e in events] == ["v2"]
    r = runner.invoke(app, ["operating-point", "0.42"])
    assert r.exit_code == 1 and "no operating point for 0.42" in r.output
    assert runner.invoke(app, ["rollback", "v1"]).exit_code == 0
    live = runner.invoke(app, ["ask", "how long does delivery take"])
    assert __import__("json").loads(live.stdout)["model_version"] == "v1"
    get_settings.cache_clear()
