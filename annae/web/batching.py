"""Micro-batching of bot decisions: concurrent questions share one call of the answer engine.

Under load one inference thread per process takes every question that arrived while it was busy
and decides them together (one wake-up, one call of the features and the classifier; the int8
encoders still embed each question alone, so that no decision depends on its batch). At low load
a batch is a single question and nothing waits.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol

from annae.web import metrics

if TYPE_CHECKING:
    from annae.nlu.policy import Decision

log = logging.getLogger("annae.batching")


THREAD_NAME = "annae-decide"
"""The inference thread's name, in Python and for the OS (``top -H``, ``/proc/<pid>/task/*/comm``:
what the service benchmark reads to give the engine's share of the CPU)."""


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` in the OS (Linux; elsewhere, or on failure, nothing)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # 15: PR_SET_NAME (this thread only)
    except (OSError, AttributeError):
        pass


class DecidesMany(Protocol):
    """What the batcher needs of an engine (:class:`annae.nlu.engine.Engine`)."""

    def decide_many(self, texts: list[str]) -> Sequence[Decision]: ...


def decide_many(engine: DecidesMany, texts: Sequence[str]) -> list[Decision]:
    """``[engine.decide(t) for t in texts]`` in one call of the engine
    (:meth:`annae.nlu.engine.Engine.decide_many`); its memory of repeated questions counted in
    the metrics (``annae_question_memory_total``)."""
    hits, misses = getattr(engine, "memory_hits", 0), getattr(engine, "memory_misses", 0)
    out = list(engine.decide_many(list(texts)))
    metrics.observe_question_memory(
        getattr(engine, "memory_hits", 0) - hits, getattr(engine, "memory_misses", 0) - misses
    )
    return out


class BatchDecider:
    """One inference thread per process; ``decide`` blocks the calling worker thread until done."""

    def __init__(self, max_batch: int = 32) -> None:
        self.max_batch = max_batch
        self._pending: list[tuple[DecidesMany, str, Future[Decision]]] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0  # batches taken, and the questions in them (counted as taken)
        self.questions = 0

    def submit(self, engine: DecidesMany, text: str) -> Future[Decision]:
        """Queue ``text`` for the inference thread; the Future gets its decision (or error)."""
        fut: Future[Decision] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the decider is closed (the service is shutting down)")
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
                self._thread.start()
            self._pending.append((engine, text, fut))
            self._cond.notify()
        return fut

    def decide(self, engine: DecidesMany, text: str) -> Decision:
        """The decision for ``text``, blocking the calling thread until its batch is done."""
        return self.submit(engine, text).result()

    async def decide_async(self, engine: DecidesMany, text: str) -> Decision:
        """The decision for ``text``, awaited on the event loop (no worker thread waits)."""
        return await asyncio.wrap_future(self.submit(engine, text))

    def close(self) -> None:
        """Stop the inference thread once the queued questions are decided (app shutdown)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        name_os_thread(THREAD_NAME)
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                batch, self._pending = (
                    self._pending[: self.max_batch],
                    self._pending[self.max_batch :],
                )
            self._decide(batch)  # its engines are not held between batches

    def _decide(self, batch: list[tuple[DecidesMany, str, Future[Decision]]]) -> None:
        # counted before any answer is handed back: whoever sees an answer sees it counted
        self.batches += 1
        self.questions += len(batch)
        # a retrain may swap engines mid-stream: decide each engine's questions with it
        groups: dict[int, list[tuple[DecidesMany, str, Future[Decision]]]] = {}
        for item in batch:
            groups.setdefault(id(item[0]), []).append(item)
        for items in groups.values():
            engine = items[0][0]
            try:
                results = decide_many(engine, [text for _, text, _ in items])
            except Exception as exc:  # the callers decide what a failure means
                for _, _, fut in items:
                    fut.set_exception(exc)
                continue
            for (_, _, fut), result in zip(items, results, strict=True):
                fut.set_result(result)
