"""Retraining with a gate that cannot promote a worse model.

1. The held-out slice: ~15 % of the examples, chosen by a hash of each example id (so it does
   not move when other examples are added), at least one per entry with three or more examples.
2. Two models are trained without that slice: the **reference** on what the live model learnt
   from (its manifest lists its training example ids; those still in the KB, current text), the
   **challenger** on everything in the KB now. Both are scored on the same held-out slice, which
   neither trained on, and, where agents labelled enough handed-off conversations, on that
   labelled traffic too (the held-out traffic examples, and "not a FAQ question" labels as
   out-of-scope questions that should not be answered).
3. The challenger passes if accuracy, coverage (the share answered at its own threshold, chosen
   for the target precision) and answered precision are each no more than ``tolerance`` below
   the reference's, on every slice. Then the promoted model is **refit on all examples** (the
   held-out slice included: a live model never has fewer examples than the KB holds) and goes
   live. A refused retrain saves no model; its comparison is kept in ``models/gates/`` and in
   the history, and says why.
   Before this gate, the challenger trained without the held-out slice was itself promoted
   (fewer examples than the KB: 432 of 529 on the demo) and compared against the live model's
   cross-validated accuracy only, since the live model had trained on the whole slice.

Only one retrain runs at a time (a lock file; a second one gets :class:`Busy`), and promotions
and rollbacks take another lock and switch ``LIVE`` with one atomic rename.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from sqlalchemy import Engine as DBEngine

from annae import errors
from annae.kb import entries
from annae.kb.entries import OOS, TrainingExample
from annae.kb.training import fit_examples, reusable_models
from annae.learning import oos_share
from annae.nlu.evaluate import scored
from annae.nlu.registry import ModelRegistry
from annae.settings import Settings, get_settings
from annae.store.db import session_scope, utcnow

GATE = "gate.json"
HISTORY = "history.jsonl"
GATES = "gates"
MIN_TRAFFIC = 5  # fewer labelled held-out conversations than this: traffic is reported, not gated
METRICS = ("accuracy", "coverage", "answered_precision")


class Busy(errors.Conflict, RuntimeError):
    """Another retrain or promotion holds the lock."""


class GateError(errors.Conflict, ValueError):
    """A promotion or rollback that cannot be done (unknown version, live model changed)."""


class UnknownModel(errors.NotFound, GateError):
    """No saved model has that version."""


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
    cands, scorers = scored(engine, list(texts))
    answered, correct = [], []
    decisions = engine.decide_ranked(texts, cands, scorers)  # the service's own rule
    for cand, label, d in zip(cands, gold, decisions, strict=True):
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
    """The comparison of a challenger with the live model (through its reference)."""

    challenger: str | None  # the promoted (or force-promoted) version; None when refused
    live: str | None
    promoted: bool
    reasons: list[str]
    challenger_metrics: dict
    live_metrics: dict | None
    tolerance: float
    kb_revision: int
    n_holdout: int
    n_evaluated: int
    mode: str  # "first" | "same_slice" | "live_model" (no example ids: the live model itself)
    traffic: dict = field(default_factory=dict)  # {"n", "challenger", "live"} on labelled traffic
    before: dict = field(default_factory=dict)  # live model: version, n_examples, threshold, cv
    after: dict = field(default_factory=dict)  # the model that went live (or would have)
    kb_changes: dict = field(default_factory=dict)
    refused: bool = False
    author: str = "system"
    created_at: str = field(default_factory=lambda: utcnow().isoformat(timespec="seconds"))
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2))


def compare(
    challenger: dict, live: dict | None, tolerance: float, *, where: str = ""
) -> tuple[bool, list[str]]:
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
            reasons.append(f"{name}{where} {c} is below the live {ref} by more than {tolerance}")
        else:
            reasons.append(f"{name}{where} {c} vs live {ref}: ok")
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
        raise UnknownModel(
            f"no model {version} (known: {', '.join(registry.versions()) or 'none'})"
        )
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


def refused_gates(registry: ModelRegistry, limit: int = 5) -> list[dict]:
    """The latest refused retrains, newest first (they saved no model)."""
    folder = registry.root / GATES
    if not folder.exists():
        return []
    files = sorted(folder.glob("*.json"), reverse=True)[:limit]
    return [json.loads(f.read_text("utf-8")) for f in files]


def last_gate(registry: ModelRegistry) -> dict | None:
    """The latest retrain's comparison, promoted or refused."""
    found = [g for g in (gate_of(registry, v) for v in registry.versions()) if g]
    found += refused_gates(registry, 1)
    return max(found, key=lambda g: g.get("created_at") or "", default=None)


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


