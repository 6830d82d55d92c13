"""Gated retraining: held-out slice, promotion, rejection of a corrupted challenger, rollback, locks."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select, update

from annae.dialogue import conversations
from annae.kb import entries
from annae.kb.demo import demo_path
from annae.kb.entries import OOS, TrainingExample
from annae.kb.importers import import_kb
from annae.kb.training import train_from_db
from annae.learning import retrain
from annae.nlu.registry import ModelRegistry
from annae.settings import Settings
from annae.store.db import session_scope
from annae.store.tables.kb import KBExample
from annae.store.tables.learning import ConversationLabel


def test_holdout_is_deterministic_and_covers_each_entry():
    examples = [TrainingExample(f"q{i}", f"e{i % 20}", i) for i in range(1, 401)]
    examples += [TrainingExample("lonely", "single", 1000), TrainingExample("pair", "two", 1001)]
    examples += [TrainingExample("pair2", "two", 1002)]
    held = retrain.holdout_ids(examples, 0.15)
    assert held == retrain.holdout_ids(list(reversed(examples)), 0.15)
    assert 0.10 < len(held) / len(examples) < 0.22
    for k in range(20):
        ids = {e.example_id for e in examples if e.label == f"e{k}"}
        assert ids & held and ids - held, "at least one held out, never all"
    assert 1000 not in held
    assert not {1001, 1002} <= held
    # adding examples does not move the slice of the old ones
    more = examples + [TrainingExample(f"new{i}", "e1", 2000 + i) for i in range(50)]
    assert retrain.holdout_ids(more, 0.15) & {e.example_id for e in examples} == held


def test_not_faq_labels_are_out_of_scope_traffic(engine):
    """The questions agents labelled "not a FAQ question" come back as out-of-scope traffic
    (not other labels' questions, not a text the KB already has, not an empty one)."""
    with session_scope(engine) as s:
        for kind, text in [
            ("not_faq", "what's the weather"),
            ("entry", "where is my parcel"),
            ("not_faq", "known question"),
            ("not_faq", ""),
        ]:
            conv, _ = conversations.create(s)
            msg = conversations.add_message(s, conv, "customer", "text", text)
            s.add(
                ConversationLabel(conversation_id=conv.id, message_id=msg.id, kind=kind, agent="a")
            )
        s.add(ConversationLabel(conversation_id="no-message", kind="not_faq", agent="a"))
        s.flush()
        kb = [TrainingExample("known question", "e1", 1)]
        assert retrain._labelled_traffic(s, set(), kb) == [
            TrainingExample("what's the weather", OOS)
        ]


def test_compare_uses_the_tolerance():
    live = {"accuracy": 0.80, "coverage": 0.60, "answered_precision": 0.90}
    ok, _ = retrain.compare(
        {"accuracy": 0.79, "coverage": 0.60, "answered_precision": 0.9}, live, 0.02
    )
    assert ok
    ok, reasons = retrain.compare(
        {"accuracy": 0.70, "coverage": 0.60, "answered_precision": 0.9}, live, 0.02
    )
    assert not ok and "accuracy" in reasons[0]
    assert retrain.compare({"accuracy": 0.1}, None, 0.02)[0]


@pytest.fixture
def setup(engine, tmp_path):
    settings = Settings(
        home=tmp_path / "home",
        encoder="none",
        target_precision=0.8,
        database_url=str(engine.url.render_as_string(hide_password=False)),
    )
    import_kb(engine, demo_path(), author="test")
    return engine, settings, ModelRegistry(settings.models_dir)


def _corrupt_training_labels(engine, held: set[int]) -> int:
    """Give every example outside the held-out slice the next entry's label (a shifted import)."""
    with session_scope(engine) as s:
        ids = [e.id for e in entries.list_entries(s)]
        nxt = dict(zip(ids, ids[1:] + ids[:1], strict=True))
        rows = s.execute(select(KBExample.id, KBExample.entry_id)).all()
        n = 0
        for ex_id, entry_id in rows:
            if entry_id is None or ex_id in held:
                continue
            s.execute(update(KBExample).where(KBExample.id == ex_id).values(entry_id=nxt[entry_id]))
            n += 1
        entries.bump_revision(s, "corrupted on purpose", "test")
    return n


def test_gate_promotes_a_model_refit_on_all_examples_then_refuses_a_corrupted_one(setup):
    engine, settings, reg = setup
    v1 = train_from_db(reg, engine, settings=settings, author="test")  # like `annae train`
    assert reg.live_version() == v1.version
    with session_scope(engine) as s:
        n_all = len(entries.training_examples(s))
        held = retrain.holdout_ids(entries.training_examples(s))

    first = retrain.retrain(engine, settings=settings, author="test")
    # no KB change: reference and challenger learn the same examples, so they tie
    assert first.promoted and first.mode == "same_slice"
    assert first.challenger_metrics["accuracy"] == first.live_metrics["accuracy"]
    assert first.n_evaluated == len(held) > 0
    assert reg.live_version() == first.challenger
    manifest = reg.manifest(first.challenger)
    # the issue's 529 → 432: the promoted model used to be the one trained without the slice
    assert manifest["data"]["n_examples"] == n_all == first.after["n_examples"]
    assert manifest["data"]["excluded_ids"] == []
    assert first.before == {**first.before, "version": v1.version, "n_examples": n_all}

    assert _corrupt_training_labels(engine, held) > 100
    versions = reg.versions()
    bad = retrain.retrain(engine, settings=settings, author="test")
    assert not bad.promoted and bad.refused and bad.challenger is None
    assert bad.challenger_metrics["accuracy"] < bad.live_metrics["accuracy"] - 0.2
    assert any(r.startswith("accuracy") and "below" in r for r in bad.reasons)
    assert reg.live_version() == first.challenger, "the live model stays"
    assert reg.versions() == versions, "a refused retrain saves no model"
    assert retrain.refused_gates(reg)[0]["reasons"] == bad.reasons
    assert retrain.last_gate(reg)["refused"] is True
    assert bad.kb_changes["revisions"][-1] == "corrupted on purpose"

    assert retrain.rollback(reg, v1.version, author="test") == first.challenger
    assert reg.live_version() == v1.version
    assert [h["action"] for h in retrain.history(reg)] == ["promote", "refused", "rollback"]
    with pytest.raises(retrain.GateError):
        retrain.rollback(reg, "v99")
    with pytest.raises(ValueError):
        retrain.rollback(reg, "../etc")


SMALL_TALK = "A12345 입니다 감사해요!"


def test_the_issues_small_talk_label_cannot_make_the_live_model_worse(setup):
    """The issue's case: one label stored "A12345 입니다 감사해요!" as an example of warranty_ko,
    then Retrain. The retrain is refused, or what goes live is not worse on the same held-out
    questions and keeps every example (refit on all)."""
    engine, settings, reg = setup
    v1 = train_from_db(reg, engine, settings=settings, author="test")
    with session_scope(engine) as s:
        warranty = entries.get_entry_by_key(s, "warranty_ko")
        entries.add_examples(
            s, warranty.id, [SMALL_TALK], source="conversation:abc/agent:mina", author="mina"
        )
        n_all = len(entries.training_examples(s))
    result = retrain.retrain(engine, settings=settings, author="test")
    assert result.before["n_examples"] == n_all - 1
    assert result.kb_changes["examples_added"] == 1
    assert result.kb_changes["added_texts"] == [f"warranty_ko: {SMALL_TALK}"]
    if result.promoted:
        for name in retrain.METRICS:
            assert result.challenger_metrics[name] >= result.live_metrics[name] - result.tolerance
        assert reg.manifest(result.challenger)["data"]["n_examples"] == n_all
    else:
        assert result.refused and reg.live_version() == v1.version


def test_a_second_retrain_is_refused_while_one_runs(setup):
    engine, settings, reg = setup
    with retrain.file_lock(reg.root / ".retrain.lock"):
        with pytest.raises(retrain.Busy):
            retrain.retrain(engine, settings=settings)
    assert reg.versions() == [], "nothing was trained"


def test_two_promotions_at_once_one_wins(setup):
    engine, settings, reg = setup
    a = train_from_db(reg, engine, settings=settings, make_live=False)
    b = train_from_db(reg, engine, settings=settings, make_live=False)
    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def go(version: str) -> None:
        barrier.wait()
        try:
            results[version] = retrain.promote(reg, version, expected_live=None)
        except retrain.GateError as exc:
            results[version] = exc

    threads = [threading.Thread(target=go, args=(v,)) for v in (a.version, b.version)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [v for v, r in results.items() if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert reg.live_version() == winners[0]
    loser = next(r for r in results.values() if isinstance(r, Exception))
    assert "changed" in str(loser)
    assert (reg.root / "LIVE").read_text() == winners[0]
