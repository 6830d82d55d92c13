"""The recommendation router on a bare FastAPI app (the main app mounts the same router)."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from annae.kb.entries import add_entry
from annae.recommend.data import load_interactions
from annae.recommend.sample import write_synthetic_csv
from annae.recommend.store import import_frame, link_entry, set_marketing_consent
from annae.recommend.train import train_from_db
from annae.store.db import session_scope
from annae.web.routers import recommend as api


@pytest.fixture
def setup(engine, tmp_path):
    frame, report = load_interactions(write_synthetic_csv(tmp_path / "shop.csv"))
    import_frame(engine, frame, report)
    saved = train_from_db(engine, tmp_path / "models")
    with session_scope(engine) as s:
        set_marketing_consent(s, "C001", True)
        entry = add_entry(s, key="mugs", question="Blue mugs?", answer="Yes.")
        link_entry(s, entry.id, ["B01", "B02"])
        entry_id = entry.id
    return engine, saved, entry_id


def _client(engine, saved, *, authorized: bool = True) -> TestClient:
    app = FastAPI()
    app.include_router(api.router)
    app.dependency_overrides[api.get_db] = lambda: engine
    app.dependency_overrides[api.get_model] = lambda: saved
    if authorized:
        app.dependency_overrides[api.authorize] = lambda: "test"
    return TestClient(app)


def test_recommendations_endpoint(setup):
    engine, saved, _ = setup
    client = _client(engine, saved)
    r = client.get("/api/v1/customers/C001/recommendations", params={"k": 4})
    assert r.status_code == 200
    body = r.json()
    assert body["consent"] is True and body["personalised"] and body["model_version"] == "v1"
    assert len(body["items"]) == 4
    assert all(set(i) >= {"product_id", "name", "price", "reason", "list"} for i in body["items"])
    r = client.get("/api/v1/customers/C001/recommendations", params={"list": "also_like", "k": 3})
    assert all(i["list"] == "also_like" for i in r.json()["items"])
    r = client.get("/api/v1/customers/C001/recommendations", params={"list": "buy_again"})
    assert r.json()["items"] and all(i["list"] == "buy_again" for i in r.json()["items"])


def test_no_consent_and_unknown_customers(setup):
    engine, saved, _ = setup
    client = _client(engine, saved)
    body = client.get("/api/v1/customers/C000/recommendations").json()
    assert body["consent"] is False and body["items"] == [] and "consent" in body["reason"]
    body = client.get("/api/v1/customers/someone-new/recommendations", params={"k": 2}).json()
    assert (
        body["items"][0]["product_id"] == "HOT"
        and body["items"][0]["reason"] == "popular this week"
    )


def test_similar_endpoint(setup):
    engine, saved, _ = setup
    client = _client(engine, saved)
    r = client.get("/api/v1/products/A03/similar", params={"k": 3})
    assert r.status_code == 200 and len(r.json()["items"]) == 3
    assert all(i["reason"] for i in r.json()["items"])
    r = client.get("/api/v1/products/NOPE/similar")
    assert r.status_code == 404 and "no product" in r.json()["detail"]


def test_bad_parameters(setup):
    engine, saved, _ = setup
    client = _client(engine, saved)
    assert client.get("/api/v1/customers/C001/recommendations", params={"k": 0}).status_code == 422
    assert (
        client.get("/api/v1/customers/C001/recommendations", params={"k": "ten"}).status_code == 422
    )
    assert (
        client.get("/api/v1/customers/C001/recommendations", params={"list": "all"}).status_code
        == 422
    )
    long_id = "x" * 5000
    assert client.get(f"/api/v1/customers/{long_id}/recommendations").status_code == 422


def test_entry_cards_and_click_recording(setup):
    engine, saved, entry_id = setup
    client = _client(engine, saved)
    cards = client.get(
        f"/api/v1/entries/{entry_id}/products", params={"customer_id": "C001"}
    ).json()["items"]
    assert {c["product_id"] for c in cards[:2]} == {"B01", "B02"}
    assert (
        client.get(f"/api/v1/entries/{entry_id}/products", params={"customer_id": "C000"}).json()[
            "items"
        ]
        == []
    )
    r = client.post(
        "/api/v1/customers/C001/interactions", json={"product_id": "B01", "kind": "click"}
    )
    assert r.status_code == 201 and r.json()["kind"] == "click"
    assert (
        client.post("/api/v1/customers/C001/interactions", json={"product_id": "NOPE"}).status_code
        == 404
    )
    assert (
        client.post(
            "/api/v1/customers/C001/interactions", json={"product_id": "B01", "kind": "x"}
        ).status_code
        == 422
    )


def test_requests_without_credentials_are_refused(setup):
    engine, saved, _ = setup
    client = _client(engine, saved, authorized=False)
    r = client.get("/api/v1/customers/C001/recommendations")
    assert r.status_code == 401
    assert client.get("/api/v1/products/A01/similar").status_code == 401


def test_a_channel_api_key_is_accepted(setup):
    from types import SimpleNamespace

    from annae.agents.users import create_api_key

    engine, saved, _ = setup
    with session_scope(engine) as s:
        key = create_api_key(s, "shop-widget")
    client = _client(engine, saved, authorized=False)
    client.app.state.services = SimpleNamespace(db=engine)  # what the service app provides
    r = client.get("/api/v1/products/A01/similar", params={"k": 2}, headers={"X-API-Key": key})
    assert r.status_code == 200 and len(r.json()["items"]) == 2
    r = client.get("/api/v1/products/A01/similar", headers={"X-API-Key": key + "x"})
    assert r.status_code == 401 and "unknown or revoked API key" in r.json()["detail"]
