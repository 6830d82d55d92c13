"""Evaluation on a labelled test set: the contract that outside checks use (``annae eval``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from annae.nlu.classifier import OOS
from annae.nlu.engine import Engine
from annae.nlu.features import FeatureConfig

LATENCY_SAMPLE = 1000


def evaluate(
    train_texts: Sequence[str],
    train_labels: Sequence[str],
    test_texts: Sequence[str],
    test_labels: Sequence[str],
    *,
    oos_label: str = OOS,
    target_precision: float = 0.95,
    oos_share: float = 0.20,
    clarify_precision: float = 0.80,
    features: FeatureConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    latency_sample: int = LATENCY_SAMPLE,
    label_names: bool = True,
    answers: Mapping[str, Sequence[str]] | None = None,
    fast_path: bool = True,
) -> dict:
    """Train a fresh engine on the training rows and score every test row.

    Test labels never seen in training count as out of scope (no entry could answer them).
    With ``label_names`` each label's name ("card_arrival" → "card arrival") is used as a
    description of its entry, as a knowledge base's entry title is.
    """
    train_labels = [OOS if lab == oos_label else str(lab) for lab in train_labels]
    known = set(train_labels) - {OOS}
    test_labels = [str(lab) for lab in test_labels]
    unseen = sorted({lab for lab in test_labels if lab not in known and lab != oos_label})
    gold = np.array([lab if lab in known else OOS for lab in test_labels], dtype=object)
    engine = fit(
        train_texts,
        train_labels,
        target_precision=target_precision,
        oos_share=oos_share,
        clarify_precision=clarify_precision,
        features=features,
        progress=progress,
        label_names=label_names,
        answers=answers,
        fast_path=fast_path,
    )
    fit_seconds = engine.manifest["metrics"]["total_fit_seconds"]
    cands, scorers = scored(engine, test_texts, progress)
    quality = decide_and_measure(engine, test_texts, cands, gold, target_precision, scorers)
    latencies = _latencies(engine, test_texts, latency_sample, progress)
    return {
        **quality,
        "threshold": round(engine.policy.threshold, 4),
        "clarify_threshold": round(engine.policy.clarify_threshold, 4),
        "target_precision": target_precision,
        "oos_share_assumed": oos_share,
        "expected_precision": engine.manifest["metrics"].get("expected_precision"),
        "expected_coverage": engine.manifest["metrics"].get("expected_coverage"),
        "clarify_target": clarify_precision,
        "clarify_expected_precision": engine.manifest["metrics"].get("clarify_expected_precision"),
        "oos_threshold": engine.manifest.get("oos_threshold"),
        "cv_accuracy": engine.manifest["metrics"].get("cv_accuracy"),
        "n_train": len(train_texts),
        "n_test": len(gold),
        "n_test_oos": int((gold == OOS).sum()),
        "unseen_test_labels": unseen,
        "fit_seconds": fit_seconds,
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 2) if latencies else None,
        "latency_ms_p99": round(float(np.percentile(latencies, 99)), 2) if latencies else None,
        "latency_n": len(latencies),
        "encoder": engine.classifier.features.encoder,
        "classifier": engine.classifier.model,
    }


def fit(
    train_texts: Sequence[str],
    train_labels: Sequence[str],
    *,
    target_precision: float = 0.95,
    oos_share: float = 0.20,
    clarify_precision: float = 0.80,
    features: FeatureConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    label_names: bool = True,
    answers: Mapping[str, Sequence[str]] | None = None,
    fast_path: bool = True,
) -> Engine:
    """The engine :func:`evaluate` trains: ``train_labels`` use :data:`OOS` for out-of-scope
    rows; each label's name (``label_names``) and ``answers`` are evidence for its entry; with
    ``fast_path`` (the product's default) a Korean fast path where the data has Korean."""
    known = set(train_labels) - {OOS}
    documents: dict[str, list[str]] = (
        {lab: [label_text(lab)] for lab in sorted(known) if label_text(lab)} if label_names else {}
    )
    for lab, texts in (answers or {}).items():
        if lab in known:
            documents.setdefault(lab, []).extend(t for t in texts if t and t.strip())
    return Engine.fit(
        train_texts,
        train_labels,
        features=features,
        documents=documents or None,
        target_precision=target_precision,
        oos_share=oos_share,
        clarify_precision=clarify_precision,
        progress=progress,
        fast_path=fast_path,
    )


def scored(engine: Engine, texts: Sequence[str], progress=None) -> tuple[list, list]:
    """Each text's ranked candidates and which scorer ranked them (:meth:`Engine.scorers`),
    in batches."""
    cands: list = []
    scorers: list = []
    batch = 256
    for start in range(0, len(texts), batch):
        c, s = engine.scorers(texts[start : start + batch])
        cands.extend(c)
        scorers.extend(s)
        if progress:
            progress("scoring", min(start + batch, len(texts)), len(texts))
    return cands, scorers


def decide_and_measure(
    engine: Engine,
    texts: Sequence[str],
    cands: list,
    gold: np.ndarray,
    target: float,
    scorers: Sequence[str | None] | None = None,
) -> dict:
    """The engine's decisions on ranked ``cands`` (the service's own rule, ``scorers`` from
    :func:`scored`) and their quality against ``gold`` (:func:`decision_metrics`, plus the
    in-scope top-3 accuracy)."""
    types, top1, conf, offered = [], [], [], []
    for cand, d in zip(cands, engine.decide_ranked(texts, cands, scorers), strict=True):
        types.append(d.type)
        top1.append(cand[0].key if cand else None)
        conf.append(cand[0].confidence if cand else 0.0)
        offered.append({c.key for c in d.candidates} if d.type == "clarify" else set())
    quality = decision_metrics(types, top1, conf, offered, gold, target)
    in_top3 = [g in [c.key for c in cand[:3]] for g, cand in zip(gold, cands, strict=True)]
    in_scope = [g != OOS for g in gold]
    quality["in_scope_top3_accuracy"] = _ratio(
        sum(t and s for t, s in zip(in_top3, in_scope, strict=True)), sum(in_scope)
    )
    return quality


def decision_metrics(
    types: Sequence[str],
    top1: Sequence[str | None],
    confidence: Sequence[float],
    offered: Sequence[set[str]],
    gold: Sequence[str] | np.ndarray,
    target: float,
) -> dict:
    """Quality of the decisions on labelled rows (``gold`` is ``oos`` for out-of-scope rows).

    ``types``: answer / clarify / handoff per row; ``top1`` and ``confidence``: the best
    entry and its confidence; ``offered``: the entries offered when clarifying.
    """
    type_a = np.asarray(types)
    gold_a = np.asarray(gold, dtype=object)
    top1_a = np.asarray(top1, dtype=object)
    in_scope = gold_a != OOS
    answered = type_a == "answer"
    correct = top1_a == gold_a
    clarified = type_a == "clarify"
    clarify_hit = np.array([g in opts for g, opts in zip(gold_a, offered, strict=True)], bool)
    contained = (answered & correct) | (clarified & clarify_hit)
    n_answered = int(answered.sum())
    return {
        "in_scope_accuracy": _ratio(correct[in_scope].sum(), in_scope.sum()),
        "oos_recall": _ratio((~answered[~in_scope]).sum(), (~in_scope).sum()),
        "coverage_at_target_precision": _ratio(n_answered, len(gold_a)),
        "answered_precision": _ratio((answered & correct).sum(), n_answered),
        "containment": _ratio(contained[in_scope].sum(), in_scope.sum()),
        "wrong_answer_rate": _ratio((answered & ~correct).sum(), len(gold_a)),
        "oracle_coverage_at_target": oracle_coverage(
            np.asarray(confidence, dtype=float), correct, target
        ),
        "clarify_rate": _ratio(clarified.sum(), len(gold_a)),
        "clarify_hit_rate": _ratio((clarified & clarify_hit).sum(), clarified.sum()),
        "handoff_rate": _ratio((type_a == "handoff").sum(), len(gold_a)),
    }


def oracle_coverage(confidence: np.ndarray, correct: np.ndarray, target: float) -> float | None:
    """The largest share of rows that one threshold on ``confidence`` answers with precision
    at least ``target`` on these very rows (the best threshold in hindsight)."""
    if len(confidence) == 0:
        return None
    order = np.argsort(-confidence, kind="stable")
    conf, hits = confidence[order], np.cumsum(correct[order])
    n = np.arange(1, len(conf) + 1)
    # a threshold can only cut between distinct confidences: use the last row of each tie
    last = np.r_[conf[1:] != conf[:-1], True]
    ok = last & (hits >= target * n - 1e-9)
    return round(float(n[ok].max() / len(conf)), 4) if ok.any() else 0.0


def label_text(label: str) -> str:
    """A label as words: ``card_arrival`` → ``card arrival``."""
    return " ".join(label.replace("_", " ").replace("-", " ").split())


def _latencies(engine: Engine, texts: Sequence[str], n: int, progress) -> list[float]:
    """Milliseconds for ``engine.decide`` one question at a time, after a warm-up."""
    if not texts:
        return []
    rng = np.random.default_rng(0)
    sample = [texts[i] for i in rng.permutation(len(texts))[:n]]
    for text in sample[:20]:
        engine.decide(text)
    out = []
    for i, text in enumerate(sample):
        start = time.perf_counter()
        engine.decide(text)
        out.append((time.perf_counter() - start) * 1000)
        if progress and (i + 1) % 100 == 0:
            progress("latency", i + 1, len(sample))
    return out


def _ratio(num, den) -> float | None:
    return round(float(num) / float(den), 4) if den else None
