"""The admin API: KB entries and examples, users, and retraining with a hot swap."""

from __future__ import annotations

import time

from api_support import PASSWORD

from annae.kb.entries import list_entries
from annae.store.db import get_engine, session_scope

ADMIN_ENDPOINTS = [
    ("GET", "/api/v1/admin/entries"),
    ("POST", "/api/v1/admin/entries"),
    ("PATCH", "/api/v1/admin/entries/1"),
    ("POST", "/api/v1/admin/retrain"),
    ("GET", "/api/v1/admin/users"),
]


def test_agents_get_403_on_admin_endpoints(api):
    agent = api.login("alice")
    for method, path in ADMIN_ENDPOINTS:
        r = api.client.request(method, path, headers=agent, json={})
        assert r.status_code == 403, (method, path)
        assert r.json()["error"]["code"] == "forbidden"
        assert api.client.request(method, path, json={}).status_code == 401


def test_entries_add_edit_disable_and_examples(api):
    admin = api.login("root")
    listed = api.client.get("/api/v1/admin/entries", headers=admin).json()["entries"]
    assert len(listed) == 60 and all(e["examples"] for e in listed)
    assert {
        e["key"]
        for e in api.client.get("/api/v1/admin/entries?q=gift%20wrap", headers=admin).json()[
            "entries"
        ]
    }
    body = {
        "key": "parking_en",
        "question": "Is there parking at the shop?",
        "answer": "Yes, 10 free spaces.",
        "examples": ["where can I park", "do you have parking"],
    }
    r = api.client.post("/api/v1/admin/entries", json=body, headers=admin)
    assert r.status_code == 201
    entry = r.json()
    assert [e["text"] for e in entry["examples"]] == [body["question"], *body["examples"]]
    assert api.client.post("/api/v1/admin/entries", json=body, headers=admin).status_code == 409
    r = api.client.patch(
        f"/api/v1/admin/entries/{entry['id']}",
        json={"answer": "Yes, 12 free spaces."},
        headers=admin,
    )
    assert r.json()["answer"] == "Yes, 12 free spaces."
    r = api.client.patch(
        f"/api/v1/admin/entries/{entry['id']}", json={"active": False}, headers=admin
    )
    assert r.json()["active"] is False
    r = api.client.post(
        f"/api/v1/admin/entries/{entry['id']}/examples",
        json={"texts": ["car park?"]},
        headers=admin,
    )
    assert r.status_code == 201
    example_id = r.json()["examples"][0]["id"]
    assert (
        api.client.delete(f"/api/v1/admin/examples/{example_id}", headers=admin).status_code == 204
    )
    assert (
        api.client.delete(f"/api/v1/admin/examples/{example_id}", headers=admin).status_code == 404
    )
    assert api.client.get("/api/v1/admin/entries/999999", headers=admin).status_code == 404
    r = api.client.post(
        f"/api/v1/admin/entries/{entry['id']}/examples", json={"texts": ["   "]}, headers=admin
    )
    assert r.status_code == 422
    final = api.client.get(f"/api/v1/admin/entries/{entry['id']}", headers=admin).json()
    assert [e["text"] for e in final["examples"]] == [body["question"], *body["examples"]]
    r = api.client.post(
        "/api/v1/admin/oos", json={"texts": ["what is the weather in Busan"]}, headers=admin
    )
    assert r.status_code == 201
    assert "what is the weather in Busan" in [
        e["text"] for e in api.client.get("/api/v1/admin/oos", headers=admin).json()["examples"]
    ]


def test_admin_creates_users(api):
    admin = api.login("root")
    r = api.client.post(
        "/api/v1/admin/users",
        json={"username": "carol", "role": "agent", "password": PASSWORD},
        headers=admin,
    )
    assert r.status_code == 201 and r.json()["role"] == "agent"
    assert (
        api.client.post(
            "/api/v1/admin/users", json={"username": "carol", "password": PASSWORD}, headers=admin
        ).status_code
        == 409
    )
    assert (
        api.client.post(
            "/api/v1/admin/users", json={"username": "dave", "password": "short"}, headers=admin
        ).status_code
        == 422
    )
    names = [
        u["username"] for u in api.client.get("/api/v1/admin/users", headers=admin).json()["users"]
    ]
    assert names == ["alice", "bob", "root", "carol"]
    api.login("carol")


def test_retrain_hot_swaps_the_model_without_restart(api):
    admin = api.login("root")
    assert api.client.get("/api/v1/admin/model", headers=admin).json()["version"] == "v1"
    body = {
        "key": "parking_en",
        "question": "Is there parking at the shop?",
        "answer": "Yes, 10 free spaces.",
        "examples": [
            "where can I park my car",
            "do you have a car park",
            "parking near the store?",
        ],
    }
    assert api.client.post("/api/v1/admin/entries", json=body, headers=admin).status_code == 201
    r = api.client.post("/api/v1/admin/retrain", headers=admin)
    assert r.status_code == 202 and r.json()["status"] == "running"
    assert api.client.post("/api/v1/admin/retrain", headers=admin).status_code == 409
    conv_id, customer = api.customer()
    deadline = time.time() + 900  # three fits (reference, challenger, final) on a busy machine
    status = {}
    asked = 0
    while time.time() < deadline:
        if asked < 3:  # serving goes on during training (a few turns: the rate limit allows them)
            api.say(conv_id, customer, "How long does delivery take?")
            asked += 1
        status = api.client.get("/api/v1/admin/retrain", headers=admin).json()
        if status["status"] != "running":
            break
        time.sleep(1.0)
    assert status["status"] == "done", status
    assert status["version"] == "v2"
    assert api.client.get("/api/v1/admin/model", headers=admin).json()["version"] == "v2"
    assert api.client.get("/readyz").json()["model"] == "v2"
    conv_id, customer = api.customer()
    api.say(conv_id, customer, "where can I park my car")
    detail = api.client.get(f"/api/v1/conversations/{conv_id}", headers=admin).json()
    assert detail["messages"][0]["decision"]["model_version"] == "v2"
    assert detail["suggestions"][0]["key"] == "parking_en"
    with session_scope(get_engine(api.db_url)) as session:
        assert len(list_entries(session)) == 61


def test_an_answer_edit_is_served_at_once_without_retraining(api):
    admin = api.login("root")
    question = "선물 포장 되나요?"
    conv_id, customer = api.customer()
    first = api.say(conv_id, customer, question)
    assert first["type"] == "answer", first
    entry_id = first["entry_id"]
    r = api.client.patch(
        f"/api/v1/admin/entries/{entry_id}",
        json={"answer": "네, 모든 상품을 무료로 선물 포장해 드려요."},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    again = api.say(conv_id, customer, question)
    assert (
        again["type"] == "answer" and again["text"] == "네, 모든 상품을 무료로 선물 포장해 드려요."
    )
    model = api.client.get("/api/v1/admin/model", headers=admin).json()
    assert model["version"] == "v1", "no retrain happened"
    key = r.json()["key"]
    assert model["stale_anchors"] == [key] == model["manifest"]["stale_anchors"]

    # an entry disabled since training is never answered with the model's old copy
    r = api.client.patch(f"/api/v1/admin/entries/{entry_id}", json={"active": False}, headers=admin)
    assert r.status_code == 200
    conv_id, customer = api.customer()
    reply = api.say(conv_id, customer, question)
    assert reply["type"] == "handoff" and reply["reason"] == "entry_unavailable"
