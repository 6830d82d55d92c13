"""The calibrated classifier, the engine and its persistence."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from annae.nlu import calibration
from annae.nlu.classifier import IntentClassifier, TrainingError
from annae.nlu.engine import Engine
from annae.nlu.features import FeatureConfig, morphemes

LEXICAL = FeatureConfig(encoder="none")

TOPICS = {
    "shipping": [
        "how long does shipping take",
        "when will my parcel arrive",
        "delivery time to busan",
        "how many days for delivery",
        "shipping takes how long",
        "when does my order get here",
        "배송 얼마나 걸려요",
        "배송 기간이 궁금해요",
    ],
    "refund": [
        "when do i get my refund",
        "refund has not arrived",
        "how long until money is back",
        "where is my refund",
        "refund timing please",
        "did you send my refund yet",
        "환불 언제 돼요",
        "환불이 아직 안 들어왔어요",
    ],
    "wrap": [
        "do you offer gift wrapping",
        "can you wrap it as a gift",
        "gift wrap available",
        "wrapping paper option",
        "can it be gift wrapped",
        "is gift wrapping free",
        "선물 포장 되나요",
        "포장 서비스 있어요",
    ],
    "password": [
        "i forgot my password",
        "reset my password",
        "cannot log in password",
        "password reset email not coming",
        "change my password",
        "how to recover my account password",
        "비밀번호를 잊어버렸어요",
        "비밀번호 재설정 어떻게 해요",
    ],
}
OOS = [
    "what is the weather today",
    "tell me a joke",
    "who won the football game",
    "오늘 날씨 어때요",
    "점심 뭐 먹지",
    "what is the capital of france",
]


def _data():
    texts, labels = [], []
    for key, examples in TOPICS.items():
        texts += examples
        labels += [key] * len(examples)
    texts += OOS
    labels += ["oos"] * len(OOS)
    return texts, labels


def test_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 5)) * 3
    probs = calibration.probabilities(logits, 1.0)
    labels = np.array([rng.choice(5, p=p) for p in probs])
    # scores were scaled by 4: the best temperature undoes it
    assert calibration.fit_temperature(logits * 4, labels) == pytest.approx(4.0, rel=0.15)


def test_threshold_accounts_for_out_of_scope_share():
    rng = np.random.default_rng(1)
    conf_in = rng.uniform(0.3, 1.0, 5000)
    correct = rng.uniform(size=5000) < conf_in  # calibrated
    conf_oos = rng.uniform(0.0, 0.9, 5000)
    none = calibration.precision_curve(conf_in, correct, conf_oos, oos_share=0.0).choose(0.9)
    some = calibration.precision_curve(conf_in, correct, conf_oos, oos_share=0.3).choose(0.9)
    assert none.reached_target and some.reached_target
    assert some.threshold > none.threshold  # more out-of-scope traffic → stricter
    for choice, share in ((none, 0.0), (some, 0.3)):
        t = choice.threshold
        a_in = (conf_in >= t).mean()
        c_in = ((conf_in >= t) & correct).mean()
        a_oos = (conf_oos >= t).mean()
        precision = (1 - share) * c_in / ((1 - share) * a_in + share * a_oos)
        assert precision >= 0.9 - 0.01
    impossible = calibration.precision_curve(
        conf_in, np.zeros(5000, bool), conf_oos, oos_share=0.2
    ).choose(0.9)
    assert not impossible.reached_target and impossible.threshold > 1.0


def test_classifier_fits_predicts_and_calibrates():
    texts, labels = _data()
    clf = IntentClassifier(LEXICAL).fit(texts, labels)
    probs = clf.predict_proba(["when will my refund come", "선물 포장 가능해요?", "비밀번호 찾기"])
    assert np.allclose(probs.sum(1), 1.0)
    top = clf.top_k(probs, 2)
    assert [row[0][0] for row in top] == ["refund", "wrap", "password"]
    assert all(len(row) == 2 and row[0][1] >= row[1][1] for row in top)
    assert "oos" not in {label for row in top for label, _ in row}
    assert 0 < clf.threshold_ <= 1.0 + 1e-6
    m = clf.metrics_
    assert m["n_entries"] == 4 and m["n_oos_examples"] == len(OOS) and m["n_pseudo_oos"] == 32
    assert 0.5 <= m["cv_accuracy"] <= 1.0


def test_fits_on_two_threads_give_the_same_classifier():
    """Folds, held-out entries and the final fit run side by side with ``n_jobs``: the same
    choices, thresholds and scores as one after the other."""
    texts, labels = _data()
    emb = np.random.default_rng(0).normal(size=(len(texts), 8)).astype(np.float32)
    one = IntentClassifier(LEXICAL).fit(texts, labels, embeddings=emb)
    # several times: two SVM fits at once once drew from each other's random sequence
    # (liblinear's generator is one per process), which showed only now and then
    for _ in range(4):
        two = IntentClassifier(LEXICAL, n_jobs=2).fit(texts, labels, embeddings=emb)
        assert two.temperature_ == one.temperature_
    assert len(one.metrics_["cv_candidates"]) > 1  # several models compared: many fits
    for key in ("cv_candidates", "model", "embedding_weight", "cv_accuracy", "n_pseudo_oos"):
        assert one.metrics_[key] == two.metrics_[key]
    assert (one.temperature_, one.threshold_, one.clarify_threshold_) == (
        two.temperature_,
        two.threshold_,
        two.clarify_threshold_,
    )
    questions = ["when will my refund come", "선물 포장 가능해요?", "zzqx"]
    q_emb = emb[:3]
    np.testing.assert_array_equal(
        one.predict_proba(questions, q_emb), two.predict_proba(questions, q_emb)
    )


def test_korean_morphemes_are_features():
    toks = morphemes("배송비는 얼마예요?")
    assert any(t.startswith("배송") for t in toks)
    assert morphemes("shipping cost") == []


def test_training_errors_are_clear():
    with pytest.raises(TrainingError, match="at least two entries"):
        IntentClassifier(LEXICAL).fit(["a question", "another"], ["one", "one"])
    with pytest.raises(TrainingError, match="empty"):
        IntentClassifier(LEXICAL).fit(["ok", "  "], ["a", "b"])


def test_engine_decides_and_round_trips(tmp_path):
    texts, labels = _data()
    answers = {
        k: {"id": i, "question": k, "answer": f"answer about {k}"} for i, k in enumerate(TOPICS)
    }
    engine = Engine.fit(
        texts,
        labels,
        answers,
        features=LEXICAL,
        manifest={"version": "v9"},
        documents={k: [v["answer"]] for k, v in answers.items()},
    )
    d = engine.decide("how long does shipping take")
    assert d.type == "answer" and d.entry_key == "shipping" and d.answer == "answer about shipping"
    assert d.entry_id == 0 and d.model_version == "v9" and d.threshold == engine.policy.threshold
    for odd in ["", "   ", "x" * 100_000]:
        assert engine.decide(odd).type == "handoff"
    assert engine.decide("").reason == "empty" and engine.decide("x" * 100_000).reason == "too_long"
    human = engine.decide("상담원 연결해 주세요")
    assert human.type == "handoff" and human.reason == "human_requested" and human.candidates
    for weird in ["🎁🎁🎁", "배송 shipping 配送 доставка", "\x00\x01", "a"]:
        assert engine.decide(weird).type in {"answer", "clarify", "handoff"}

    path = engine.save(tmp_path / "model")
    manifest = json.loads((path / "manifest.json").read_text())
    for key in ("created_at", "features", "threshold", "metrics", "libraries", "version"):
        assert key in manifest
    assert manifest["libraries"]["scikit-learn"]
    again = Engine.load(path)
    q = ["refund not here yet", "gift wrap?", "날씨 어때요", "forgot password"]
    assert [a.to_dict() for a in map(engine.decide, q)] == [
        b.to_dict() for b in map(again.decide, q)
    ]


def test_load_missing_model_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model"):
        Engine.load(tmp_path)


@pytest.mark.parametrize("model", ["svm", "logreg"])
@pytest.mark.parametrize("entries", [4, 2])
def test_scores_without_a_stacked_matrix_equal_the_stacked_product(model, entries):
    """Served questions are scored from each block's non-zero features and the weights directly
    (no scipy matrix): the same scores as the stacked features' product, and a question's scores
    are the same alone as in a batch."""
    from annae.nlu.features import stack

    keep = set(list(TOPICS)[:entries])
    texts, labels = zip(
        *[(t, lab) for t, lab in zip(*_data(), strict=True) if lab in keep], strict=True
    )
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(texts), 8)).astype(np.float32)
    clf = IntentClassifier(LEXICAL, model=model).fit(list(texts), list(labels), embeddings=emb)
    fitted = clf._model
    questions = ["환불 언제 돼요?", "gift wrap please", "zzqx", " ", "배송 얼마나 걸려요 ㅠㅠ"]
    tokens = [morphemes(q) for q in questions]
    qemb = rng.normal(size=(len(questions), 8)).astype(np.float32)
    weight = clf.features.embedding_weight
    stacked = fitted.svm.decision_function(
        stack(fitted.lexical.transform(questions, tokens), qemb, weight)
    )
    direct = fitted._direct(fitted.lexical.parts(questions, tokens), qemb, weight)
    assert direct.shape == stacked.shape
    np.testing.assert_allclose(direct, stacked, rtol=1e-5, atol=1e-5)
    alone = [
        fitted._direct(fitted.lexical.parts([q], [t]), qemb[i : i + 1], weight)
        for i, (q, t) in enumerate(zip(questions, tokens, strict=True))
    ]
    assert np.array_equal(np.concatenate(alone), direct)
    # the embedding block of the weights is copied once per model, and never pickled
    import pickle

    assert "_dense" in fitted.__dict__
    again = pickle.loads(pickle.dumps(fitted))
    assert "_dense" not in again.__dict__
    assert np.array_equal(
        again._direct(fitted.lexical.parts(questions, tokens), qemb, weight), direct
    )
    scores = fitted.scores(questions, tokens, qemb, weight, len(clf.classes_))
    assert np.isfinite(scores[:, fitted.classes]).all()


def test_annae_eval_trains_the_same_model_whatever_the_hash_seed(tmp_path):
    """Label names are added as anchor rows in a fixed order: a set's order (which follows
    PYTHONHASHSEED, new in each process) once moved the thresholds of the same data by 0.004."""
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "from annae.nlu import evaluate\n"
        "from annae.nlu.features import FeatureConfig\n"
        "rows = json.loads(sys.argv[1])\n"
        "engine = evaluate.fit([t for t, _ in rows], [lab for _, lab in rows],"
        " features=FeatureConfig(encoder='none'))\n"
        "clf = engine.classifier\n"
        "print(json.dumps([clf.threshold_, clf.clarify_threshold_, clf.temperature_]))\n"
    )
    rows = [(text, label) for label, texts in TOPICS.items() for text in texts]
    out = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": "1"}
        run = subprocess.run(
            [sys.executable, "-c", script, json.dumps(rows)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        out.add(run.stdout.strip())
    assert len(out) == 1, out


def test_a_repeated_question_takes_its_ranking_from_memory(tmp_path, monkeypatch):
    """With ``remember(n)`` a question asked again in the same words (as normalised) is not
    scored again: the
    same decision (to the audit record), new candidate objects each time, at most ``n`` texts
    kept, the least recently asked dropped first, and only a hash of each text. A registry load
    (the service) turns it on from ``ANNAE_QUESTION_MEMORY``."""
    texts, labels = _data()
    engine = Engine.fit(texts, labels, features=LEXICAL)
    questions = ["refund not here yet", "gift wrap?", "날씨 어때요", "forgot password", "hello"]
    plain = [d.to_dict() for d in engine.decide_many(questions * 2)]
    scored: list[str] = []
    real = engine.classifier.predict_proba
    monkeypatch.setattr(
        engine.classifier,
        "predict_proba",
        lambda texts, *a, **k: scored.extend(texts) or real(texts, *a, **k),
    )
    engine.remember(3)
    first = engine.decide_many(questions)  # all five scored; the last three kept
    assert len(scored) == 5 and len(engine._memory) == 3
    again = engine.decide_many(questions[::-1])  # three from memory, two scored again
    assert len(scored) == 7 and (engine.memory_hits, engine.memory_misses) == (3, 7)
    assert [d.to_dict() for d in first + again[::-1]] == plain
    assert all(
        a.candidates[0] is not b.candidates[0] for a, b in zip(first, again[::-1], strict=True)
    )
    for key, _ in engine._memory.items():  # (the policy's threshold, a 16-byte hash)
        assert isinstance(key[1], bytes) and len(key[1]) == 16
        assert not any(q.encode() in key[1] for q in questions)
    # the same words as the model reads them: letter case, spacing, emoticon runs aside
    engine.remember(10)
    engine.decide_many(["forgot password", "날씨 어때요"])
    before = len(scored)
    for variant in ["FORGOT  password", "forgot password "]:
        assert engine.decide(variant).to_dict() == plain[3]
    engine.decide("날씨 어때요 ㅠㅠ")
    assert len(scored) == before
    engine.remember(0)  # off: nothing kept, every question scored
    assert len(engine._memory) == 0
    engine.decide_many(questions)
    assert len(scored) == before + 5

    from annae.nlu.registry import ModelRegistry
    from annae.settings import get_settings

    monkeypatch.undo()  # the counting predict_proba is not saved with the model
    registry = ModelRegistry(tmp_path / "models")
    registry.save(engine)
    for env, size in (("2", 2), (None, 4096)):
        if env is None:
            monkeypatch.delenv("ANNAE_QUESTION_MEMORY", raising=False)
        else:
            monkeypatch.setenv("ANNAE_QUESTION_MEMORY", env)
        get_settings.cache_clear()
        assert registry.load_live(warm=False).memory == size
    get_settings.cache_clear()
