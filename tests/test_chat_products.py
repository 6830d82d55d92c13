"""Product cards in the chat on the real service: consent, clicks, agent suggestions, entry links."""

from __future__ import annotations

import pytest
from api_support import make_api
from sqlalchemy import func, select

from annae.agents.users import create_api_key
from annae.privacy import consent
from annae.recommend.data import load_interactions
from annae.recommend.store import delete_product, import_frame, link_entry
from annae.store.db import get_engine, session_scope
from annae.store.tables.recommend import RecInteraction

SHOP = """customer_id,product_id,timestamp,quantity,price,name,description,category,kind
C1,P1,2026-11-01 10:00,1,9.5,Blue mug,A blue mug,kitchen,purchase
C1,P2,2026-11-02 10:00,2,4.0,Tea towel,Cotton towel,kitchen,purchase
C2,P1,2026-11-03 10:00,1,9.5,Blue mug,A blue mug,kitchen,purchase
C2,P3,2026-11-03 11:00,1,12.0,Teapot,Round teapot,kitchen,purchase
C3,P4,2026-11-04 09:00,1,3.25,Coaster,Cork coaster,kitchen,purchase
"""
QUESTION = "How long does delivery take?"


@pytest.fixture
def shop(annae_home, db_url, models, monkeypatch, tmp_path):
    api = make_api(annae_home, db_url, models, monkeypatch)
    engine = get_engine(db_url)
    path = tmp_path / "shop.csv"
    path.write_text(SHOP)
    frame, report = load_interactions(path)
    import_frame(engine, frame, report)
    with session_scope(engine) as s:
        key = create_api_key(s, "shop")
    with api.client:
        conv_id, headers = api.customer()
        entry_id = api.say(conv_id, headers, QUESTION)["entry_id"]
        assert entry_id
        with session_scope(engine) as s:
            link_entry(s, entry_id, ["P3", "P4", "P1", "P2"])
        api.key, api.entry_id, api.engine = key, entry_id, engine
        yield api


def _identified(api, customer: str = "C1", granted: bool = True) -> tuple[str, dict]:
    if granted:
        with session_scope(api.engine) as s:
            consent.grant(s, customer, "marketing", text_version="test-v1")
    r = api.client.post(
        "/api/v1/conversations", json={"customer_id": customer}, headers={"X-API-Key": api.key}
    )
    assert r.status_code == 201, r.text
    conv_id, headers = r.json()["id"], {"Authorization": f"Bearer {r.json()['token']}"}
    assert api.say(conv_id, headers, QUESTION)["entry_id"] == api.entry_id  # cards follow answers
    return conv_id, headers


def _cards(api, conv_id: str, headers: dict, entry_id: int | None = None):
    return api.client.get(
        f"/api/v1/conversations/{conv_id}/products",
        params={"entry_id": entry_id or api.entry_id},
        headers=headers,
    )


def _clicks(api, customer: str) -> int:
    with session_scope(api.engine) as s:
        return s.scalar(
            select(func.count())
            .select_from(RecInteraction)
            .where(RecInteraction.customer_id == customer, RecInteraction.kind == "click")
        )


def test_consenting_customer_gets_three_cards_and_withdrawal_is_immediate(shop):
    conv_id, headers = _identified(shop)
    body = _cards(shop, conv_id, headers).json()
    assert body["consent"] is True and body["reason"] is None and body["kind"] == "personal"
    assert [c["product_id"] for c in body["items"]] == ["P3", "P4", "P1"]
    assert body["items"][0] == {
        "product_id": "P3",
        "name": "Teapot",
        "price": 12.0,
        "reason": "for you: about your question",
        "kind": "personal",
    }
    with session_scope(shop.engine) as s:
        consent.withdraw(s, "C1", "marketing")
    body = _cards(shop, conv_id, headers).json()
    assert body["consent"] is False and "consent" in body["reason"]
    assert body["kind"] == "general" and {c["kind"] for c in body["items"]} == {"general"}
    assert all(c["reason"].startswith("for everyone: ") for c in body["items"])


