"""Every metric of docs/metrics.md checked on a small fixed history made through the real API."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from annae.learning import analytics
from annae.store.db import get_engine, session_scope, utcnow
from annae.store.tables.service import Conversation, Message

OUT_OF_SCOPE = "Can you recommend a good dentist near Gangnam station for a root canal?"
DELIVERY = "How long does delivery take?"
KOREAN = "배송은 얼마나 걸리나요?"


def _post(api, conv_id, headers, **body):
    r = api.client.post(f"/api/v1/conversations/{conv_id}/messages", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def _answered(api, text=DELIVERY):
    conv_id, headers = api.customer()
    reply = api.say(conv_id, headers, text)
    assert reply["type"] == "answer", reply
    return conv_id, headers, reply


def _shift(api, conv_id: str, delta: timedelta) -> None:
    """Move a conversation and its messages back in time (the history spans several days)."""
    with session_scope(get_engine(api.db_url)) as s:
        conv = s.get(Conversation, conv_id)
        s.execute(
            update(Conversation)
            .where(Conversation.id == conv_id)
            .values(created_at=conv.created_at - delta)
        )
        for m in s.scalars(select(Message).where(Message.conversation_id == conv_id)):
            m.created_at = m.created_at - delta


@pytest.fixture
def history(api):
    """c1 Korean answered · c2 answered+helpful (3 days ago) · c3 answered+not helpful ·
    c4 out of scope → agent replies 30 s later, labelled not_faq · c5 asks for a person ·
    c6 opened, never written in · c7 answered, then a person, labelled with the answered entry ·
    c8 answered, then a person, labelled with another entry."""
    agent = api.login("alice")
    c1, _, r1 = _answered(api, KOREAN)
    c2, h2, r2 = _answered(api)
    api.client.post(
        f"/api/v1/conversations/{c2}/messages/{r2['id']}/rating", json={"helpful": True}, headers=h2
    )
    c3, h3, r3 = _answered(api)
    api.client.post(
        f"/api/v1/conversations/{c3}/messages/{r3['id']}/rating",
        json={"helpful": False},
        headers=h3,
    )
    c4, h4 = api.customer()
    assert api.say(c4, h4, OUT_OF_SCOPE)["type"] == "handoff"
    api.client.post(f"/api/v1/conversations/{c4}/replies", json={"text": "Hi!"}, headers=agent)
    with session_scope(get_engine(api.db_url)) as s:
        handoff = s.scalar(
            select(Message).where(Message.conversation_id == c4, Message.type == "handoff")
        )
        reply = s.scalar(
            select(Message).where(Message.conversation_id == c4, Message.sender == "agent")
        )
        reply.created_at = handoff.created_at + timedelta(seconds=30)
    api.client.post(f"/api/v1/conversations/{c4}/label", json={"kind": "not_faq"}, headers=agent)
    c5, h5 = api.customer()
    _post(api, c5, h5, handoff=True)
    api.customer()  # c6
    c7, h7, r7 = _answered(api)
    _post(api, c7, h7, handoff=True)
    r = api.client.post(
        f"/api/v1/conversations/{c7}/label",
        json={"kind": "entry", "entry_id": r7["entry_id"]},
        headers=agent,
    )
    assert r.status_code == 201 and r.json()["message_id"] == r7["message_id"]
    c8, h8, r8 = _answered(api)
    _post(api, c8, h8, handoff=True)
    other = next(
        e["id"]
        for e in api.client.get("/api/v1/admin/entries", headers=api.login("root")).json()[
            "entries"
        ]
        if e["id"] != r8["entry_id"]
    )
    r = api.client.post(
        f"/api/v1/conversations/{c8}/label",
        json={"kind": "entry", "entry_id": other},
        headers=agent,
    )
    assert r.status_code == 201
    _shift(api, c2, timedelta(days=3))
    return {"c1": c1, "c2": c2, "entry": r2["entry_id"]}


def _summary(api, **filters):
    with session_scope(get_engine(api.db_url)) as s:
        return analytics.summary(s, analytics.Filters(**filters))


def test_every_definition_on_a_fixed_history(api, history):
    m = _summary(api)
    assert m["conversations"] == 7, "c6 has no customer message and is not counted"
    assert m["contained"] == 2 and m["containment_rate"] == round(2 / 7, 4)  # c1, c2
    assert m["handed_off"] == 4 and m["handoff_rate"] == round(4 / 7, 4)  # c4, c5, c7, c8
    assert m["other"] == 1  # c3: answered but rated not helpful
    assert m["contained"] + m["handed_off"] + m["other"] == m["conversations"]
    reasons = {r["reason"]: r["conversations"] for r in m["handoff_reasons"]}
    assert reasons == {"customer_request": 3, "low_confidence": 1}
    assert m["median_first_reply_seconds"] == 30.0 and m["first_reply_samples"] == 1
    assert m["ratings"] == {"helpful": 1, "not_helpful": 1, "helpful_share": 0.5}
    assert (
        m["labelled"] == 3 and m["labelled_answered"] == 2
    )  # c7, c8 (c4's question was handed off)
    assert m["answered_precision_labels"] == 0.5
    assert m["labels_by_kind"] == {"not_faq": 1, "entry": 2}
    days = {d["day"]: d for d in m["daily"]}
    today = utcnow().date()
    three_ago = today - timedelta(days=3)
    assert list(days) == [(three_ago + timedelta(days=i)).isoformat() for i in range(4)]
    assert days[three_ago.isoformat()] == {
        "day": three_ago.isoformat(),
        "conversations": 1,
        "contained": 1,
        "handed_off": 0,
    }
    assert days[(today - timedelta(days=1)).isoformat()]["conversations"] == 0
    assert days[today.isoformat()]["conversations"] == 6
    top = {e["entry_id"]: e for e in m["top_entries"]}
    assert top[history["entry"]]["answers"] >= 4 and top[history["entry"]]["not_helpful"] == 1


def test_filters_by_date_and_language(api, history):
    today = utcnow().date()
    recent = _summary(api, start=today - timedelta(days=1), end=today + timedelta(days=1))
    assert recent["conversations"] == 6 and recent["contained"] == 1
    old = _summary(api, start=date(2000, 1, 1), end=today - timedelta(days=2))
    assert old["conversations"] == 1 and old["ratings"]["helpful"] == 1
    korean = _summary(api, language="ko")
    assert korean["conversations"] == 1 and korean["containment_rate"] == 1.0
    assert _summary(api, start=date(2001, 1, 1), end=date(2001, 1, 2))["containment_rate"] is None


def test_api_csv_and_page(api, history):
    admin = api.login("root")
    r = api.client.get("/api/v1/learning/analytics", headers=admin)
    assert r.status_code == 200 and r.json()["conversations"] == 7
    assert (
        api.client.get("/api/v1/learning/analytics", headers=api.login("alice")).status_code == 403
    )
    bad = api.client.get(
        "/api/v1/learning/analytics?start=2026-02-01&end=2026-01-01", headers=admin
    )
    assert bad.status_code == 422
    for table in ("summary", "daily", "handoff_reasons", "top_entries", "clusters"):
        r = api.client.get(f"/api/v1/learning/analytics.csv?table={table}", headers=admin)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert len(r.text.splitlines()) >= 2, table
    summary_rows = dict(
        line.split(",", 1)
        for line in api.client.get(
            "/api/v1/learning/analytics.csv", headers=admin
        ).text.splitlines()
    )
    assert summary_rows["containment_rate"] == str(round(2 / 7, 4))
    assert (
        api.client.get("/api/v1/learning/analytics.csv?table=x", headers=admin).status_code == 422
    )

    page = api.client.get("/console/analytics", headers=admin)
    assert page.status_code == 200
    assert "<svg" in page.text and "28.6 %" in page.text  # containment 2/7
    assert "Retrain (gated)" in page.text and "<td>v1</td>" in page.text  # the model list
    topics = page.text.split('id="labels"')[0]  # the recent labels list (below) quotes it
    assert OUT_OF_SCOPE not in topics, "c4 was labelled, so it is not an unanswered topic"
    assert DELIVERY in page.text, "c3's question was rated not helpful: an unanswered topic"
    assert api.client.get("/console/analytics", headers=api.login("alice")).status_code == 403
    assert api.client.get("/console/analytics", follow_redirects=False).status_code == 303
