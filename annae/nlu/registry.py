"""Versioned models on disk: ``models/v1``, ``models/v2``, … and a ``LIVE`` pointer.

Serving processes call :meth:`ModelRegistry.live_version` (one small file read)
to notice a retrain and load the new version without restarting.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from annae.nlu.engine import MANIFEST, Engine
from annae.settings import get_settings

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
        """A saved version, with the serving policy's out-of-scope threshold and the memory of
        repeated questions (``question_memory``) from the settings."""
        from dataclasses import replace

        engine = Engine.load(self.path(version), threads=threads, warm=False)
        settings = get_settings()
        override = settings.oos_threshold  # None: the model's own
        if override is not None:
            engine.policy = replace(engine.policy, oos_threshold=override)
        engine.remember(settings.question_memory)
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
