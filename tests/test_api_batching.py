"""Micro-batched decisions agree with one-by-one ``Engine.decide`` and serve concurrent callers."""

from __future__ import annotations

import threading
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


class _Spy:
    """``engine`` that records which thread ran each call and how many questions it had; a
    call waits (at most 60 s) while ``hold`` is set and not yet released."""

    def __init__(self, engine, hold: threading.Event | None = None) -> None:
        self.engine, self.hold = engine, hold
        self.calls: list[tuple[str, int]] = []
        self.running = threading.Event()

    def decide_many(self, texts: list[str]):
        self.calls.append((threading.current_thread().name, len(texts)))
        self.running.set()
        if self.hold is not None:
            self.hold.wait(timeout=60)
        return self.engine.decide_many(texts)


def test_a_lone_question_is_decided_in_the_calling_thread(engine):
    """No question waiting and the engine free: the worker thread decides it itself (no other
    thread is woken, none is started)."""
    decider = BatchDecider()
    spy = _Spy(engine)
    for text in QUESTIONS[:3]:
        _same(decider.decide(spy, text), engine.decide(text))
    assert spy.calls == [(threading.current_thread().name, 1)] * 3
    assert decider._thread is None
    assert (decider.batches, decider.questions) == (3, 3)
    decider.close()


def test_questions_that_find_the_engine_busy_are_batched_by_the_inference_thread(engine):
    """While one worker thread runs the engine, the others' questions queue; the inference
    thread then decides them in batches (each decision the same as alone)."""
    decider = BatchDecider(max_batch=4)
    release = threading.Event()
    spy = _Spy(engine, hold=release)
    texts = QUESTIONS * 2
    results: dict[int, object] = {}

    def ask(i: int) -> None:
        results[i] = decider.decide(spy, texts[i])

    first = threading.Thread(target=ask, args=(0,), name="worker-0")
    first.start()
    assert spy.running.wait(timeout=60)  # worker-0 holds the engine
    rest = [threading.Thread(target=ask, args=(i,)) for i in range(1, len(texts))]
    for t in rest:
        t.start()

    def waiting() -> int:  # queued, or held by the inference thread waiting for the engine
        return len(decider._pending) + decider._taken

    for _ in range(600):  # every other question waits behind worker-0's
        if waiting() == len(texts) - 1:
            break
        threading.Event().wait(0.01)
    assert waiting() == len(texts) - 1
    release.set()
    for t in [first, *rest]:
        t.join(timeout=60)
    assert len(results) == len(texts)
    for i, text in enumerate(texts):
        _same(results[i], engine.decide(text))
    assert spy.calls[0] == ("worker-0", 1)
    assert {name for name, _ in spy.calls[1:]} == {THREAD_NAME}
    assert sum(n for _, n in spy.calls) == len(texts) == decider.questions
    # worker-0's, the inference thread's first (what had queued when it woke), then batches of 4
    assert decider.batches == len(spy.calls) <= 2 + -(-(len(texts) - 2) // 4)
    # the inference thread carries its name in the OS too (top -H; the service benchmark's split)
    thread = decider._thread
    assert thread is not None and thread.is_alive()
    assert Path(f"/proc/self/task/{thread.native_id}/comm").read_text().strip() == THREAD_NAME
    decider.close()
    assert not thread.is_alive()


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
