"""The operating point from labelled traffic: weighted precision, the gate, the switch."""

from __future__ import annotations

import numpy as np

from annae.learning.calibrate import MIN_LABELLED, TrafficRow, estimate


def _rows(rng, n, lo, hi, p_right, answered):
    conf = rng.uniform(lo, hi, n)
    return [TrafficRow(float(c), bool(rng.uniform() < p_right), answered) for c in conf]


def test_too_few_labels_change_nothing():
    rows = [TrafficRow(0.99, True, True)] * (MIN_LABELLED - 1)
    est = estimate(rows, {"answer": 100}, live_threshold=0.95, target=0.95, model="v1")
    assert est.proposed_threshold is None and "at least" in est.reason


def test_labelled_hand_offs_that_were_right_lower_the_threshold():
    rng = np.random.default_rng(0)
    # answers above 0.95 are right 99 % of the time; hand-offs between 0.8 and 0.95 were
    # the bot's right guess 97 % of the time, below 0.8 only half the time
    rows = (
        _rows(rng, 60, 0.95, 1.0, 0.99, True)
        + _rows(rng, 80, 0.8, 0.95, 0.97, False)
        + _rows(rng, 80, 0.3, 0.8, 0.5, False)
    )
    counts = {"answer": 60, "handoff": 160}  # every answer rated, every hand-off labelled
    est = estimate(rows, counts, live_threshold=0.95, target=0.95, model="v1")
    assert est.proposed_threshold is not None and 0.7 <= est.proposed_threshold < 0.95
    assert est.proposed_precision >= 0.95 and est.observed_precision_live >= 0.95
    # the gate: at the proposed threshold the weighted precision on the rows holds the target
    conf = np.array([r.confidence for r in rows])
    right = np.array([r.right for r in rows])
    w = np.ones(len(rows))
    above = conf >= est.proposed_threshold
    assert (w * right)[above].sum() / w[above].sum() >= 0.95


def test_rated_answers_stand_for_every_answer():
    rng = np.random.default_rng(2)
    rows = _rows(rng, 40, 0.95, 1.0, 0.99, True) + _rows(rng, 80, 0.7, 0.95, 0.9, False)
    few_rated = estimate(
        rows, {"answer": 4000, "handoff": 80}, live_threshold=0.95, target=0.95, model="v1"
    )
    all_rated = estimate(
        rows, {"answer": 40, "handoff": 80}, live_threshold=0.95, target=0.95, model="v1"
    )
    # 40 rated of 4,000 answers weigh as 4,000: the 90 %-right band can be added to them
    assert few_rated.proposed_threshold < all_rated.proposed_threshold


def test_traffic_that_contradicts_the_model_raises_the_threshold_or_refuses():
    rng = np.random.default_rng(1)
    rows = _rows(rng, 100, 0.9, 0.97, 0.80, True) + _rows(rng, 60, 0.97, 1.0, 0.99, True)
    est = estimate(rows, {"answer": 160}, live_threshold=0.9, target=0.95, model="v1")
    assert est.observed_precision_live < 0.95
    assert est.proposed_threshold is not None and est.proposed_threshold > 0.9
    bad = _rows(rng, 100, 0.5, 1.0, 0.6, True)
    est = estimate(bad, {"answer": 100}, live_threshold=0.9, target=0.95, model="v1")
    assert est.proposed_threshold is None and "no threshold reaches" in est.reason


def test_traffic_rows_read_labels_and_ratings_of_the_live_model(engine):
    from annae.learning.calibrate import traffic_rows
    from annae.store.db import session_scope
    from annae.store.tables.learning import AnswerRating, ConversationLabel
    from annae.store.tables.service import Conversation, Message

    def decision(kind, conf, guess, version="v1"):
        return {
            "type": kind,
            "confidence": conf,
            "model_version": version,
            "candidates": [{"entry_id": guess, "confidence": conf}],
        }

    with session_scope(engine) as s:
        for cid in ("c1", "c2", "c3", "c4"):
            s.add(Conversation(id=cid, token_hash=cid * 8))
        s.flush()
        q1 = Message(
            conversation_id="c1",
            sender="customer",
            type="text",
            text="q",
            decision=decision("handoff", 0.7, 5),
        )
        q2 = Message(
            conversation_id="c2",
            sender="customer",
            type="text",
            text="q",
            decision=decision("handoff", 0.6, 5),
        )
        q3 = Message(
            conversation_id="c3",
            sender="customer",
            type="text",
            text="q",
            decision=decision("answer", 0.99, 7),
        )
        q4 = Message(
            conversation_id="c4",
            sender="customer",
            type="text",
            text="q",
            decision=decision("handoff", 0.5, 5, version="v0"),
        )  # another model
        s.add_all([q1, q2, q3, q4])
        s.flush()
        a3 = Message(
            conversation_id="c3", sender="bot", type="answer", text="a", entry_id=7, confidence=0.99
        )
        s.add(a3)
        s.flush()
        s.add_all(
            [
                ConversationLabel(
                    conversation_id="c1",
                    message_id=q1.id,
                    kind="entry",
                    entry_id=5,
                    bot_entry_id=5,
                    agent="a",
                ),
                ConversationLabel(
                    conversation_id="c2", message_id=q2.id, kind="not_faq", agent="a"
                ),
                ConversationLabel(
                    conversation_id="c4",
                    message_id=q4.id,
                    kind="entry",
                    entry_id=5,
                    bot_entry_id=5,
                    agent="a",
                ),
                AnswerRating(conversation_id="c3", message_id=a3.id, entry_id=7, helpful=False),
            ]
        )
    with session_scope(engine) as s:
        rows, counts = traffic_rows(s, "v1")
    assert counts == {"answer": 1, "handoff": 2, "clarify": 0}
    got = sorted((r.confidence, r.right, r.answered) for r in rows)
    assert got == [(0.6, False, False), (0.7, True, False), (0.99, False, True)]