def _labelled_traffic(session, held: set[int], examples: Sequence[TrainingExample]) -> list:
    """Labelled handed-off questions neither gate model trains on: held-out examples made from
    conversations, and the questions agents called "not a FAQ question" (out of scope)."""
    from sqlalchemy import select

    from annae.dialogue import history
    from annae.store.tables.learning import ConversationLabel

    from_traffic = entries.ids_from_conversations(session, held)
    out = [e for e in examples if e.example_id in from_traffic]
    known = {e.text for e in examples}
    not_faq = select(ConversationLabel.message_id).where(ConversationLabel.kind == "not_faq")
    texts = history.message_texts(session, not_faq)  # one statement: the labels are a subquery
    out += [TrainingExample(text, OOS) for text in texts if text and text not in known]
    return out


def _live_examples(
    manifest: dict, examples: Sequence[TrainingExample], held: set[int]
) -> list[TrainingExample]:
    """What the live model learnt, outside the held-out slice: its examples still in the KB
    (current text), with the label it learnt them as (older manifests: the current label)."""
    data = manifest.get("data") or {}
    ids = data.get("example_ids") or []
    labels = dict(zip(ids, data.get("example_labels") or [], strict=False))
    seen = set(ids)
    return [
        TrainingExample(e.text, labels.get(e.example_id, e.label), e.example_id)
        for e in examples
        if e.example_id in seen and e.example_id not in held
    ]


def kb_changes(
    session,
    live_manifest: dict | None,
    examples: Sequence[TrainingExample],
    live_answers: dict[str, dict] | None = None,
) -> dict:
    """What changed in the KB since the live model learnt from it."""
    data = (live_manifest or {}).get("data") or {}
    seen = set(data.get("example_ids") or [])
    since = (live_manifest or {}).get("kb_revision") or 0
    added = [e for e in examples if e.example_id not in seen]
    current = {e.example_id for e in examples}
    by_label = Counter(e.label for e in added)
    revisions = entries.revision_summaries_since(session, since, limit=20)
    return {
        "kb_revision_from": since,
        "kb_revision_to": entries.current_revision(session),
        "n_examples": len(examples),
        "examples_added": len(added),
        "examples_removed": len(seen - current),
        "added_by_entry": dict(by_label.most_common(10)),
        "added_texts": [f"{e.label}: {e.text}"[:200] for e in added[:10]],
        "revisions": list(revisions),
        "answers_changed": entries.stale_anchors(session, live_answers or {}),
    }


def _model_facts(manifest: dict | None, version: str | None) -> dict:
    if not manifest:
        return {}
    return {
        "version": version,
        "n_examples": (manifest.get("data") or {}).get("n_examples"),
        "threshold": _round(manifest.get("threshold")),
        "clarify_threshold": _round(manifest.get("clarify_threshold")),
        "cv_accuracy": (manifest.get("metrics") or {}).get("cv_accuracy"),
    }


def _round(value) -> float | None:
    return None if value is None else round(float(value), 4)


