"""Export, erasure, retention and decision explanations, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib.abc
import json
import pickle
import sys
from datetime import timedelta

import joblib
import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from annae.dialogue import conversations
from annae.kb import entries
from annae.kb.training import train_from_db
from annae.nlu.registry import ModelRegistry
from annae.privacy import audit, consent, rights
from annae.privacy.cli import app
from annae.recommend.data import PRESETS, load_interactions
from annae.recommend.registry import registry_for
from annae.recommend.sample import write_synthetic_csv
from annae.recommend.store import import_frame, record_interaction
from annae.recommend.train import train_from_db as train_recommender
from annae.settings import get_settings
from annae.store.db import Base, get_engine, session_scope, utcnow
from annae.store.tables.service import Conversation, Message

SECRET = "zebraquokka"  # appears only in the customer's own words
ENTRIES = [
    ("shipping", "How long does shipping take?", "2-3 days.",
     ["when will my order arrive", "delivery time", "how many days for delivery", "배송 얼마나 걸려요",
      "is shipping slow", "배송 기간이 궁금해요"]),
    ("refund", "How do I get a refund?", "Use the returns page.",
     ["I want my money back", "refund please", "how to return an item", "환불 어떻게 해요",
      "can I return this", "환불 신청하고 싶어요"]),
    ("hours", "When are you open?", "9 to 6 on weekdays.",
     ["opening hours", "are you open on sunday", "what time do you close", "영업시간 알려주세요",
      "when do you open", "몇 시에 문 열어요"]),
    ("password", "How do I reset my password?", "Use 'forgot password' on the login page.",
     ["forgot my password", "can't log in", "reset password", "비밀번호를 잊어버렸어요",
      "login problem", "비밀번호 변경 방법"]),
]  # fmt: skip


@pytest.fixture
def shop(annae_home, monkeypatch):
    """A small KB, purchases, and customer C038 with two conversations, one of them labelled
    into a training example; the answer engine (v1) and recommender (v1) learnt from them."""
    monkeypatch.setenv("ANNAE_ENCODER", "none")
    get_settings.cache_clear()
    settings = get_settings()
    db = get_engine(settings.database)
    frame, report = load_interactions(
        write_synthetic_csv(annae_home / "shop.csv"), PRESETS["default"]
    )
    import_frame(db, frame, report)
    with session_scope(db) as s:
        for key, question, answer, examples in ENTRIES:
            entries.add_entry(s, key=key, question=question, answer=answer, examples=examples)
        conv, _token = conversations.create(s, customer_id="C038")
        conversations.post_customer(
            s, conv, text=f"where is my parcel {SECRET}"
        )  # no model yet: to a person
        labelled = conv.id
        shipping = entries.get_entry_by_key(s, "shipping")
        # an agent labelled the customer's words: a training example derived from the conversation
        entries.add_examples(
            s, shipping.id, [f"where is my parcel {SECRET}"], source=f"conversation:{conv.id}"
        )
        consent.grant(s, "C038", "training", text_version="t1")
        other, _ = conversations.create(s, customer_id="C001")
        conversations.add_message(s, other, "customer", "text", "refund please")
    reg = ModelRegistry(settings.models_dir)
    v1 = train_from_db(reg, db, settings=settings).version
    with session_scope(db) as s:
        conv, _token = conversations.create(s, customer_id="C038")
        out = conversations.post_customer(
            s, conv, text="how many days for delivery?", engine=reg.load_live()
        )
        msg_id = out.reply["message_id"]
    rec = train_recommender(db, settings.models_dir).version
    return {
        "db": db,
        "settings": settings,
        "conv_id": labelled,
        "msg_id": msg_id,
        "v1": v1,
        "rec": rec,
    }


def _everything_stored(db) -> str:
    with db.connect() as conn:
        return json.dumps(
            [[list(row) for row in conn.execute(select(t))] for t in Base.metadata.sorted_tables],
            default=str,
            ensure_ascii=False,
        )


def _model_files(models_dir) -> str:
    """Every model file's content; joblib files are loaded and pickled again (they are compressed)."""
    parts = []
    for path in sorted(models_dir.rglob("*")):
        if not path.is_file() or path.name == rights.STALE:
            continue
        data = pickle.dumps(joblib.load(path)) if path.suffix == ".joblib" else path.read_bytes()
        parts.append(data.decode("latin-1"))
    return "".join(parts)


