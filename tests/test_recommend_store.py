"""Recommendations in the database (SQLite and PostgreSQL): import, consent, interactions,
entry links, training, and what the service returns."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from annae.kb.entries import add_entry
from annae.recommend.data import PRESETS, ImportFileError, load_interactions
from annae.recommend.registry import list_models, registry_for
from annae.recommend.sample import retail_slice, write_synthetic_csv
from annae.recommend.service import (
    NO_CONSENT,
    REASON_BEFORE,
    recommend,
    recommend_for_entry,
    similar,
    suggest_for_entry,
)
from annae.recommend.store import (
    RecommendError,
    counts,
    delete_product,
    entry_products,
    has_marketing_consent,
    import_frame,
    link_entry,
    record_entry_interest,
    record_interaction,
    set_marketing_consent,
    set_marketing_consent_bulk,
    upsert_product,
)
from annae.recommend.train import train_from_db
from annae.store.db import session_scope
from annae.store.tables.recommend import RecInteraction


@pytest.fixture
def shop_file(tmp_path):
    return write_synthetic_csv(tmp_path / "shop.csv")


def _import(engine, path, preset="default", **kw):
    frame, report = load_interactions(path, PRESETS[preset])
    return import_frame(engine, frame, report, **kw)


def test_online_retail_slice_imports_with_its_report(engine, datasets, tmp_path):
    path = retail_slice(
        datasets / "online-retail/online_retail.csv.gz", tmp_path / "r.csv.gz", every=40
    )
    report = _import(engine, path, "online-retail")
    with session_scope(engine) as s:
        c = counts(s)
    assert c["interactions"] == report.interactions_written == report.rows_kept > 1000
    assert c["customers"] == report.new_customers == report.customers
    assert c["products"] == report.new_products == report.products
    assert report.cancellations > 0 and report.missing_customer > 0 and report.non_product_codes > 0


def test_reimport_is_refused_unless_replaced(engine, shop_file):
    first = _import(engine, shop_file)
    with pytest.raises(ImportFileError, match="already imported"):
        _import(engine, shop_file)
    again = _import(engine, shop_file, replace=True)
    assert again.new_customers == 0 and again.new_products == 0
    with session_scope(engine) as s:
        assert counts(s)["interactions"] == first.interactions_written


def test_a_failing_import_writes_nothing(engine, shop_file, monkeypatch):
    import annae.recommend.store as store

    frame, report = load_interactions(shop_file)
    calls = {"n": 0}

    def boom(done, total):
        calls["n"] += 1
        raise RuntimeError("disk full")

    monkeypatch.setattr(store, "CHUNK", 100)
    with pytest.raises(RuntimeError):
        import_frame(engine, frame, report, progress=boom)
    assert calls["n"] == 1
    with session_scope(engine) as s:
        assert counts(s) == {"customers": 0, "products": 0, "active_products": 0, "interactions": 0}


def test_consent_defaults_to_no(engine, shop_file):
    _import(engine, shop_file)
    with session_scope(engine) as s:
        assert not has_marketing_consent(s, "C000")
        assert not has_marketing_consent(s, "nobody")
        set_marketing_consent(s, "C000", True)
    with session_scope(engine) as s:
        assert has_marketing_consent(s, "C000")
        set_marketing_consent(s, "C000", False)
        assert not has_marketing_consent(s, "C000")
        with pytest.raises(RecommendError, match="true or false"):
            set_marketing_consent(s, "C000", "yes")
        assert set_marketing_consent_bulk(s, True) == counts(s)["customers"]


def test_record_interaction_validates(engine, shop_file):
    _import(engine, shop_file)
    with session_scope(engine) as s:
        row = record_interaction(s, "new-customer", "A01", kind="click")
        assert row.id and row.kind == "click"
        assert not has_marketing_consent(s, "new-customer")
        for bad, msg in (
            (dict(kind="stare"), "kind must be"),
            (dict(quantity=0), "positive integer"),
        ):
            with pytest.raises(RecommendError, match=msg):
                record_interaction(s, "C000", "A01", **bad)
        with pytest.raises(RecommendError, match="no product"):
            record_interaction(s, "C000", "NOPE")
        with pytest.raises(RecommendError, match="customer id"):
            record_interaction(s, "", "A01")


def test_entry_links_and_conversation_interest(engine, shop_file):
    _import(engine, shop_file)
    with session_scope(engine) as s:
        entry = add_entry(
            s, key="lanterns", question="Do you sell garden lanterns?", answer="Yes, in red."
        )
        assert link_entry(s, entry.id, ["A01", "A02", "A01"]) == ["A01", "A02"]
        with pytest.raises(RecommendError, match="no product"):
            link_entry(s, entry.id, ["A01", "ZZZ"])
        with pytest.raises(RecommendError, match="no knowledge-base entry"):
            link_entry(s, 99999, ["A01"])
        before = s.scalar(select(func.count()).select_from(RecInteraction))
        assert record_entry_interest(s, entry.id, "C001") == 2
        after = s.scalar(select(func.count()).select_from(RecInteraction))
        assert after == before + 2
        assert entry_products(s, entry.id) == ["A01", "A02"]


@pytest.fixture
def trained(engine, shop_file, tmp_path):
    _import(engine, shop_file)
    saved = train_from_db(engine, tmp_path / "models")
    return saved


def test_train_saves_a_live_model(engine, trained, tmp_path):
    reg = registry_for(tmp_path / "models")
    assert reg.live_version() == trained.version == "v1"
    assert reg.load_live() is reg.load_live()  # cached once per process
    with session_scope(engine) as s:
        models = list_models(s)
    assert [m.version for m in models] == ["v1"] and models[0].live
    assert models[0].n_customers == 80


def test_no_consent_means_no_recommendations(engine, trained):
    with session_scope(engine) as s:
        out = recommend(s, trained, "C000", k=5)
    assert out["consent"] is False and out["items"] == [] and out["reason"] == NO_CONSENT


def test_recommendations_with_reasons_and_lists(engine, trained):
    with session_scope(engine) as s:
        set_marketing_consent(s, "C000", True)
    with session_scope(engine) as s:
        mixed = recommend(s, trained, "C000", k=8)
        again = recommend(s, trained, "C000", k=8, list_="buy_again")
        new = recommend(s, trained, "C000", k=5, list_="also_like")
    assert mixed["consent"] is True and mixed["personalised"] and len(mixed["items"]) == 8
    model = trained.model
    own = {str(model.item_ids_[i]) for i in model.history_[model.user_code("C000")].indices}
    assert {i["product_id"] for i in again["items"]} <= own
    assert all(i["list"] == "buy_again" and i["reason"] == REASON_BEFORE for i in again["items"])
    assert not {i["product_id"] for i in new["items"]} & own
    assert all(i["list"] == "also_like" and i["reason"] for i in new["items"])
    # the mixed list interleaves both kinds and tags each item
    assert {i["list"] for i in mixed["items"]} <= {"buy_again", "also_like"}
    for item in mixed["items"]:
        assert (item["list"] == "buy_again") == (item["product_id"] in own)
    # C000 buys group A: a co-purchase or description reason names one of their A products
    explained = [i for i in new["items"] if i["because"]]
    assert explained and all(
        i["because"] in own and i["because"].startswith("A") for i in explained
    )
    assert all(
        i["reason"].startswith(("bought by customers who bought", "similar to")) for i in explained
    )


def test_deleted_products_are_never_recommended(engine, trained):
    with session_scope(engine) as s:
        set_marketing_consent(s, "C000", True)
        first = recommend(s, trained, "C000", k=3, list_="also_like")["items"][0]["product_id"]
        delete_product(s, first)
        delete_product(s, "HOT")
    with session_scope(engine) as s:
        for list_ in ("mixed", "buy_again", "also_like"):
            ids = [
                i["product_id"] for i in recommend(s, trained, "C000", k=20, list_=list_)["items"]
            ]
            assert first not in ids and "HOT" not in ids
        assert "HOT" not in [
            i["product_id"] for i in recommend(s, trained, "stranger", k=5)["items"]
        ]
        assert first not in [i["product_id"] for i in similar(s, trained, "A01", k=30)["items"]]


def test_unknown_customers_get_popular_items(engine, trained):
    with session_scope(engine) as s:
        out = recommend(s, trained, "stranger", k=3)
    assert out["consent"] is None and not out["personalised"]
    assert out["items"][0]["product_id"] == "HOT"
    assert out["items"][0]["reason"] == "popular this week"


def test_popular_items_without_a_model(engine, shop_file):
    _import(engine, shop_file)
    with session_scope(engine) as s:
        out = recommend(s, None, "stranger", k=2)
    assert out["items"][0]["product_id"] == "HOT"


def test_similar_products(engine, trained):
    with session_scope(engine) as s:
        out = similar(s, trained, "B03", k=4)
        assert out["name"] == "blue kitchen 3 mug"
        assert len(out["items"]) == 4 and all(i["product_id"][0] in "BH" for i in out["items"])
        assert all(i["because"] == "B03" for i in out["items"])
        # a product added after training: similar by description
        upsert_product(s, "B99", name="blue kitchen big mug")
        cold = similar(s, trained, "B99", k=3)
        assert cold["items"] and all(i["product_id"].startswith("B") for i in cold["items"])
        assert cold["items"][0]["reason"].startswith("similar description")
        with pytest.raises(RecommendError, match="no product"):
            similar(s, trained, "NOPE")


def test_bad_requests(engine, trained):
    with session_scope(engine) as s:
        with pytest.raises(RecommendError, match="k must be"):
            recommend(s, trained, "C000", k=0)
        with pytest.raises(RecommendError, match="list must be"):
            recommend(s, trained, "C000", list_="everything")


def test_cards_for_an_entry(engine, trained):
    with session_scope(engine) as s:
        entry = add_entry(s, key="mugs", question="Do you have blue mugs?", answer="Yes.")
        link_entry(s, entry.id, ["B01", "B02"])
    with session_scope(engine) as s:
        assert recommend_for_entry(s, trained, entry.id, "C001") == []  # no consent
        set_marketing_consent(s, "C001", True)
        cards = recommend_for_entry(s, trained, entry.id, "C001", k=3)
        assert [c["product_id"] for c in cards[:2]] in (["B01", "B02"], ["B02", "B01"])
        assert len(cards) == 3 and cards[2]["product_id"] not in ("B01", "B02")
        assert all(c["reason"].startswith("for you: ") for c in cards)
        assert recommend_for_entry(s, trained, 4242, "C001") == []
        # non-personal cards: no customer goes in, so every visitor gets the same row
        general = suggest_for_entry(s, trained, entry.id, k=3)
        assert [c["product_id"] for c in general[:2]] == ["B01", "B02"]  # link order
        assert len(general) == 3 and general[2]["product_id"] not in ("B01", "B02")
        assert all(c["reason"].startswith("for everyone: ") for c in general)
        assert suggest_for_entry(s, trained, 4242) == []
