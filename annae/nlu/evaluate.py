"""Evaluation on a labelled test set: the contract that outside checks use (``annae eval``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from annae.dialogue.policy import decide, pre_check
from annae.nlu.classifier import OOS
from annae.nlu.engine import Engine
from annae.nlu.features import FeatureConfig
from annae.nlu.text import detect_language

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
    features: FeatureConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    latency_sample: int = LATENCY_SAMPLE,
    label_names: bool = True,
    answers: Mapping[str, Sequence[str]] | None = None,
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

    documents: dict[str, list[str]] = (
        {lab: [label_text(lab)] for lab in known if label_text(lab)} if label_names else {}
    )
    for lab, texts in (answers or {}).items():
        if lab in known:
            documents.setdefault(lab, []).extend(t for t in texts if t and t.strip())
    engine = Engine.fit(
        train_texts,
        train_labels,
        features=features,
        documents=documents or None,
        target_precision=target_precision,
        oos_share=oos_share,
        progress=progress,
    )
    fit_seconds = engine.manifest["metrics"]["total_fit_seconds"]

    cands = []
    batch = 256
    for start in range(0, len(test_texts), batch):
        cands.extend(engine.candidates(test_texts[start : start + batch]))
        if progress:
            progress("scoring", min(start + batch, len(test_texts)), len(test_texts))
    types, top1 = [], []
    for text, cand in zip(test_texts, cands, strict=True):
        d = decide(cand, engine.policy, language=detect_language(text), reason=pre_check(text))
        types.append(d.type)
        top1.append(cand[0].key if cand else None)
    types = np.array(types)
    top1 = np.array(top1, dtype=object)
    in_scope = gold != OOS
    answered = types == "answer"
    correct = top1 == gold
    in_top3 = np.array(
        [g in [c.key for c in cand[:3]] for g, cand in zip(gold, cands, strict=True)]
    )

    latencies = _latencies(engine, test_texts, latency_sample, progress)
    n_answered = int(answered.sum())
    return {
        "in_scope_accuracy": _ratio(correct[in_scope].sum(), in_scope.sum()),
        "in_scope_top3_accuracy": _ratio(in_top3[in_scope].sum(), in_scope.sum()),
        "oos_recall": _ratio((~answered[~in_scope]).sum(), (~in_scope).sum()),
        "coverage_at_target_precision": _ratio(n_answered, len(gold)),
        "answered_precision": _ratio((answered & correct).sum(), n_answered),
        "clarify_rate": _ratio((types == "clarify").sum(), len(gold)),
        "handoff_rate": _ratio((types == "handoff").sum(), len(gold)),
        "threshold": round(engine.policy.threshold, 4),
        "clarify_threshold": round(engine.policy.clarify_threshold, 4),
        "target_precision": target_precision,
        "oos_share_assumed": oos_share,
        "expected_precision": engine.manifest["metrics"].get("expected_precision"),
        "cv_accuracy": engine.manifest["metrics"].get("cv_accuracy"),
        "n_train": len(train_texts),
        "n_test": len(gold),
        "n_test_oos": int((~in_scope).sum()),
        "unseen_test_labels": unseen,
        "fit_seconds": fit_seconds,
        "latency_ms_p50": round(float(np.percentile(latencies, 50)), 2) if latencies else None,
        "latency_ms_p99": round(float(np.percentile(latencies, 99)), 2) if latencies else None,
        "latency_n": len(latencies),
        "encoder": engine.classifier.features.encoder,
        "classifier": engine.classifier.model,
    }


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