def test_export_and_explain(shop) -> None:
    with session_scope(shop["db"]) as s:
        data = rights.export_customer(s, "C038")
        assert data["found"] is True
        labelled, asked = data["conversations"]
        assert labelled["id"] == shop["conv_id"] and labelled["customer_id"] == "C038"
        assert SECRET in labelled["messages"][0]["text"]
        assert asked["messages"][0]["decision"]["model_version"] == shop["v1"]
        assert [c["purpose"] for c in data["consents"]] == ["training"]
        assert data["consent_now"]["training"] is True
        assert data["interactions"] and all(i["product_id"] for i in data["interactions"])
        assert [e["source"] for e in data["derived_examples"]] == [
            f"conversation:{shop['conv_id']}"
        ]
        assert data["models"] == {"answer_engine": [shop["v1"]], "recommender": [shop["rec"]]}
        json.dumps(data)  # JSON-ready
        assert rights.export_customer(s, "nobody")["found"] is False
        with pytest.raises(rights.RightsError, match="customer id"):
            rights.export_customer(s, "  ")

        info = rights.explain(s, shop["msg_id"])
        assert info["message_id"] == shop["msg_id"] and info["reply_id"] is not None
        d = info["decision"]
        assert d["model_version"] == "v1" and d["type"] in ("answer", "clarify", "handoff")
        assert info["model"]["kb_revision"] is not None and info["model"]["n_examples"] == 29
        assert (
            "model v1 trained on KB revision" in info["summary"]
            and "with 29 examples" in info["summary"]
        )
        conf = d["confidence"]
        assert f"{conf:.2f}" in info["summary"] or f"{conf:.4f}" in info["summary"]
        assert rights.explain(s, info["reply_id"])["message_id"] == shop["msg_id"]
        first = rights.explain(s, data["conversations"][0]["messages"][0]["id"])
        assert first["summary"] == "no model was live: the conversation went to a person"
        with pytest.raises(rights.RightsError, match="no message"):
            rights.explain(s, 999_999)
        conv, _ = conversations.create(s, language="en", channel="web")
        greeting = Message(conversation_id=conv.id, sender="agent", type="text", text="Hello!")
        s.add(greeting)
        s.flush()
        with pytest.raises(rights.RightsError, match="answers no customer message"):
            rights.explain(s, greeting.id)


def test_erasure_removes_the_customer_everywhere(shop) -> None:
    db, settings = shop["db"], shop["settings"]
    assert SECRET in _everything_stored(db)
    before = _model_files(settings.models_dir)
    assert SECRET in before and "C038" in before
    report = rights.erase_customer(db, "C038", actor="admin")
    assert report.conversations == 2 and report.messages == 4
    assert report.consents == 1 and report.examples == 1 and report.interactions > 0
    assert report.stale_models == [shop["v1"]]
    assert report.stale_recommenders == [shop["rec"]]
    assert report.retrained == "v2" and report.retrained_recommender == "v2"
    assert report.purged == ["v1", "recommend/v1"] and report.pending == []
    # no table and no model file holds the customer's words or id any more
    stored = _everything_stored(db)
    assert SECRET not in stored and "C038" not in stored
    after = _model_files(settings.models_dir)
    assert SECRET not in after and "C038" not in after
    # the new model's manifest proves the erased example is absent
    reg = ModelRegistry(settings.models_dir)
    assert reg.versions() == ["v2"] and reg.live_version() == "v2"
    manifest = reg.manifest("v2")
    with session_scope(db) as s:
        remaining = {e.example_id for e in entries.training_examples(s)}
        assert set(manifest["data"]["example_ids"]) == remaining and len(remaining) == 28
        data = rights.export_customer(s, "C038")
        assert data["found"] is False and data["models"] == {"answer_engine": [], "recommender": []}
        [event] = audit.query(s, action="privacy.erase")
        assert event.target == audit.customer_ref("C038")
        assert (
            "C038" not in json.dumps(audit.to_dict(event)) and event.details["conversations"] == 2
        )
        assert rights.export_customer(s, "C001")["found"] is True  # the other customer is untouched
    live = registry_for(settings.models_dir).load_live()
    assert live.version == "v2" and "C038" not in {str(u) for u in live.model.user_ids_}
    # erasing twice says so; an unknown customer too; nothing is written either time
    with pytest.raises(rights.AlreadyErased, match="was erased at"):
        rights.erase_customer(db, "C038", actor="admin")
    with pytest.raises(rights.UnknownCustomer):
        rights.erase_customer(db, "never-seen", actor="admin")
    with session_scope(db) as s:
        assert len(audit.query(s, action="privacy.erase")) == 1


