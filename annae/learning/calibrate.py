"""Moving the live model's operating point without retraining.

Each model stores its operating curve (``manifest["operating_points"]``: for target precision
0.90 / 0.95 / 0.98, the answer threshold and the expected precision, coverage and
containment, estimated from its training data). An admin picks one; the change is a new model
version that shares the trained classifier and encoder and differs only in its thresholds,
made live through the same promotion as a retrain, so ``annae rollback`` (and the history)
restores the previous operating point. Every change is written to the audit log.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from sqlalchemy import Engine as DBEngine

from annae.learning.retrain import GateError, promote
from annae.nlu.registry import ModelRegistry
from annae.store.db import session_scope


@dataclass(frozen=True)
class OperatingPointChange:
    previous: str
    version: str
    target: float
    threshold: float
    clarify_threshold: float
    expected_precision: float
    expected_coverage: float

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def operating_points(registry: ModelRegistry, version: str | None = None) -> list[dict]:
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
    engine = registry.load(live, warm=False)
    clf = copy.copy(engine.classifier)
    clf.target_precision = target
    clf.threshold_ = float(point["threshold"])
    clf.clarify_threshold_ = min(clf.clarify_threshold_, clf.threshold_)
    engine.classifier = clf
    engine = engine.with_thresholds(clf.threshold_, clf.clarify_threshold_)
    engine.manifest = {
        **engine.manifest,
        "threshold": clf.threshold_,
        "clarify_threshold": clf.clarify_threshold_,
        "operating_point": {"target": target, "from_version": live, "author": author},
        "author": author,
    }
    engine.manifest["metrics"] = {
        **engine.manifest.get("metrics", {}),
        "target_precision": target,
        "expected_precision": point["expected_precision"],
        "expected_coverage": point["expected_coverage"],
    }
    info = registry.save(engine, make_live=False)
    promote(registry, info.version, expected_live=live, author=author, action="operating_point")
    change = OperatingPointChange(
        previous=live,
        version=info.version,
        target=target,
        threshold=round(clf.threshold_, 4),
        clarify_threshold=round(clf.clarify_threshold_, 4),
        expected_precision=point["expected_precision"],
        expected_coverage=point["expected_coverage"],
    )
    if db_engine is not None:
        from annae.privacy import audit

        with session_scope(db_engine) as session:
            audit.record(session, author, "model.operating_point", info.version, change.to_dict())
    return change


__all__ = ["OperatingPointChange", "operating_points", "set_operating_point"]
