"""Moving the live model's operating point without retraining.

Each model stores its operating curve (``manifest["operating_points"]``: for target precision
0.90 / 0.95 / 0.98, the answer threshold and the expected precision, coverage and
containment, estimated from its training data). An admin picks one; the change is a new model
version that shares the trained classifier and encoder and differs only in its thresholds,
made live through the same promotion as a retrain, so ``annae rollback`` (and the history)
restores the previous operating point. Every change is written to the audit log.

From labelled traffic (:func:`traffic_rows`, :func:`from_traffic`): agents' labels of
handed-off questions (was the bot's best guess the entry the agent chose?) and customers'
ratings of answers (helpful or not) give, for the live model, pairs of (confidence, right).
Each pair is weighted by the inverse of its kind's labelling rate (answers rated out of all
answers, hand-offs labelled out of all hand-offs), so a few rated answers do not stand for
every answer. The proposed threshold is the lowest at which the weighted precision on that
traffic reaches the target with at least :data:`MIN_LABELLED` labelled questions at or above
it; with fewer, or if no threshold reaches the target, nothing changes (the gate).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Engine as DBEngine
from sqlalchemy import select
from sqlalchemy.orm import Session

from annae.dialogue import history
from annae.learning import oos_share
from annae.learning.retrain import GateError, promote
from annae.nlu.registry import ModelRegistry
from annae.store.db import session_scope, utcnow
from annae.store.tables.learning import AnswerRating, ConversationLabel

MIN_LABELLED = 30
"""Labelled questions needed at or above a threshold before traffic may move it."""


@dataclass(frozen=True)
class OperatingPointChange:
    previous: str
    version: str
    target: float
    threshold: float
    clarify_threshold: float
    expected_precision: float
    expected_coverage: float | None  # None when labelled traffic moved it (no coverage estimate)

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def operating_points(registry: ModelRegistry, version: str | None = None) -> list[dict[str, Any]]:
    """The operating curve of ``version`` (default: the live model); empty for old models."""
    version = version or registry.live_version()
    if version is None:
        return []
    return list(registry.manifest(version).get("operating_points") or [])


def set_operating_point(
    registry: ModelRegistry,
    target: float,
    *,
    author: str,
    db_engine: DBEngine | None = None,
) -> OperatingPointChange:
    """Make live a copy of the live model whose answer threshold is its curve's point for
    ``target``; refuse a target the model cannot reach or a curve it does not have."""
    live = registry.live_version()
    if live is None:
        raise GateError("no live model: run annae train first")
    points = {round(p["target"], 4): p for p in operating_points(registry, live)}
    point = points.get(round(target, 4))
    if point is None:
        known = ", ".join(f"{t:.2f}" for t in sorted(points)) or "none (retrain the model)"
        raise GateError(f"model {live} has no operating point for {target:.2f} (known: {known})")
    if not point["reached_target"]:
        raise GateError(
            f"model {live} cannot reach precision {target:.2f} on its training data; "
            "nothing was changed"
        )
    return _switch(
        registry,
        live,
        target,
        float(point["threshold"]),
        expected=(point["expected_precision"], point["expected_coverage"]),
        source="curve",
        author=author,
        db_engine=db_engine,
    )


def _switch(
    registry: ModelRegistry,
    live: str,
    target: float,
    threshold: float,
    *,
    expected: tuple[float, float | None],
    source: str,
    author: str,
    db_engine: DBEngine | None,
) -> OperatingPointChange:
    """Save and make live a copy of ``live`` answering from ``threshold``; audit it."""
    engine = registry.load(live, warm=False)
    clf = copy.copy(engine.classifier)
    clf.target_precision = target
    clf.threshold_ = threshold
    clf.clarify_threshold_ = min(clf.clarify_threshold_, threshold)
    engine.classifier = clf
    engine = engine.with_thresholds(clf.threshold_, clf.clarify_threshold_)
    engine.manifest = {
        **engine.manifest,
        "threshold": clf.threshold_,
        "clarify_threshold": clf.clarify_threshold_,
        "operating_point": {
            "target": target,
            "from_version": live,
            "source": source,
            "author": author,
        },
        "author": author,
        "created_at": utcnow().isoformat(timespec="seconds"),
    }
    engine.manifest["metrics"] = {
        **engine.manifest.get("metrics", {}),
        "target_precision": target,
        "expected_precision": expected[0],
        "expected_coverage": expected[1],
    }
    info = registry.save(engine, make_live=False)
    promote(registry, info.version, expected_live=live, author=author, action="operating_point")
    change = OperatingPointChange(
        previous=live,
        version=info.version,
        target=target,
        threshold=round(clf.threshold_, 4),
        clarify_threshold=round(clf.clarify_threshold_, 4),
        expected_precision=expected[0],
        expected_coverage=expected[1],
    )
    if db_engine is not None:
        from annae.privacy import audit

        with session_scope(db_engine) as session:
            audit.record(
                session,
                author,
                "model.operating_point",
                info.version,
                {**change.to_dict(), "source": source},
            )
    return change


# --- labelled traffic ------------------------------------------------------------------------


@dataclass(frozen=True)
class TrafficRow:
    confidence: float
    right: bool
    answered: bool


@dataclass(frozen=True)
class TrafficEstimate:
    """What labelled traffic says about a model's operating point."""

    model_version: str
    n_labelled: int
    n_rated_answers: int
    n_labelled_handoffs: int
    observed_precision_live: float | None  # weighted, at the live threshold
    proposed_threshold: float | None
    proposed_precision: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def traffic_rows(session: Session, model_version: str) -> tuple[list[TrafficRow], dict[str, int]]:
    """Labelled questions the model ``model_version`` decided, and its decision counts."""
    counts = {"answer": 0, "handoff": 0, "clarify": 0}
    # counted in SQL: the page asks on every load
    for name, n in history.decision_counts(session, model_version).items():
        if name in counts:
            counts[name] = n
    labels = list(session.scalars(select(ConversationLabel)))
    asked: dict[int, int] = {}  # rating id → the question its answer answered
    ratings = list(session.scalars(select(AnswerRating)))
    for rating in ratings:
        answer = history.get_message(session, rating.message_id)
        question = history.customer_message_before(session, answer) if answer is not None else None
        if question is not None:
            asked[rating.id] = question.id
    wanted = {label.message_id for label in labels if label.message_id} | set(asked.values())
    decisions: dict[int, dict[str, Any]] = {
        msg_id: decision
        for msg_id, decision in history.decisions(session, wanted).items()
        if isinstance(decision, dict) and decision.get("model_version") == model_version
    }  # only the decisions that were labelled or rated are read
    rows: list[TrafficRow] = []
    for label in labels:
        d = decisions.get(label.message_id or -1)
        if d is None or d.get("type") == "answer":
            continue
        top = (d.get("candidates") or [{}])[0]
        right = label.kind == "entry" and top.get("entry_id") == label.entry_id
        rows.append(TrafficRow(float(d.get("confidence") or 0.0), bool(right), False))
    for rating in ratings:
        d = decisions.get(asked.get(rating.id, -1))
        if d is None or d.get("type") != "answer":
            continue
        rows.append(TrafficRow(float(d.get("confidence") or 0.0), bool(rating.helpful), True))
    return rows, counts


