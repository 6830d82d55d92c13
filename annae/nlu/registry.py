"""Versioned models on disk: ``models/v1``, ``models/v2``, … and a ``LIVE`` pointer.

Serving processes call :meth:`ModelRegistry.live_version` (one small file read)
to notice a retrain and load the new version without restarting.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine as DBEngine

from annae.kb import entries
from annae.nlu.engine import MANIFEST, Engine
from annae.nlu.features import FeatureConfig
from annae.settings import Settings, get_settings
from annae.store.db import session_scope

_VERSION = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class ModelInfo:
    version: str
    path: Path
    manifest: dict


class ModelRegistry:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def versions(self) -> list[str]:
        """Saved versions, oldest first."""
        if not self.root.exists():
            return []
        found = [
            p.name
            for p in self.root.iterdir()
            if _VERSION.match(p.name) and (p / MANIFEST).exists()
        ]
        return sorted(found, key=lambda v: int(v[1:]))

    def path(self, version: str) -> Path:
        if not _VERSION.match(version):
            raise ValueError(f"not a model version: {version!r} (expected v1, v2, …)")
        return self.root / version

    def live_version(self) -> str | None:
        try:
            version = (self.root / "LIVE").read_text().strip()
        except FileNotFoundError:
            return None
        return version or None

    def set_live(self, version: str) -> None:
        """Point ``LIVE`` at ``version`` atomically (readers see the old or the new, never half)."""
        if not (self.path(version) / MANIFEST).exists():
            raise FileNotFoundError(f"model {version} does not exist in {self.root}")
        tmp = self.root / f".LIVE.{os.getpid()}"
        tmp.write_text(version)
        os.replace(tmp, self.root / "LIVE")

    def _allocate(self) -> tuple[str, Path]:
        self.root.mkdir(parents=True, exist_ok=True)
        n = (
            max((int(p.name[1:]) for p in self.root.iterdir() if _VERSION.match(p.name)), default=0)
            + 1
        )
        while True:
            try:
                (self.root / f"v{n}").mkdir()  # atomic: two trainers never get the same number
                return f"v{n}", self.root / f"v{n}"
            except FileExistsError:
                n += 1

    def save(self, engine: Engine, *, make_live: bool = True) -> ModelInfo:
        version, path = self._allocate()
        engine.manifest["version"] = version
        engine.save(path)
        if make_live:
            self.set_live(version)
        return ModelInfo(version, path, engine.manifest)

    def load(self, version: str, *, threads: int = 1, warm: bool = True) -> Engine:
        """A saved version, with the serving policy's out-of-scope threshold from the settings."""
        from dataclasses import replace

        engine = Engine.load(self.path(version), threads=threads, warm=False)
        override = get_settings().oos_threshold  # None: the model's own
        if override is not None:
            engine.policy = replace(engine.policy, oos_threshold=override)
        if warm:
            engine.warm_up()
        return engine

    def load_live(self, *, threads: int | None = None, warm: bool = True) -> Engine | None:
        version = self.live_version()
        if version is None:
            return None
        return self.load(version, threads=threads or get_settings().threads, warm=warm)

    def manifest(self, version: str) -> dict:
        import json

        return json.loads((self.path(version) / MANIFEST).read_text())

    def train_from_db(
        self,
        db_engine: DBEngine,
        *,
        settings: Settings | None = None,
        author: str = "system",
        progress=None,
        make_live: bool = True,
        exclude_ids: Collection[int] = (),
    ) -> ModelInfo:
        """Train on the knowledge base in the database and save a new version.

        ``exclude_ids``: example ids never to train on (the held-out slice of ``annae retrain``).
        """
        settings = settings or get_settings()
        excluded = set(exclude_ids)
        with session_scope(db_engine) as session:
            examples = [
                e for e in entries.training_examples(session) if e.example_id not in excluded
            ]
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
        )
        return self.save(engine, make_live=make_live)


def fit_examples(
    examples: Sequence[entries.TrainingExample],
    answers: dict[str, dict],
    *,
    settings: Settings,
    author: str = "system",
    kb_revision: int = 0,
    progress=None,
    excluded: Collection[int] = (),
) -> Engine:
    """Train an engine (not saved) on ``examples``, with the entries' answers as anchor texts."""
    return Engine.fit(
        [e.text for e in examples],
        [e.label for e in examples],
        answers,
        documents={key: [info["answer"]] for key, info in answers.items()},
        features=FeatureConfig(encoder=settings.encoder),
        target_precision=settings.target_precision,
        oos_share=settings.oos_share,
        clarify_precision=settings.clarify_precision,
        top_k=settings.top_k,
        threads=settings.threads,
        progress=progress,
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


def answers_hash(answers: dict[str, dict]) -> str:
    """A hash of the entries' answer texts the model used as anchors (to notice stale ones)."""
    import hashlib
    import json

    blob = json.dumps(
        {k: v.get("answer") for k, v in sorted(answers.items())}, ensure_ascii=False
    ).encode()
    return hashlib.sha256(blob).hexdigest()
