"""Saved recommenders: ``<models_dir>/recommend/vN/`` (model.joblib + manifest.json), one live.

The service loads the live model once per process and reloads only when ``LIVE`` changes.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import joblib
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from annae.recommend.models import Recommender
from annae.store.tables.recommend import RecModel


@dataclass
class SavedModel:
    """A model on disk and what it was trained on."""

    version: str
    path: Path
    manifest: dict
    model: Recommender | None = None


class RecommenderRegistry:
    """Versioned recommenders under ``root`` (``settings.models_dir / "recommend"``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._cached: SavedModel | None = None

    def _next_version(self) -> str:
        self.root.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.name[1:]) for p in self.root.glob("v*") if p.name[1:].isdigit()]
        return f"v{max(numbers, default=0) + 1}"

    def save(
        self, model: Recommender, manifest: dict, session: Session | None = None
    ) -> SavedModel:
        """Write a fitted model, make it live, and record it in ``rec_models`` when given a session."""
        version = self._next_version()
        path = self.root / version
        path.mkdir(parents=True)
        joblib.dump(model, path / "model.joblib", compress=3)
        manifest = {"version": version, **manifest}
        (path / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        tmp = self.root / "LIVE.tmp"
        tmp.write_text(version)
        tmp.replace(self.root / "LIVE")
        if session is not None:
            session.execute(update(RecModel).values(live=False))
            session.add(
                RecModel(
                    version=version,
                    kind=manifest.get("kind", "hybrid"),
                    engine=manifest.get("engine", "local"),
                    path=str(path),
                    n_customers=manifest.get("n_customers", 0),
                    n_products=manifest.get("n_products", 0),
                    n_interactions=manifest.get("n_interactions", 0),
                    fit_seconds=manifest.get("fit_seconds", 0.0),
                    details={
                        k: v
                        for k, v in manifest.items()
                        if k in ("weights", "validation", "timings", "params")
                    },
                    live=True,
                )
            )
            session.flush()
        return SavedModel(version, path, manifest, model)

    def live_version(self) -> str | None:
        try:
            return (self.root / "LIVE").read_text().strip() or None
        except OSError:
            return None

    def load_live(self, threads: int | None = 1) -> SavedModel | None:
        """The live model, loaded once and kept until ``LIVE`` names another version.

        On first load the process's BLAS/OpenMP pools are pinned to ``threads`` (one thread per
        serving process is faster under load; ``None`` leaves them alone).
        """
        version = self.live_version()
        if version is None:
            return None
        cached = self._cached
        if cached is not None and cached.version == version:
            return cached
        with self._lock:
            if self._cached is not None and self._cached.version == version:
                return self._cached
            path = self.root / version
            manifest = json.loads((path / "manifest.json").read_text())
            model = joblib.load(path / "model.joblib")
            if threads is not None and self._cached is None:
                from threadpoolctl import threadpool_limits

                threadpool_limits(limits=threads)
            self._cached = SavedModel(version, path, manifest, model)
            return self._cached


def list_models(session: Session) -> list[RecModel]:
    return list(session.scalars(select(RecModel).order_by(RecModel.id)))


_REGISTRIES: dict[Path, RecommenderRegistry] = {}


def registry_for(models_dir: Path) -> RecommenderRegistry:
    """One registry (and so one cached model) per folder per process."""
    root = Path(models_dir) / "recommend"
    key = root.resolve()
    if key not in _REGISTRIES:
        _REGISTRIES[key] = RecommenderRegistry(root)
    return _REGISTRIES[key]
