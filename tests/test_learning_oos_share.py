"""The out-of-scope share a model assumes, estimated from labelled traffic (learning.oos_share):
the estimate, its reading of the database (SQLite and PostgreSQL), the setting that overrides
it, and a retrain that uses it."""

from __future__ import annotations

import pytest

from annae.learning import oos_share
from annae.learning.oos_share import MIN_LABELLED, MIN_SHARE, estimate


def test_too_few_labels_give_no_estimate():
    est = estimate({"answer": 100, "handoff": 20}, [False] * 10, [False] * 10)
    assert est.value is None and f"{MIN_LABELLED} needed" in est.reason


def test_a_kind_of_decision_nobody_labelled_gives_no_estimate():
    est = estimate({"answer": 100, "handoff": 100}, [False] * 40, [False] * 3)
    assert est.value is None and "labelled hand-offs" in est.reason


def test_traffic_with_no_out_of_scope_questions_gives_the_floor():
    est = estimate({"answer": 800, "handoff": 150, "clarify": 50}, [False] * 200, [False] * 100)
    assert est.value is not None and MIN_SHARE <= est.value < 0.03 and est.source == "traffic"


def test_half_out_of_scope_traffic_shows_and_small_samples_lean_high():
    # 40 % of traffic answered (a tenth unhelpful), half handed off (80 % not FAQ), 10 % oos replies
    counts = {"answer": 400, "handoff": 500, "out_of_scope": 100}
    big = estimate(counts, [True] * 40 + [False] * 360, [True] * 400 + [False] * 100)
    truth = 0.4 * 0.1 + 0.5 * 0.8 + 0.1
    assert truth < big.value < truth + 0.05
    small = estimate(counts, [True] * 1 + [False] * 9, [True] * 16 + [False] * 4)
    assert small.value > big.value  # the upper end of a wider interval


def test_every_answer_unhelpful_and_a_rare_unlabelled_kind_count_as_out_of_scope():
    est = estimate({"answer": 96, "clarify": 4}, [True] * 40, [])
    assert est.value == pytest.approx(0.90)  # capped at MAX_SHARE


def _traffic(engine, n_conv: int, not_faq: int, unhelpful: int) -> None:
    """``n_conv`` conversations: a hand-off labelled (``not_faq`` of them "not a FAQ question")
    and an answer rated (``unhelpful`` of them unhelpful)."""
    from annae.store.db import session_scope
    from annae.store.tables.learning import AnswerRating, ConversationLabel
    from annae.store.tables.service import Conversation, Message

    def question(cid: str, kind: str, version: str) -> Message:
        decision = {"type": kind, "confidence": 0.5, "model_version": version}
        return Message(
            conversation_id=cid, sender="customer", type="text", text="q", decision=decision
        )

    with session_scope(engine) as s:
        for i in range(n_conv):
            cid = f"c{i}"
            s.add(Conversation(id=cid, token_hash=f"{i:032d}"))
            s.flush()
            asked, handed = question(cid, "answer", "v1"), question(cid, "handoff", "v2")
            answer = Message(conversation_id=cid, sender="bot", type="answer", text="a")
            s.add_all([asked, handed, answer])
            s.flush()
            kind = "not_faq" if i < not_faq else "entry"
            s.add(
                ConversationLabel(conversation_id=cid, message_id=handed.id, kind=kind, agent="a")
            )
            s.add(AnswerRating(conversation_id=cid, message_id=answer.id, helpful=i >= unhelpful))


def test_from_traffic_reads_labels_ratings_and_decisions_of_every_model(engine):
    from annae.store.db import session_scope

    _traffic(engine, 40, not_faq=20, unhelpful=0)
    with session_scope(engine) as s:
        est = oos_share.from_traffic(s)
    # half the decisions are hand-offs, half of those not FAQ; answers all helpful
    assert est.n_labelled == 80 and 0.25 < est.value < 0.25 + 0.1


def test_the_setting_wins_over_traffic(engine, monkeypatch):
    from annae.settings import Settings
    from annae.store.db import session_scope

    _traffic(engine, 40, not_faq=0, unhelpful=0)
    with session_scope(engine) as s:
        assert oos_share.resolve(Settings(), s).source == "traffic"
        monkeypatch.setenv("ANNAE_OOS_SHARE", "0.3")
        set_share = oos_share.resolve(Settings(), s)
    assert (set_share.value, set_share.source) == (0.3, "setting")


def test_a_retrain_assumes_the_traffic_share_and_a_later_plain_training_keeps_it(engine, tmp_path):
    from annae.kb.demo import demo_path
    from annae.kb.importers import import_kb
    from annae.kb.training import train_from_db
    from annae.learning import retrain
    from annae.nlu.registry import ModelRegistry
    from annae.settings import Settings

    settings = Settings(
        home=tmp_path / "home",
        encoder="none",
        database_url=str(engine.url.render_as_string(hide_password=False)),
    )
    import_kb(engine, demo_path(), author="test")
    reg = ModelRegistry(settings.models_dir)
    v1 = reg.manifest(train_from_db(reg, engine, settings=settings, author="test").version)
    assert v1["metrics"]["oos_share_source"] == "default"
    assert v1["metrics"]["oos_share_assumed"] == settings.oos_share == 0.20

    _traffic(engine, 40, not_faq=0, unhelpful=0)  # a company whose traffic is all in scope
    gate = retrain.retrain(engine, settings=settings, author="test")
    assert gate.promoted
    v2 = reg.manifest(gate.challenger)
    assert v2["metrics"]["oos_share_source"] == "traffic"
    assert v2["metrics"]["oos_share_assumed"] < 0.05
    # less assumed out-of-scope traffic: a lower (or equal) answer threshold, more answered
    assert v2["threshold"] <= v1["threshold"]
    assert v2["metrics"]["expected_coverage"] >= v1["metrics"]["expected_coverage"]
    # a training without a share given (a retrain after an erasure) keeps the live model's
    v3 = reg.manifest(train_from_db(reg, engine, settings=settings, author="erase").version)
    assert v3["metrics"]["oos_share_source"] == "traffic"
    assert v3["metrics"]["oos_share_assumed"] == v2["metrics"]["oos_share_assumed"]