def retrain(
    db: DBEngine,
    *,
    settings: Settings | None = None,
    author: str = "system",
    tolerance: float | None = None,
    force: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> GateResult:
    """Train the reference and the challenger without the held-out slice, compare them on it
    (and on labelled traffic), and when the challenger is not worse refit it on every example
    and make that live. A refused retrain saves no model.

    Raises :class:`Busy` when another retrain holds the lock.
    """
    settings = settings or get_settings()
    tolerance = settings.gate_tolerance if tolerance is None else tolerance
    registry = ModelRegistry(settings.models_dir)
    started = time.perf_counter()
    with file_lock(registry.root / ".retrain.lock"):
        with session_scope(db) as session:
            examples = entries.training_examples(session)
            answers = entries.answers(session)
            revision = entries.current_revision(session)
            held = holdout_ids(examples, settings.holdout_share)
            traffic = _labelled_traffic(session, held, examples)
            live_version = registry.live_version()
            live_manifest = registry.manifest(live_version) if live_version else None
            live_answers = None
            if live_version is not None:
                path = registry.path(live_version) / "answers.json"
                live_answers = json.loads(path.read_text("utf-8")) if path.exists() else None
            changes = kb_changes(session, live_manifest, examples, live_answers)
            share = oos_share.resolve(settings, session)
        if not any(e.label != OOS for e in examples):
            raise GateError("the knowledge base has no entries to train on")
        fit = partial(
            fit_examples,
            answers=answers,
            settings=settings,
            author=author,
            kb_revision=revision,
            progress=progress,
            oos_share=share.pair(),
            reuse=reusable_models(registry),
        )
        slice_ = [e for e in examples if e.example_id in held]
        texts, gold = [e.text for e in slice_], [e.label for e in slice_]
        challenger = fit([e for e in examples if e.example_id not in held], excluded=held)
        c_metrics = score(challenger, texts, gold)
        l_metrics, mode = None, "first"
        traffic_out: dict = {"n": len(traffic)}
        if live_manifest is not None:
            mode = "same_slice"
            known = _live_examples(live_manifest, examples, held)
            if any(e.label != OOS for e in known):
                reference = fit(known, excluded=held)
            else:  # a model trained elsewhere (no example ids): itself, on the same slice
                mode = "live_model"
                assert live_version is not None  # live_manifest is its manifest
                reference = registry.load(live_version, threads=settings.threads, warm=False)
            l_metrics = score(reference, texts, gold)
            if traffic:
                t_texts, t_gold = [e.text for e in traffic], [e.label for e in traffic]
                traffic_out.update(
                    challenger=score(challenger, t_texts, t_gold),
                    live=score(reference, t_texts, t_gold),
                )
        ok, reasons = compare(c_metrics, l_metrics, tolerance)
        if l_metrics is not None and len(traffic) >= MIN_TRAFFIC:
            t_ok, t_reasons = compare(
                traffic_out["challenger"], traffic_out["live"], tolerance, where=" (traffic)"
            )
            ok, reasons = ok and t_ok, reasons + t_reasons
        elif traffic:
            reasons.append(
                f"labelled traffic: {len(traffic)} held-out question(s), fewer than "
                f"{MIN_TRAFFIC}: reported, not gated"
            )
        result = GateResult(
            challenger=None,
            live=live_version,
            promoted=False,
            reasons=reasons,
            challenger_metrics={**c_metrics, "threshold": _round(challenger.policy.threshold)},
            live_metrics=(
                None
                if l_metrics is None
                else {**l_metrics, "threshold": _round(reference.policy.threshold)}
            ),
            tolerance=tolerance,
            kb_revision=revision,
            n_holdout=len(held),
            n_evaluated=len(slice_),
            mode=mode,
            traffic=traffic_out,
            before=_model_facts(live_manifest, live_version),
            kb_changes=changes,
            refused=not ok,
            author=author,
        )
        if ok or force:
            if force and not ok:
                reasons.append("promoted anyway (--force)")
            final = fit(examples)  # every example: the held-out slice too
            info = registry.save(final, make_live=False)
            result.challenger = info.version
            result.after = _model_facts(final.manifest, info.version)
            try:
                promote(registry, info.version, expected_live=live_version, author=author)
                result.promoted = True
            except GateError as exc:
                result.reasons.append(f"not promoted: {exc}")
            result.seconds = round(time.perf_counter() - started, 2)
            result.write(registry.path(info.version) / GATE)
            return result
        result.reasons.append("refused: the live model stays; no new model was saved")
        result.seconds = round(time.perf_counter() - started, 2)
        folder = registry.root / GATES
        folder.mkdir(parents=True, exist_ok=True)
        result.write(folder / f"{utcnow().strftime('%Y%m%dT%H%M%S%f')}.json")
        _history(
            registry,
            {
                "at": result.created_at,
                "action": "refused",
                "version": None,
                "previous": live_version,
                "author": author,
                "reasons": [r for r in reasons if "below" in r],
            },
        )
        return result