def test_no_consent_or_no_customer_gets_general_cards_only(shop):
    conv_id, headers = _identified(shop, "C2", granted=False)
    body = _cards(shop, conv_id, headers).json()
    assert body["consent"] is False and body["kind"] == "general"
    assert "marketing consent" in body["reason"]
    assert [c["product_id"] for c in body["items"]] == ["P3", "P4", "P1"]
    assert body["items"][0] == {
        "product_id": "P3",
        "name": "Teapot",
        "price": 12.0,
        "reason": "for everyone: goes with this answer",
        "kind": "general",
    }
    anon_id, anon = shop.customer()
    assert shop.say(anon_id, anon, QUESTION)["entry_id"] == shop.entry_id
    body = _cards(shop, anon_id, anon).json()
    assert body["consent"] is False and "no identified customer" in body["reason"]
    assert [c["product_id"] for c in body["items"]] == ["P3", "P4", "P1"]
    # nothing about the visitors was recorded: no interest, no clicks
    r = shop.client.post(f"/api/v1/conversations/{anon_id}/products/P3/click", headers=anon)
    assert r.status_code == 204
    with session_scope(shop.engine) as s:
        rows = s.scalars(select(RecInteraction).where(RecInteraction.source != "shop.csv")).all()
    assert rows == []


def test_cards_only_right_after_an_answer_never_on_hand_offs(shop):
    conv_id, headers = _identified(shop)
    assert _cards(shop, conv_id, headers).json()["items"]
    other = shop.entry_id + 1
    body = _cards(shop, conv_id, headers, entry_id=other).json()
    assert body["items"] == [] and "latest answer" in body["reason"]
    reply = shop.say(conv_id, headers, "This is useless, I want to complain. Terrible!!")
    assert reply["type"] == "handoff", reply
    body = _cards(shop, conv_id, headers).json()
    assert body["items"] == [] and "latest answer" in body["reason"]
    anon_id, anon = shop.customer()
    assert _cards(shop, anon_id, anon).json()["items"] == []  # no answer yet


def test_a_channel_id_too_long_for_the_recommender_still_gets_cards(shop):
    long_id = "u" * 150  # a channel may use 200 characters; recommendation ids hold 100
    conv_id, headers = _identified(shop, long_id)
    body = _cards(shop, conv_id, headers).json()
    assert body["kind"] == "personal" and len(body["items"]) == 3
    with session_scope(shop.engine) as s:
        assert (
            s.scalars(select(RecInteraction).where(RecInteraction.kind == "conversation")).all()
            == []
        )


def test_the_deployment_switch_turns_cards_off(annae_home, db_url, models, monkeypatch):
    from api_support import make_api

    off = make_api(annae_home, db_url, models, monkeypatch, ANNAE_CHAT_PRODUCTS="false")
    with off.client:
        conv_id, headers = off.customer()
        entry_id = off.say(conv_id, headers, QUESTION)["entry_id"]
        body = off.client.get(
            f"/api/v1/conversations/{conv_id}/products",
            params={"entry_id": entry_id},
            headers=headers,
        ).json()
    assert body["items"] == [] and "turned off" in body["reason"]


def test_personal_interest_feeds_the_aggregate_for_everyone(shop):
    """Consenting customers' questions count as interest (once per conversation); what at least
    three of them bought then reaches everyone as "customers who asked about this also bought"."""
    with session_scope(shop.engine) as s:
        link_entry(s, shop.entry_id, ["P3"])
        for cid in ("C7", "C8", "C9"):
            upsert = [("P2", cid)] + ([("P4", cid)] if cid != "C9" else [])
            for pid, who in upsert:
                from annae.recommend.store import record_interaction

                record_interaction(s, who, pid, kind="purchase", source="shop-2")
    anon_id, anon = shop.customer()
    shop.say(anon_id, anon, QUESTION)
    assert [c["product_id"] for c in _cards(shop, anon_id, anon).json()["items"]] == ["P3"]
    for cid in ("C7", "C8", "C9"):
        conv_id, headers = _identified(shop, cid)
        _cards(shop, conv_id, headers)
        _cards(shop, conv_id, headers)  # asked again in the same conversation: counted once
    with session_scope(shop.engine) as s:
        interest = s.scalars(
            select(RecInteraction.customer_id).where(RecInteraction.kind == "conversation")
        ).all()
    assert sorted(interest) == ["C7", "C8", "C9"]
    items = _cards(shop, anon_id, anon).json()["items"]
    assert [c["product_id"] for c in items][:2] == ["P3", "P2"]  # P4: only two customers
    assert items[1]["reason"] == "for everyone: customers who asked about this also bought"
    assert "P4" not in [c["product_id"] for c in items if "asked" in c["reason"]]


def test_deleted_products_and_unknown_entries(shop):
    conv_id, headers = _identified(shop)
    with session_scope(shop.engine) as s:
        delete_product(s, "P4")
    ids = [c["product_id"] for c in _cards(shop, conv_id, headers).json()["items"]]
    assert ids == ["P3", "P1", "P2"]
    assert _cards(shop, conv_id, headers, entry_id=999_999).json()["items"] == []
    r = shop.client.post(f"/api/v1/conversations/{conv_id}/products/P4/click", headers=headers)
    assert r.status_code == 404
    r = shop.client.post(f"/api/v1/conversations/{conv_id}/products/NOPE/click", headers=headers)
    assert r.status_code == 404 and "NOPE" in r.json()["error"]["message"]
    r = shop.client.get(f"/api/v1/conversations/{conv_id}/products", headers=headers)
    assert r.status_code == 422  # entry_id is required