def estimate(
    rows: list[TrafficRow],
    counts: dict[str, int],
    *,
    live_threshold: float,
    target: float,
    model: str,
) -> TrafficEstimate:
    """The weighted precision curve of labelled traffic, and the threshold it supports."""
    rated = sum(r.answered for r in rows)
    labelled = len(rows) - rated
    live_prec: float | None = None
    best: tuple[float, float] | None = None
    if len(rows) < MIN_LABELLED:
        reason = f"{len(rows)} labelled questions; at least {MIN_LABELLED} are needed"
    else:
        conf = np.array([r.confidence for r in rows])
        right = np.array([r.right for r in rows], dtype=float)
        answered = np.array([r.answered for r in rows])
        w_answer = counts.get("answer", 0) / rated if rated else 0.0
        w_other = (
            (counts.get("handoff", 0) + counts.get("clarify", 0)) / labelled if labelled else 0.0
        )
        weight = np.where(answered, max(w_answer, 1.0), max(w_other, 1.0))

        def precision_at(t: float) -> tuple[float | None, int]:
            above = conf >= t
            if not above.any():
                return None, 0
            return float((weight * right)[above].sum() / weight[above].sum()), int(above.sum())

        live_prec, _ = precision_at(live_threshold)
        for t in np.unique(conf)[::-1]:  # high to low: keep the lowest that still holds
            prec, n = precision_at(float(t))
            if n >= MIN_LABELLED and prec is not None and prec >= target:
                best = (float(t), prec)
        reason = "ok" if best else f"no threshold reaches {target:.2f} on labelled traffic"
    return TrafficEstimate(
        model_version=model,
        n_labelled=len(rows),
        n_rated_answers=rated,
        n_labelled_handoffs=labelled,
        observed_precision_live=live_prec,
        proposed_threshold=best[0] if best else None,
        proposed_precision=round(best[1], 4) if best else None,
        reason=reason,
    )


