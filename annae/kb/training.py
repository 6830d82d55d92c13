"""Training the answer engine on the knowledge base in the database: the KB reads the entries and
their examples and hands texts, labels and answers to :meth:`annae.nlu.engine.Engine.fit` (the
engine itself never opens the database)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Sequence
from pathlib import Path

from sqlalchemy import Engine as DBEngine

from annae.kb import entries
from annae.nlu.engine import Engine
from annae.nlu.features import FeatureConfig
from annae.nlu.registry import ModelInfo, ModelRegistry
from annae.settings import Settings, get_settings
from annae.store.db import session_scope


def train_from_db(
    registry: ModelRegistry,
    db_engine: DBEngine,
    *,
    settings: Settings | None = None,
    author: str = "system",
    progress=None,
    make_live: bool = True,
    exclude_ids: Collection[int] = (),
    oos_share: tuple[float, str] | None = None,
) -> ModelInfo:
    """Train on the knowledge base in the database and save a new version in ``registry``.

    ``exclude_ids``: example ids never to train on (the held-out slice of ``annae retrain``).
    ``oos_share``: the out-of-scope share to assume and where it comes from
    (:func:`annae.learning.oos_share.resolve`); None: the live model's when labelled traffic
    set it (a retrain after an erasure keeps it), else the setting.
    """
    settings = settings or get_settings()
    if oos_share is None:
        live = registry.live_version()
        metrics = (registry.manifest(live).get("metrics") or {}) if live else {}
        if metrics.get("oos_share_source") == "traffic":
            oos_share = (float(metrics["oos_share_assumed"]), "traffic")
    excluded = set(exclude_ids)
    with session_scope(db_engine) as session:
        examples = [e for e in entries.training_examples(session) if e.example_id not in excluded]
        answers = entries.answers(session)
        revision = entries.current_revision(session)
    engine = fit_examples(
        examples,
        answers,
        settings=settings,
        author=author,
        kb_revision=revision,
        progress=progress,
        excluded=excluded,
        oos_share=oos_share,
        reuse=reusable_models(registry),
    )
    return registry.save(engine, make_live=make_live)


def reusable_models(registry: ModelRegistry) -> list[Path]:
    """The folders of the live and the latest model, whose int8 Korean encoder a training takes
    instead of building it again when it was made the same way (:func:`annae.nlu.e5int8.reusable`)."""
    versions = registry.versions()
    live = registry.live_version()
    chosen = [v for v in (live, versions[-1] if versions else None) if v in versions]
    return [registry.path(v) for v in dict.fromkeys(chosen)]


def fit_examples(
    examples: Sequence[entries.TrainingExample],
    answers: dict[str, dict],
    *,
    settings: Settings,
    author: str = "system",
    kb_revision: int = 0,
    progress=None,
    excluded: Collection[int] = (),
    oos_share: tuple[float, str] | None = None,
    reuse: Sequence[Path] = (),
) -> Engine:
    """Train an engine (not saved) on ``examples``, with the entries' answers as anchor texts;
    ``oos_share``: (share, source) to assume instead of ``settings.oos_share``; ``reuse``: saved
    model folders to take the int8 Korean encoder from (:func:`reusable_models`)."""
    share, source = oos_share or (settings.oos_share, settings.oos_share_source)
    engine = Engine.fit(
        [e.text for e in examples],
        [e.label for e in examples],
        answers,
        documents={key: [info["answer"]] for key, info in answers.items()},
        features=FeatureConfig(encoder=settings.encoder),
        target_precision=settings.target_precision,
        oos_share=share,
        clarify_precision=settings.clarify_precision,
        top_k=settings.top_k,
        threads=settings.threads,
        progress=progress,
        reuse=reuse,
        fast_path=settings.fast_path,
        manifest={
            "kb_revision": kb_revision,
            "author": author,
            "data": {
                "n_examples": len(examples),
                "hash": entries.data_hash(examples),
                "example_ids": [e.example_id for e in examples],
                # what each example was learnt as (a later label change must not rewrite history)
                "example_labels": [e.label for e in examples],
                "excluded_ids": sorted(excluded),
                "answers_hash": answers_hash(answers),
            },
        },
    )
    engine.manifest["metrics"]["oos_share_source"] = source
    return engine


def answers_hash(answers: dict[str, dict]) -> str:
    """A hash of the entries' answer texts the model used as anchors (to notice stale ones)."""
    blob = json.dumps(
        {k: v.get("answer") for k, v in sorted(answers.items())}, ensure_ascii=False
    ).encode()
    return hashlib.sha256(blob).hexdigest()
