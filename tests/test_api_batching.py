"""Micro-batched decisions agree with one-by-one ``Engine.decide`` and serve concurrent callers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from api_support import demo_model

from annae.nlu.registry import ModelRegistry
from annae.web.batching import THREAD_NAME, BatchDecider, decide_many

QUESTIONS = [
    "How long does delivery take?",
    "배송은 얼마나 걸리나요?",
    "can I return a gift I received",
    "I want to talk to a human",
    "this is useless, worst shop ever",
    "Can you recommend a good dentist near Gangnam station?",
    "",
    "x" * 5000,
    "gift wrap?",
    "환불 받을 수 있나요",
]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return ModelRegistry(demo_model(tmp_path_factory)).load_live()


def _same(a, b) -> None:
    assert (a.type, a.reason, a.entry_key, a.entry_id, a.language, a.model_version) == (
        b.type,
        b.reason,
        b.entry_key,
        b.entry_id,
        b.language,
        b.model_version,
    )
    # to the bit: the encoders embed each question alone and the classifier scores each row
    # alone, so a decision does not depend on the questions batched with it (the audit record
    # reproduces it)
    assert a.confidence == b.confidence
    assert [(c.key, c.confidence) for c in a.candidates] == [
        (c.key, c.confidence) for c in b.candidates
    ]


def test_batched_decisions_match_single_ones(engine):
    batched = decide_many(engine, QUESTIONS)
    assert len(batched) == len(QUESTIONS)
    for text, decision in zip(QUESTIONS, batched, strict=True):
        _same(decision, engine.decide(text))
    types = {d.type for d in batched}
    assert "answer" in types and "handoff" in types


def test_batch_decider_serves_concurrent_threads(engine):
    decider = BatchDecider(max_batch=4)
    results: dict[int, object] = {}
    texts = QUESTIONS * 3

    def ask(i: int) -> None:
        results[i] = decider.decide(engine, texts[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == len(texts)
    for i, text in enumerate(texts):
        _same(results[i], engine.decide(text))
    assert decider.questions == len(texts)
    # the inference thread carries its name in the OS too (top -H; the service benchmark's split)
    thread = decider._thread
    assert thread is not None and thread.is_alive()
    assert Path(f"/proc/self/task/{thread.native_id}/comm").read_text().strip() == THREAD_NAME
    decider.close()
    assert len(texts) / 4 <= decider.batches <= len(texts)


class _HeldUntil:
    """``engine`` whose batches wait (at most 60 s) until ``event`` is set."""

    def __init__(self, event: threading.Event, engine) -> None:
        self.event, self.engine = event, engine

    def decide_many(self, texts: list[str]):
        self.event.wait(timeout=60)
        return self.engine.decide_many(texts)


def test_batch_decider_serves_the_event_loop(engine):
    """WebSocket turns await their decision on the loop; concurrent ones share batches."""
    import asyncio

    decider = BatchDecider(max_batch=4)
    texts = QUESTIONS * 2
    # "together" even on a busy machine: the inference thread could otherwise decide each question
    # before the next one is queued; here its first batch waits until every question is queued
    queued = threading.Event()
    gated = _HeldUntil(queued, engine)

    async def ask_all() -> list:
        asks = [asyncio.ensure_future(decider.decide_async(gated, t)) for t in texts]
        await asyncio.sleep(0)  # every ask runs up to its submit() before this goes on
        queued.set()
        return await asyncio.gather(*asks)

    # a thread of its own: Playwright's sync API (session-scoped browser) keeps an event loop
    # running in the main thread once a browser test has run in this worker
    with ThreadPoolExecutor(1) as pool:
        results = pool.submit(asyncio.run, ask_all()).result()
    for text, decision in zip(texts, results, strict=True):
        _same(decision, engine.decide(text))
    assert decider.questions == len(texts)
    assert decider.batches < len(texts)  # they arrived together, so some were batched


def test_closing_the_decider_ends_its_thread_after_the_queued_questions(engine):
    """At app shutdown the inference thread finishes what is queued, then ends; it keeps no
    engine alive (a test suite or a restarted app would otherwise pile up threads and models)."""
    decider = BatchDecider(max_batch=2)
    futures = [decider.submit(engine, t) for t in QUESTIONS[:5]]
    thread = decider._thread
    assert thread is not None and thread.is_alive()
    decider.close()
    assert not thread.is_alive()
    assert [f.result().type for f in futures] == [
        d.type for d in decide_many(engine, QUESTIONS[:5])
    ]
    with pytest.raises(RuntimeError, match="closed"):
        decider.submit(engine, "gift wrap?")
    BatchDecider().close()  # a decider that never started a thread closes too


def test_audit_record_is_the_decisions_dict(engine):
    """The record stored with a customer message equals ``Decision.to_dict()``."""
    from annae.dialogue.conversations import decision_record

    for decision in decide_many(engine, QUESTIONS):
        record = decision_record(decision)
        assert record == decision.to_dict()
        assert all(isinstance(c, dict) for c in record["candidates"])


def test_evaluation_decides_with_the_services_rule(engine):
    """`annae eval` and the retraining gate score a ranking they computed themselves: their
    decisions must be the service's, out-of-scope replies included."""
    from dataclasses import replace

    from annae.learning.retrain import score

    eager = engine.with_thresholds()
    eager.policy = replace(engine.policy, oos_threshold=0.0)  # every unsure question: out of scope
    ranked = eager.candidates(QUESTIONS)
    evaluated = eager.decide_ranked(QUESTIONS, ranked)
    for text, decision, served in zip(
        QUESTIONS, evaluated, decide_many(eager, QUESTIONS), strict=True
    ):
        _same(decision, served)
        assert decision.oos_score == served.oos_score, text
    types = [d.type for d in evaluated]
    assert "out_of_scope" in types and "answer" in types and "handoff" in types
    gold = [d.entry_key or "oos" for d in decide_many(engine, QUESTIONS)]
    answered = types.count("answer")
    assert score(eager, QUESTIONS, gold)["coverage"] == pytest.approx(answered / len(QUESTIONS))
