"""The privacy API: decision explanations, export, erasure, consent from the widget, audit."""

from __future__ import annotations

import pytest
from api_support import make_api

from annae.dialogue import conversations
from annae.store.db import get_engine, session_scope
from annae.web.routers.privacy import router


@pytest.fixture
def api(annae_home, db_url, models, monkeypatch):
    api = make_api(annae_home, db_url, models, monkeypatch)
    api.client.app.include_router(router)
    with api.client:
        yield api


def _customer_conversation(api, customer_id: str) -> tuple[str, dict]:
    with session_scope(get_engine(api.db_url)) as s:
        conv, token = conversations.create(s, customer_id=customer_id)
    return conv.id, {"Authorization": f"Bearer {token}"}


def test_admin_only(api) -> None:
    agent = api.login("alice")
    for method, path in [
        ("GET", "/api/v1/decisions/1"),
        ("GET", "/api/v1/admin/privacy/customers/K1"),
        ("DELETE", "/api/v1/admin/privacy/customers/K1"),
        ("GET", "/api/v1/admin/privacy/customers/K1/consent"),
        ("GET", "/api/v1/admin/audit"),
    ]:
        assert api.client.request(method, path, headers=agent).status_code == 403, path
        assert api.client.request(method, path).status_code == 401, path


def test_explain_export_consent_erase(api) -> None:
    root = api.login("root")
    conv_id, customer = _customer_conversation(api, "K1")
    reply = api.say(conv_id, customer, "배송은 얼마나 걸려요?")
    r = api.client.get(f"/api/v1/decisions/{reply['message_id']}", headers=root)
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["decision"]["model_version"] == info["model"]["version"] == "v1"
    assert "model v1 trained on KB revision" in info["summary"]
    assert api.client.get("/api/v1/decisions/999999", headers=root).status_code == 404

    # the widget records the customer's consent with the conversation token
    body = {"purpose": "training", "granted": True, "text_version": "chat-2026-11"}
    r = api.client.post(f"/api/v1/conversations/{conv_id}/consent", json=body, headers=customer)
    assert r.status_code == 200 and r.json()["consent"]["training"] is True
    r = api.client.post(f"/api/v1/conversations/{conv_id}/consent", json=body)
    assert r.status_code == 401
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/consent",
        json={"purpose": "training", "granted": True},
        headers=customer,
    )
    assert r.status_code == 422
    r = api.client.post(
        "/api/v1/admin/privacy/customers/K1/consent",
        json={"purpose": "marketing", "granted": False, "source": "phone"},
        headers=root,
    )
    assert r.status_code == 200 and r.json()["consent"] == {
        "service": False,
        "training": True,
        "marketing": False,
    }
    history = api.client.get("/api/v1/admin/privacy/customers/K1/consent", headers=root).json()[
        "history"
    ]
    assert [(h["purpose"], h["source"]) for h in history] == [
        ("training", "widget"),
        ("marketing", "phone"),
    ]

    data = api.client.get("/api/v1/admin/privacy/customers/K1", headers=root).json()
    assert data["found"] is True and data["conversations"][0]["id"] == conv_id
    assert data["conversations"][0]["messages"][0]["text"] == "배송은 얼마나 걸려요?"

    r = api.client.delete("/api/v1/admin/privacy/customers/K1", headers=root)
    assert r.status_code == 200, r.text
    assert r.json()["conversations"] == 1 and r.json()["consents"] == 2
    assert (
        api.client.get("/api/v1/admin/privacy/customers/K1", headers=root).json()["found"] is False
    )
    assert api.client.delete("/api/v1/admin/privacy/customers/K1", headers=root).status_code == 409
    assert (
        api.client.delete("/api/v1/admin/privacy/customers/ghost", headers=root).status_code == 404
    )
    assert (
        api.client.get(f"/api/v1/conversations/{conv_id}/messages", headers=customer).status_code
        == 404
    )

    events = api.client.get("/api/v1/admin/audit?action=privacy.", headers=root).json()["events"]
    assert [e["action"] for e in events] == ["privacy.export", "privacy.erase", "privacy.export"]
    assert all("K1" not in str(e) for e in events)
