"""Training from the knowledge base in the database, versions and the live pointer."""

from __future__ import annotations

import json

import pytest

from annae.kb import entries
from annae.kb.training import train_from_db
from annae.nlu.classifier import TrainingError
from annae.nlu.registry import ModelRegistry
from annae.settings import Settings
from annae.store.db import session_scope

FAQ = [
    (
        "shipping",
        "How long does shipping take?",
        "Two to three days.",
        [
            "when will my parcel arrive",
            "delivery time",
            "how many days for delivery",
            "배송 얼마나 걸려요",
        ],
    ),
    (
        "refund",
        "When do I get my refund?",
        "Within five business days.",
        [
            "refund not received",
            "where is my money back",
            "how long for a refund",
            "환불 언제 돼요",
        ],
    ),
    (
        "wrap",
        "Do you gift wrap?",
        "Yes, for ₩2,000.",
        ["gift wrapping available?", "can you wrap it", "is wrapping free", "선물 포장 되나요"],
    ),
]


def _fill(engine):
    with session_scope(engine) as s:
        for key, q, a, ex in FAQ:
            entries.add_entry(s, key=key, question=q, answer=a, examples=ex)
        entries.add_examples(
            s, None, ["what's the weather", "tell me a joke", "오늘 날씨"], source="test"
        )


def test_train_from_db_saves_versions_and_provenance(engine, tmp_path):
    _fill(engine)
    reg = ModelRegistry(tmp_path / "models")
    settings = Settings(home=tmp_path, encoder="none")
    assert reg.live_version() is None and reg.load_live() is None
    info = train_from_db(reg, engine, settings=settings, author="tester")
    assert info.version == "v1" and reg.live_version() == "v1"
    m = json.loads((info.path / "manifest.json").read_text())
    with session_scope(engine) as s:
        rev = entries.current_revision(s)
        examples = entries.training_examples(s)
    assert m["kb_revision"] == rev and m["author"] == "tester"
    assert m["data"]["n_examples"] == len(examples) == 3 * 5 + 3
    assert sorted(m["data"]["example_ids"]) == sorted(e.example_id for e in examples)
    assert m["data"]["hash"] == entries.data_hash(examples)

    live = reg.load_live(threads=1)
    d = live.decide("how long for delivery?")
    assert d.candidates[0].key == "shipping" and d.model_version == "v1"
    with session_scope(engine) as s:
        assert d.candidates[0].entry_id == entries.get_entry_by_key(s, "shipping").id

    # a second version, not live until promoted
    info2 = train_from_db(reg, engine, settings=settings, make_live=False)
    assert info2.version == "v2" and reg.live_version() == "v1" and reg.versions() == ["v1", "v2"]
    reg.set_live("v2")
    assert reg.load_live().version == "v2"
    with pytest.raises(FileNotFoundError):
        reg.set_live("v7")
    with pytest.raises(ValueError):
        reg.path("../etc")


def test_disabled_entries_are_not_trained(engine, tmp_path):
    _fill(engine)
    with session_scope(engine) as s:
        entries.update_entry(s, entries.get_entry_by_key(s, "wrap").id, active=False)
    info = train_from_db(
        ModelRegistry(tmp_path / "m"), engine, settings=Settings(home=tmp_path, encoder="none")
    )
    engine_ = ModelRegistry(tmp_path / "m").load(info.version)
    assert "wrap" not in set(engine_.classifier.classes_)


def test_empty_kb_cannot_train(engine, tmp_path):
    with pytest.raises(TrainingError, match="at least two entries"):
        train_from_db(
            ModelRegistry(tmp_path / "m"), engine, settings=Settings(home=tmp_path, encoder="none")
        )
    assert ModelRegistry(tmp_path / "m").live_version() is None


def test_a_training_reuses_the_live_models_korean_encoder(engine, tmp_path):
    """train_from_db gives the fit the live and the latest model: the second version takes the
    first one's int8 Korean encoder (no build) and hard-links it."""
    from annae.kb.training import reusable_models
    from annae.nlu import e5int8

    _fill(engine)
    reg = ModelRegistry(tmp_path / "models")
    settings = Settings(home=tmp_path, encoder="bundled")
    assert reusable_models(reg) == []
    v1 = train_from_db(reg, engine, settings=settings)
    assert reusable_models(reg) == [v1.path]
    calls = e5int8.build.cache_info()
    v2 = train_from_db(reg, engine, settings=settings, make_live=False)
    assert e5int8.build.cache_info() == calls
    onnx_file = f"{e5int8.FOLDER}/{e5int8.MODEL_FILE}"
    assert (v2.path / onnx_file).stat().st_ino == (v1.path / onnx_file).stat().st_ino
    assert reusable_models(reg) == [v1.path, v2.path]  # live first, then the latest
    question = ["배송 얼마나 걸려요?"]
    assert reg.load("v2").candidates(question) == reg.load("v1").candidates(question)
