"""Service levels of docs/metrics.md#service-levels checked on a fixed history made through the
real API (times then set exactly), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from annae.store.db import get_engine, session_scope, utcnow
from annae.store.tables.service import Conversation, Message

DELIVERY = "How long does delivery take?"
PAYMENT = "Which payment methods do you accept?"


def _set_times(api, conv_id: str, offsets: dict[str, int]) -> None:
    """Hand-off at base+0; the first ``assigned``, agent reply and ``resolved`` at their offsets."""
    base = utcnow() - timedelta(hours=2)
    with session_scope(get_engine(api.db_url)) as s:
        current, seen = -5, set()
        for m in s.scalars(
            select(Message).where(Message.conversation_id == conv_id).order_by(Message.id)
        ):
            kind = (
                "handoff"
                if m.sender == "bot" and m.type == "handoff"
                else "agent"
                if m.sender == "agent"
                else m.text
                if m.sender == "system"
                else None
            )
            if kind in offsets and kind not in seen:
                seen.add(kind)
                current = offsets[kind]
            m.created_at = base + timedelta(seconds=current)
        s.execute(
            update(Conversation)
            .where(Conversation.id == conv_id)
            .values(created_at=base - timedelta(seconds=10))
        )


def _served(api, question: str, agent: dict, times: dict, score: int | None) -> str:
    conv_id, customer = api.customer()
    assert api.say(conv_id, customer, question)["type"] == "answer"
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/messages", json={"handoff": True}, headers=customer
    )
    assert r.json()["state"] == "waiting", r.json()  # the assignment follows the reply
    assert api.client.get(f"/api/v1/conversations/{conv_id}", headers=agent).json()["agent"]
    api.client.post(
        f"/api/v1/conversations/{conv_id}/replies", json={"text": "도와드릴게요"}, headers=agent
    )
    assert (
        api.client.post(f"/api/v1/conversations/{conv_id}/resolve", headers=agent).status_code
        == 200
    )
    if score is not None:
        r = api.client.post(
            f"/api/v1/conversations/{conv_id}/csat", json={"score": score}, headers=customer
        )
        assert r.status_code == 201
    _set_times(api, conv_id, times)
    return conv_id


@pytest.fixture
def history(api):
    """s1-s3 배송 (alice), s4 결제 (bob), s5 결제 never answered, b1 the bot alone (rated 2)."""
    admin, alice, bob = api.login("root"), api.login("alice"), api.login("bob")
    for body in (
        {
            "name": "배송",
            "members": ["alice"],
            "tags": ["shipping"],
            "first_response_target_s": 120,
            "resolve_target_s": 1800,
        },
        {"name": "결제", "members": ["bob"], "tags": ["payment"], "first_response_target_s": 60},
    ):
        assert api.client.post("/api/v1/desk/teams", json=body, headers=admin).status_code == 201
    for who in (alice, bob):
        api.client.put("/api/v1/desk/me", json={"presence": "online"}, headers=who)
    _served(api, DELIVERY, alice, {"handoff": 0, "assigned": 10, "agent": 60, "resolved": 600}, 5)
    _served(api, DELIVERY, alice, {"handoff": 0, "assigned": 30, "agent": 180, "resolved": 1200}, 3)
    _served(
        api, DELIVERY, alice, {"handoff": 0, "assigned": 20, "agent": 90, "resolved": 3000}, None
    )
    _served(api, PAYMENT, bob, {"handoff": 0, "assigned": 5, "agent": 30, "resolved": 400}, 4)
    api.client.put("/api/v1/desk/me", json={"presence": "away"}, headers=bob)
    s5, h5 = api.customer()
    api.say(s5, h5, PAYMENT)
    api.client.post(f"/api/v1/conversations/{s5}/messages", json={"handoff": True}, headers=h5)
    _set_times(api, s5, {"handoff": 0})
    b1, hb = api.customer()
    api.say(b1, hb, DELIVERY)
    assert api.client.post(f"/api/v1/conversations/{b1}/resolve", headers=alice).status_code == 200
    r = api.client.post(f"/api/v1/conversations/{b1}/csat", json={"score": 2}, headers=hb)
    assert r.status_code == 201 and r.json()["by"] == "bot"
    return admin


def test_service_levels_on_the_fixed_history(api, history):
    data = api.client.get("/api/v1/desk/service-levels", headers=history).json()
    assert data["conversations"] == 6 and data["containment_rate"] == round(1 / 6, 4)
    o = data["overall"]
    assert o["handoffs"] == 5
    assert o["first_response"] == {"p50": 60.0, "p90": 180.0, "n": 4}
    assert o["queue_wait"] == {"p50": 10.0, "p90": 30.0, "n": 4}
    assert o["resolve"] == {"p50": 600.0, "p90": 3000.0, "n": 4}
    assert o["csat"] == {"average": 3.5, "ratings": 4, "resolutions": 5, "response_rate": 0.8}
    teams = {t["team"]: t for t in data["teams"]}
    ship, pay = teams["배송"], teams["결제"]
    assert ship["handoffs"] == 3 and ship["first_response"] == {"p50": 90.0, "p90": 180.0, "n": 3}
    assert ship["targets"] == {
        "first_response_s": 120,
        "first_response_met": 0.6667,
        "resolve_s": 1800,
        "resolve_met": 0.6667,
    }
    assert ship["csat"] == {"average": 4.0, "ratings": 2, "resolutions": 3, "response_rate": 0.6667}
    assert pay["handoffs"] == 2 and pay["first_response"]["n"] == 1
    assert pay["targets"]["first_response_met"] == 1.0 and pay["targets"]["resolve_met"] is None
    agents = {a["agent"]: a for a in data["agents"]}
    assert set(agents) == {"alice", "bob", "bot"}
    assert agents["alice"]["handoffs"] == 3 and agents["alice"]["csat"]["average"] == 4.0
    assert agents["bob"]["queue_wait"] == {"p50": 5.0, "p90": 5.0, "n": 1}
    assert agents["bot"]["csat"] == {
        "average": 2.0,
        "ratings": 1,
        "resolutions": 1,
        "response_rate": 1.0,
    }
    # CSV: one row per team / agent, the same numbers
    csv_text = api.client.get("/api/v1/desk/service-levels.csv?table=teams", headers=history).text
    head, *rows = csv_text.strip().splitlines()
    assert head.startswith("team,handoffs,first_response_p50_s,first_response_p90_s")
    assert (
        "배송,3,90.0,180.0,3,20.0,30.0,3,1200.0,3000.0,3,4.0,2,3,0.6667,120,0.6667,1800,0.6667"
        in rows
    )
    agents_csv = api.client.get("/api/v1/desk/service-levels.csv?table=agents", headers=history)
    assert agents_csv.text.count("\n") == 4
    assert (
        api.client.get("/api/v1/desk/service-levels.csv?table=x", headers=history).status_code
        == 422
    )
    assert (
        api.client.get("/api/v1/desk/service-levels", headers=api.login("alice")).status_code == 403
    )
    # a period before the history has nothing
    early = api.client.get(
        "/api/v1/desk/service-levels", params={"end": "2020-01-02"}, headers=history
    ).json()
    assert early["overall"]["handoffs"] == 0 and early["overall"]["first_response"]["p50"] is None
