"""The engine this process serves, swapped when the live model changes, and its one retrain job.

Every retrain started through the service (the KB page's button, ``POST
/api/v1/learning/retrain``) runs here, so there is one job per process to report and one for the
privacy erase guard to check; across processes the registry's lock file refuses a second one.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from annae.store.db import utcnow

if TYPE_CHECKING:
    from annae.nlu.engine import Engine as NLUEngine
    from annae.nlu.registry import ModelRegistry
    from annae.settings import Settings

log = logging.getLogger("annae.web")


@dataclass
class RetrainState:
    status: str = "idle"
    version: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    gate: dict[str, Any] | None = None  # the gate's comparison (retrain.GateResult.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "version": self.version,
            "error": self.error,
            "gate": self.gate,
            "result": self.gate,  # the name POST /api/v1/learning/retrain has always used
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def freeze_heap() -> None:
    """Keep what is loaded now (libraries, the engine) out of the garbage collector's full passes.

    A worker holds a few hundred thousand long-lived Python objects; a full collection walks all of
    them while holding the GIL, a pause of 100 ms or more for every request of the process. Frozen
    objects are still freed by reference counting; an old engine is unfrozen again by the next swap.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


class EngineHolder:
    """The engine serving this process; swapped atomically when the registry's live version changes.

    ``get()`` is cheap: at most once per ``check_every`` seconds it reads the live version and, if it
    changed, loads the new engine in a background thread while requests keep using the old one.
    """

    def __init__(self, settings: Settings, check_every: float = 1.0) -> None:
        self.settings = settings
        self.check_every = check_every
        self._engine: NLUEngine | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._registry: ModelRegistry | None = None
        self.retrain = RetrainState()
        self._retrain_lock = threading.Lock()
        self.load_error: str | None = None

    @property
    def registry(self) -> ModelRegistry:
        if self._registry is None:
            from annae.nlu.registry import ModelRegistry

            self._registry = ModelRegistry(self.settings.models_dir)
        return self._registry

    @property
    def version(self) -> str | None:
        engine = self._engine
        return engine.version if engine is not None else None

    def get(self) -> NLUEngine | None:
        """The current engine (None when nothing is trained yet)."""
        now = time.monotonic()
        if now - self._checked >= self.check_every:
            self._checked = now
            self._check(background=True)
        return self._engine

    def load_now(self) -> None:
        """Load the live version synchronously (at start-up and after a retrain)."""
        self._check(background=False)

    def _check(self, background: bool) -> None:
        try:
            live = self.registry.live_version()
        except Exception as exc:  # no registry module or unreadable folder
            self.load_error = f"model registry unavailable: {exc}"
            return
        if live is None or live == self.version:
            return
        if background:
            threading.Thread(target=self._load, name="annae-engine-load", daemon=True).start()
        else:
            self._load()

    def _load(self) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another thread is loading it already
        try:
            live = self.registry.live_version()
            if live is not None and live != self.version:
                engine = self.registry.load_live()
                if engine is not None:
                    self._engine = engine  # one reference assignment: requests see old or new
                    self.load_error = None
                    log.info("serving model %s", engine.version)
                    freeze_heap()
        except Exception as exc:
            self.load_error = f"could not load model: {exc}"
            log.exception("could not load the live model")
        finally:
            self._lock.release()

    def start_retrain(
        self,
        db: Engine,
        author: str,
        on_done: Callable[[RetrainState], None] | None = None,
        *,
        force: bool = False,
        wait: bool = False,
    ) -> bool:
        """Run the gated retrain (``annae retrain``'s) in a background thread, or in this one
        with ``wait``; False if one is already running in this process or holds the registry's
        lock in another. A promoted challenger is loaded before ``on_done`` is called."""
        from annae.learning import retrain as retraining

        if not self._retrain_lock.acquire(blocking=False):
            return False
        try:
            with retraining.file_lock(self.registry.root / ".retrain.lock"):
                pass  # another process training now holds it
        except retraining.Busy:
            self._retrain_lock.release()
            return False
        self.retrain = RetrainState(status="running", started_at=utcnow())

        def work() -> None:
            try:
                # the challenger goes live only if it is not worse than the live model on the
                # held-out slice (``force``: refit and promote anyway)
                result = retraining.retrain(db, settings=self.settings, author=author, force=force)
                self.retrain.version = result.challenger
                self.retrain.gate = result.to_dict()
                if result.promoted:
                    self.load_now()
                    self.retrain.status = "done"
                else:
                    self.retrain.status = "rejected"
                    self.retrain.error = "; ".join(r for r in result.reasons if "below" in r)[:500]
            except Exception as exc:  # reported in the status, never lost
                log.exception("retrain failed")
                self.retrain.status, self.retrain.error = "failed", str(exc)[:500]
            finally:
                self.retrain.finished_at = utcnow()
                self._retrain_lock.release()
                if on_done is not None:
                    on_done(self.retrain)

        if wait:
            work()
        else:
            threading.Thread(target=work, name="annae-retrain", daemon=True).start()
        return True
