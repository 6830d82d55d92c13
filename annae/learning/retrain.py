"""Retraining with a gate: a challenger is promoted only if it is not worse than the live model.

1. The held-out slice: ~15 % of the examples, chosen by a hash of each example id (so it does
   not move when other examples are added), at least one per entry with three or more examples.
   The challenger never trains on it.
2. Both models are scored on the part of the slice that neither has trained on (the live model's
   manifest lists its training example ids).
3. The challenger is promoted if accuracy, coverage and answered precision are each no more than
   ``tolerance`` below the live model's; otherwise it stays on disk as a rejected candidate.
   The comparison is written to ``models/vN/gate.json`` either way.

Only one retrain runs at a time (a lock file; a second one gets :class:`Busy`), and promotions
and rollbacks take another lock and switch ``LIVE`` with one atomic rename.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import Engine as DBEngine

from annae.dialogue.policy import decide, pre_check
from annae.kb import entries
from annae.kb.entries import OOS, TrainingExample
from annae.learning.feedback import LearningSettings
from annae.nlu.registry import ModelRegistry
from annae.nlu.text import detect_language
from annae.settings import Settings, get_settings
from annae.store.db import session_scope, utcnow

GATE = "gate.json"
HISTORY = "history.jsonl"
MIN_FAIR = 5  # fewer unseen held-out examples than this: compare with the live model's CV estimate
METRICS = ("accuracy", "coverage", "answered_precision")


class Busy(RuntimeError):
    """Another retrain or promotion holds the lock."""


class GateError(ValueError):
    """A promotion or rollback that cannot be done (unknown version, live model changed)."""


# --- the held-out slice ----------------------------------------------------------------------


def _unit(example_id: int) -> float:
    digest = hashlib.sha256(f"annae-holdout:{example_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def holdout_ids(examples: Sequence[TrainingExample], share: float = 0.15) -> set[int]:
    """Example ids held out from training: those whose hash falls under ``share``, at least one
    per label with ≥ 3 examples, and never all of a label's examples."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for ex in examples:
        if ex.example_id is not None:
            by_label[ex.label].append(ex.example_id)
    out: set[int] = set()
    for ids in by_label.values():
        ranked = sorted(ids, key=_unit)
        chosen = [i for i in ranked if _unit(i) < share]
        if len(ids) >= 3 and not chosen:
            chosen = ranked[:1]
        out.update(chosen[: len(ids) - 1])
    return out


# --- scoring ---------------------------------------------------------------------------------


def score(engine, texts: Sequence[str], gold: Sequence[str]) -> dict:
    """Accuracy (top-1 on in-scope questions), coverage (share answered) and answered precision."""
    if not texts:
        return {"n": 0, **{m: None for m in METRICS}}
    cands = []
    for start in range(0, len(texts), 256):
        cands.extend(engine.candidates(list(texts[start : start + 256])))
    answered, correct = [], []
    for text, cand, label in zip(texts, cands, gold, strict=True):
        d = decide(cand, engine.policy, language=detect_language(text), reason=pre_check(text))
        answered.append(d.type == "answer")
        correct.append(bool(cand) and cand[0].key == label)
    answered_a, correct_a = np.array(answered), np.array(correct)
    in_scope = np.array([g != OOS for g in gold])
    return {
        "n": len(texts),
        "accuracy": _ratio(correct_a[in_scope].sum(), in_scope.sum()),
        "coverage": _ratio(answered_a.sum(), len(texts)),
        "answered_precision": _ratio((answered_a & correct_a).sum(), answered_a.sum()),
    }


def _ratio(num, den) -> float | None:
    return round(float(num) / float(den), 4) if den else None


@dataclass
class GateResult:
    """The comparison of a challenger with the live model."""

    challenger: str
    live: str | None
    promoted: bool
    reasons: list[str]
    challenger_metrics: dict
    live_metrics: dict | None
    tolerance: float
    kb_revision: int
    n_holdout: int
    n_evaluated: int
    mode: str  # "first" | "same_slice" | "live_cv_estimate"
    author: str = "system"
    created_at: str = field(default_factory=lambda: utcnow().isoformat(timespec="seconds"))
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def compare(challenger: dict, live: dict | None, tolerance: float) -> tuple[bool, list[str]]:
    """Promote unless a metric is more than ``tolerance`` below the live model's."""
    if live is None:
        return True, ["no live model: the challenger becomes the first one"]
    reasons, ok = [], True
    for name in METRICS:
        c, ref = challenger.get(name), live.get(name)
        if ref is None:
            continue
        if c is None or c < ref - tolerance:
            ok = False
            reasons.append(f"{name} {c} is below the live {ref} by more than {tolerance}")
        else:
            reasons.append(f"{name} {c} vs live {ref}: ok")
    return ok, reasons


# --- locks and history -----------------------------------------------------------------------