def test_clicks_are_recorded_only_with_consent(shop):
    conv_id, headers = _identified(shop)
    before = _clicks(shop, "C1")
    r = shop.client.post(f"/api/v1/conversations/{conv_id}/products/P3/click", headers=headers)
    assert r.status_code == 204
    assert _clicks(shop, "C1") == before + 1
    other_id, other = _identified(shop, "C2", granted=False)
    r = shop.client.post(f"/api/v1/conversations/{other_id}/products/P3/click", headers=other)
    assert r.status_code == 204 and _clicks(shop, "C2") == 0


def test_wrong_tokens_and_unknown_conversations(shop):
    conv_id, headers = _identified(shop)
    other_id, other = shop.customer()
    r = _cards(shop, conv_id, other)
    assert r.status_code == 403
    r = _cards(shop, conv_id, {"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert _cards(shop, conv_id, {}).status_code == 401
    assert _cards(shop, "0" * 32, headers).status_code == 404
    r = shop.client.post(f"/api/v1/conversations/{conv_id}/products/P3/click", headers=other)
    assert r.status_code == 403 and _clicks(shop, "C1") == 0


def test_agent_suggestion_reaches_the_customer_live(shop):
    conv_id, headers = _identified(shop)
    agent = shop.login("alice")
    url = f"/api/v1/conversations/{conv_id}/suggest-products"
    assert shop.client.post(url, headers=headers).status_code == 401  # a customer token
    with shop.client.websocket_connect(
        f"/api/v1/conversations/{conv_id}/ws?token={headers['Authorization'][7:]}"
    ) as ws:
        assert ws.receive_json()["event"] == "hello"
        r = shop.client.post(url, headers=agent)
        assert r.status_code == 200, r.text
        frame = ws.receive_json()
    assert frame["event"] == "message"
    msg = frame["message"]
    assert msg["sender"] == "agent" and msg["type"] == "products" and msg["author"] == "alice"
    assert 1 <= len(msg["options"]) <= 3
    assert all(set(c) == {"product_id", "name", "price", "reason", "kind"} for c in msg["options"])
    seen = shop.transcript(conv_id, headers)[-1]
    assert seen["type"] == "products" and seen["options"] == msg["options"]


def test_agent_suggestion_refused_without_consent_or_customer(shop):
    agent = shop.login("alice")
    conv_id, _ = _identified(shop, "C2", granted=False)
    r = shop.client.post(f"/api/v1/conversations/{conv_id}/suggest-products", headers=agent)
    assert r.status_code == 409 and r.json()["error"]["code"] == "no_consent"
    anon_id, anon = shop.customer()
    r = shop.client.post(f"/api/v1/conversations/{anon_id}/suggest-products", headers=agent)
    assert r.status_code == 409 and "no identified customer" in r.json()["error"]["message"]
    assert [m["type"] for m in shop.transcript(anon_id, anon)] == []
    r = shop.client.post(f"/api/v1/conversations/{'0' * 32}/suggest-products", headers=agent)
    assert r.status_code == 404


def test_admin_reads_and_replaces_entry_links(shop):
    root, alice = shop.login("root"), shop.login("alice")
    url = f"/api/v1/admin/entries/{shop.entry_id}/products"
    assert shop.client.get(url, headers=alice).status_code == 403
    body = shop.client.get(url, headers=root).json()
    assert [p["product_id"] for p in body["products"]] == ["P3", "P4", "P1", "P2"]
    r = shop.client.put(url, json={"product_ids": ["P2", "P1"]}, headers=root)
    assert r.status_code == 200 and [p["product_id"] for p in r.json()["products"]] == ["P2", "P1"]
    r = shop.client.put(url, json={"product_ids": ["P1", "NOPE"]}, headers=root)
    assert r.status_code == 422 and "NOPE" in r.json()["error"]["message"]
    body = shop.client.get(url, headers=root).json()
    assert [p["product_id"] for p in body["products"]] == ["P2", "P1"]  # nothing lost
    r = shop.client.put(url, json={"product_ids": "P1"}, headers=root)
    assert r.status_code == 422
    r = shop.client.get("/api/v1/admin/entries/999999/products", headers=root)
    assert r.status_code == 404
    r = shop.client.put(url, json={"product_ids": []}, headers=root)
    assert r.status_code == 200 and r.json()["products"] == []