class _NoPandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            raise ModuleNotFoundError("No module named 'pandas'", name="pandas")


def _without_pandas(monkeypatch) -> None:
    """`import pandas` fails from now on in this test, as on a serving-only install."""
    monkeypatch.delitem(sys.modules, "pandas", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPandas(), *sys.meta_path])


def test_erasure_on_a_serving_only_install_drops_the_stale_recommender(shop, monkeypatch) -> None:
    """`pip install annae` has no pandas, so the recommender cannot be retrained there: the erased
    customer's data must still leave every model on disk, and the report says what is missing."""
    db, settings = shop["db"], shop["settings"]
    _without_pandas(monkeypatch)
    report = rights.erase_customer(db, "C038", actor="admin")
    assert report.retrained == "v2" and report.retrained_recommender is None
    assert report.purged == ["v1", f"recommend/{shop['rec']}"]
    [note] = report.pending
    assert note.startswith("recommender: none is live until `annae rec train`")
    assert "pip install 'annae[recommend]'" in note
    assert registry_for(settings.models_dir).live_version() is None
    assert "C038" not in _model_files(settings.models_dir)


def test_erasure_all_or_nothing_then_deferred_retrain(shop, monkeypatch) -> None:
    db, settings = shop["db"], shop["settings"]
    with monkeypatch.context() as patch:
        patch.setattr(
            consent, "erase", lambda *_a, **_k: (_ for _ in ()).throw(RuntimeError("disk full"))
        )
        with pytest.raises(RuntimeError, match="disk full"):
            rights.erase_customer(db, "C038", actor="admin")
    with session_scope(db) as s:
        assert rights.export_customer(s, "C038")["found"] is True
        assert audit.query(s, action="privacy.erase") == []
    assert SECRET in _everything_stored(db)
    assert not (ModelRegistry(settings.models_dir).path(shop["v1"]) / rights.STALE).exists()

    report = rights.erase_customer(db, "C038", actor="admin", retrain=False)
    assert report.retrained is None and report.purged == []
    assert report.pending == [f"answer engine {shop['v1']}", f"recommender {shop['rec']}"]
    assert (ModelRegistry(settings.models_dir).path(shop["v1"]) / rights.STALE).exists()
    assert (registry_for(settings.models_dir).root / shop["rec"] / rights.STALE).exists()
    with session_scope(db) as s:
        assert rights.export_customer(s, "C038")["found"] is False
        record_interaction(s, "C038", "A01", kind="click")
    # the customer came back: that is new data, and erasing it works again
    again = rights.erase_customer(db, "C038", actor="admin", retrain=False)
    assert again.interactions == 1 and again.conversations == 0


def test_retention_deletes_old_transcripts_only(shop) -> None:
    db = shop["db"]
    with session_scope(db) as s:
        s.execute(
            update(Conversation)
            .where(Conversation.id == shop["conv_id"])
            .values(state="resolved", updated_at=utcnow() - timedelta(days=40))
        )
    result = rights.retain(db, days=30)
    assert result["conversations"] == 1 and result["messages"] == 2
    assert result["stats"]["state"] == {"resolved": 1}
    with session_scope(db) as s:
        ids = set(s.scalars(select(Conversation.id)))
        assert shop["conv_id"] not in ids and len(ids) == 2
        [event] = audit.query(s, action="privacy.retain")
        assert event.details["conversations"] == 1 and SECRET not in json.dumps(event.details)
    assert rights.retain(db, days=30)["conversations"] == 0
    with pytest.raises(rights.RightsError, match="positive"):
        rights.retain(db, days=0)