@contextmanager
def file_lock(path: Path, *, wait: float = 0.0) -> Iterator[None]:
    """An exclusive ``flock`` on ``path``; :class:`Busy` if not free within ``wait`` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Busy(f"{path.name} is held by another process") from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _history(registry: ModelRegistry, event: dict) -> None:
    with (registry.root / HISTORY).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(event, ensure_ascii=False) + "\n")


def history(registry: ModelRegistry) -> list[dict]:
    """Promotions and rollbacks, oldest first."""
    path = registry.root / HISTORY
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def promote(
    registry: ModelRegistry,
    version: str,
    *,
    expected_live: str | None | bool = False,
    author: str = "system",
    action: str = "promote",
) -> str | None:
    """Make ``version`` live; returns the previous live version.

    With ``expected_live`` (a version or None) the switch happens only if the live model is still
    that one, so of two admins promoting at once exactly one wins and the other gets GateError.
    """
    if version not in registry.versions():
        raise GateError(f"no model {version} (known: {', '.join(registry.versions()) or 'none'})")
    with file_lock(registry.root / ".promote.lock", wait=30):
        before = registry.live_version()
        if expected_live is not False and before != expected_live:
            raise GateError(
                f"the live model changed to {before} meanwhile (expected {expected_live}); "
                "nothing was switched"
            )
        registry.set_live(version)
        _history(
            registry,
            {
                "at": utcnow().isoformat(timespec="seconds"),
                "action": action,
                "version": version,
                "previous": before,
                "author": author,
            },
        )
    return before


def rollback(registry: ModelRegistry, version: str, *, author: str = "system") -> str | None:
    """Make an earlier (or any saved) version live again; returns the one it replaced."""
    return promote(registry, version, author=author, action="rollback")


def gate_of(registry: ModelRegistry, version: str) -> dict | None:
    path = registry.path(version) / GATE
    return json.loads(path.read_text()) if path.exists() else None


def list_models(registry: ModelRegistry) -> list[dict]:
    """Every saved version, newest first, with its data, metrics and gate result."""
    live = registry.live_version()
    out = []
    for version in reversed(registry.versions()):
        manifest = registry.manifest(version)
        gate = gate_of(registry, version)
        data = manifest.get("data") or {}
        status = "live" if version == live else "saved"
        if gate is not None and not gate.get("promoted") and version != live:
            status = "rejected"
        out.append(
            {
                "version": version,
                "status": status,
                "created_at": manifest.get("created_at"),
                "author": manifest.get("author"),
                "kb_revision": manifest.get("kb_revision"),
                "n_examples": data.get("n_examples"),
                "data_hash": (data.get("hash") or "")[:12],
                "cv_accuracy": (manifest.get("metrics") or {}).get("cv_accuracy"),
                "gate": gate,
            }
        )
    return out


# --- the retrain -----------------------------------------------------------------------------


def retrain(
    db: DBEngine,
    *,
    settings: Settings | None = None,
    author: str = "system",
    tolerance: float | None = None,
    force: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> GateResult:
    """Train a challenger without the held-out slice, compare, promote or keep as rejected.

    Raises :class:`Busy` when another retrain holds the lock.
    """
    settings = settings or get_settings()
    knobs = LearningSettings()
    tolerance = knobs.gate_tolerance if tolerance is None else tolerance
    registry = ModelRegistry(settings.models_dir)
    started = time.perf_counter()
    with file_lock(registry.root / ".retrain.lock"):
        with session_scope(db) as session:
            examples = entries.training_examples(session)
            revision = entries.current_revision(session)
        if not any(e.label != OOS for e in examples):
            raise GateError("the knowledge base has no entries to train on")
        held = holdout_ids(examples, knobs.holdout_share)
        live_version = registry.live_version()
        info = registry.train_from_db(
            db,
            settings=settings,
            author=author,
            progress=progress,
            make_live=False,
            exclude_ids=held,
        )
        challenger = registry.load(info.version, threads=settings.threads, warm=False)
        live = None
        seen: set[int] = set()
        if live_version is not None:
            live = registry.load(live_version, threads=settings.threads, warm=False)
            seen = set((live.manifest.get("data") or {}).get("example_ids") or [])
        fair = [e for e in examples if e.example_id in held and e.example_id not in seen]
        slice_ = fair
        if live is None:
            mode = "first"
            slice_ = [e for e in examples if e.example_id in held]
        elif len(fair) >= MIN_FAIR:
            mode = "same_slice"
        else:
            mode = "live_cv_estimate"
            slice_ = [e for e in examples if e.example_id in held]
        texts, gold = [e.text for e in slice_], [e.label for e in slice_]
        c_metrics = score(challenger, texts, gold)
        l_metrics = None
        if live is not None and mode == "same_slice":
            l_metrics = score(live, texts, gold)
        elif live is not None:
            m = live.manifest.get("metrics") or {}
            l_metrics = {
                "n": None,
                "accuracy": m.get("cv_accuracy"),
                "coverage": None,
                "answered_precision": None,
                "note": "the live model trained on the held-out slice; its cross-validated "
                "accuracy is the reference",
            }
        ok, reasons = compare(c_metrics, l_metrics, tolerance)
        if force and not ok:
            reasons.append("promoted anyway (--force)")
        result = GateResult(
            challenger=info.version,
            live=live_version,
            promoted=False,
            reasons=reasons,
            challenger_metrics=c_metrics,
            live_metrics=l_metrics,
            tolerance=tolerance,
            kb_revision=revision,
            n_holdout=len(held),
            n_evaluated=len(slice_),
            mode=mode,
            author=author,
        )
        if ok or force:
            try:
                promote(registry, info.version, expected_live=live_version, author=author)
                result.promoted = True
            except GateError as exc:
                result.reasons.append(f"not promoted: {exc}")
        result.seconds = round(time.perf_counter() - started, 2)
        (registry.path(info.version) / GATE).write_text(
            json.dumps(result.to_dict(), ensure_ascii=False, indent=2)
        )
        return result