def from_traffic(
    registry: ModelRegistry,
    db_engine: DBEngine,
    *,
    target: float | None = None,
    author: str,
    apply: bool = False,
) -> tuple[TrafficEstimate, OperatingPointChange | None]:
    """Estimate the live model's precision on labelled traffic and, with ``apply``, make
    live the threshold it supports (never one below ``target`` on that traffic)."""
    live = registry.live_version()
    if live is None:
        raise GateError("no live model: run annae train first")
    manifest = registry.manifest(live)
    target = target or (manifest.get("metrics") or {}).get("target_precision") or 0.95
    with session_scope(db_engine) as session:
        rows, counts = traffic_rows(session, live)
    est = estimate(
        rows, counts, live_threshold=float(manifest["threshold"]), target=target, model=live
    )
    if not apply or est.proposed_threshold is None:
        return est, None
    change = _switch(
        registry,
        live,
        target,
        est.proposed_threshold,
        expected=(est.proposed_precision or 0.0, None),
        source="traffic",
        author=author,
        db_engine=db_engine,
    )
    return est, change


def marked_points(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """A manifest's operating points, each with ``live``: it is the manifest's answer threshold."""
    threshold = float(manifest.get("threshold", -1))
    return [
        {**p, "live": bool(p["reached_target"]) and abs(float(p["threshold"]) - threshold) < 1e-4}
        for p in manifest.get("operating_points") or []
    ]


def report(registry: ModelRegistry, db_engine: DBEngine) -> dict[str, Any]:
    """The live model's operating point for the KB and analytics pages: its curve (each point
    marked ``live`` when it is the live threshold), what training data expected at the live
    threshold, and what labelled traffic observed there (``traffic``). ``version`` is None
    before the first model."""
    live = registry.live_version()
    if live is None:
        return {"version": None, "points": [], "traffic": None}
    manifest = registry.manifest(live)
    metrics = manifest.get("metrics") or {}
    threshold = float(manifest["threshold"])
    target = float(metrics.get("target_precision") or 0.95)
    with session_scope(db_engine) as session:
        rows, counts = traffic_rows(session, live)
    est = estimate(rows, counts, live_threshold=threshold, target=target, model=live)
    return {
        "version": live,
        "target": target,
        "threshold": threshold,
        "clarify_threshold": manifest.get("clarify_threshold"),
        "expected_precision": metrics.get("expected_precision"),
        "expected_coverage": metrics.get("expected_coverage"),
        "oos_share_assumed": metrics.get("oos_share_assumed"),
        "oos_share_source": metrics.get("oos_share_source"),  # traffic, setting, default
        "oos_share_min_labelled": oos_share.MIN_LABELLED,
        "operating_point": manifest.get("operating_point"),
        "points": marked_points(manifest),
        "traffic": est.to_dict(),
        "min_labelled": MIN_LABELLED,
    }


__all__ = [
    "OperatingPointChange",
    "TrafficEstimate",
    "estimate",
    "from_traffic",
    "marked_points",
    "operating_points",
    "report",
    "set_operating_point",
    "traffic_rows",
]