def test_cli_export_erase_retain_explain(shop, tmp_path) -> None:
    runner = CliRunner()
    out_file = tmp_path / "c038.json"
    out = runner.invoke(app, ["export", "--customer", "C038", "--out", str(out_file)])
    assert out.exit_code == 0, out.output
    assert json.loads(out_file.read_text())["found"] is True
    out = runner.invoke(app, ["explain", str(shop["msg_id"])])
    assert out.exit_code == 0 and "model v1" in out.output
    out = runner.invoke(app, ["explain", "999999"])
    assert out.exit_code == 2 and "no message" in out.output
    out = runner.invoke(app, ["erase", "--customer", "C038"], input="n\n")
    assert out.exit_code != 0
    out = runner.invoke(app, ["erase", "--customer", "C038", "--yes", "--no-retrain"])
    assert out.exit_code == 0, out.output
    assert "2 conversations" in out.output and "still to retrain" in out.output
    out = runner.invoke(app, ["erase", "--customer", "C038", "--yes"])
    assert out.exit_code == 3 and "was erased at" in out.output
    out = runner.invoke(app, ["erase", "--customer", "ghost", "--yes"])
    assert out.exit_code == 2 and "nothing is held" in out.output
    out = runner.invoke(app, ["retain", "--days", "30"])
    assert out.exit_code == 0 and "deleted 0 conversations" in out.output
    out = runner.invoke(app, ["audit", "--json", "--action", "privacy."])
    actions = [json.loads(line)["action"] for line in out.output.splitlines()]
    assert actions == ["privacy.retain", "privacy.erase", "privacy.export"]


def test_erasure_removes_the_widget_link_and_every_recommendation_input(shop) -> None:
    """A conversation the widget linked to C038 by a signed identity, their interest in an answered
    entry and a card click: erasure removes the link and each input of the "customers who asked
    about this also bought" aggregate, which then no longer counts them."""
    from annae.recommend import asked_also_bought, link_entry, record_entry_interest
    from annae.recommend.store import upsert_product

    db = shop["db"]
    with session_scope(db) as s:
        conv, _token = conversations.create(
            s,
            customer_id="C038",
            verified=True,
            customer_name="Zebra Kim",
            customer_email="zebra.kim@example.com",
        )
        widget_conv = conv.id
        upsert_product(s, "LINKED", name="Linked mug")
        upsert_product(s, "ALSO", name="Also bought tray")
        shipping = entries.get_entry_by_key(s, "shipping").id
        link_entry(s, shipping, ["LINKED"])
        for cid in ("C038", "C001", "C002"):
            record_entry_interest(s, shipping, cid)
            record_interaction(s, cid, "ALSO", kind="purchase", source="shop-extra")
        record_interaction(s, "C038", "LINKED", kind="click", source="chat")
        assert asked_also_bought(s, shipping, 3, exclude=["LINKED"]) == [("ALSO", 3)]
        exported = rights.export_customer(s, "C038")
        widget = next(c for c in exported["conversations"] if c["id"] == widget_conv)
        assert widget["verified"] is True and widget["customer_email"] == "zebra.kim@example.com"
        kinds = {(i["kind"], i["source"]) for i in exported["interactions"]}
        assert ("conversation", f"entry:{shipping}") in kinds and ("click", "chat") in kinds
    assert "zebra.kim@example.com" in _everything_stored(db)

    report = rights.erase_customer(db, "C038", actor="admin", retrain=False)
    assert report.conversations == 3
    stored = _everything_stored(db)
    assert "C038" not in stored and "Zebra Kim" not in stored and "zebra.kim" not in stored
    with session_scope(db) as s:
        assert s.get(Conversation, widget_conv) is None
        assert asked_also_bought(s, shipping, 3, exclude=["LINKED"]) == []  # 2 customers left
        assert asked_also_bought(s, shipping, 3, exclude=["LINKED"], min_customers=2) == [
            ("ALSO", 2)
        ]


def test_every_holder_registers_and_none_is_skipped(monkeypatch) -> None:
    """Export and erasure import each module of rights.HOLDERS by name (privacy imports no package
    above it); one that registers nothing stops them instead of being left out."""
    assert len(rights.holders()) == len(rights.HOLDERS) == 3
    monkeypatch.setattr(rights, "HOLDERS", (*rights.HOLDERS, "annae.settings"))
    with pytest.raises(RuntimeError, match="annae.settings did not register"):
        rights.holders()


def test_an_explanation_names_the_korean_fast_path() -> None:
    from types import SimpleNamespace

    msg = SimpleNamespace(type="text", entry_id=None)
    decision = {"type": "answer", "entry_id": 31, "confidence": 0.9998, "threshold": 0.894}
    model = {"version": "v1", "kb_revision": 1, "n_examples": 529}
    plain = rights._summary(decision, model, msg)
    assert plain.startswith("answered with entry 31 at 1.00 ≥ threshold 0.89, model v1")
    fast = rights._summary({**decision, "scorer": "lexical"}, model, msg)
    assert "by the Korean fast path (lexical features alone, e5 not run), model v1" in fast
