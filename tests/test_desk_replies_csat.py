"""Saved replies (shortcuts, variables, ko/en, CSV), CSAT after resolve, and the hand-off outside
business hours, through the real API on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from annae.store.db import get_engine, session_scope
from annae.store.tables.desk import Csat, SavedReply


def _handoff(api, language: str | None = None) -> tuple[str, dict]:
    conv_id, headers = api.customer(**({"language": language} if language else {}))
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/messages", json={"handoff": True}, headers=headers
    )
    assert r.status_code == 200, r.text
    return conv_id, headers


def test_saved_replies_by_shortcut_with_variables_and_languages(api):
    alice, bob, admin = api.login("alice"), api.login("bob"), api.login("root")
    r = api.client.post(
        "/api/v1/desk/replies",
        json={
            "shortcut": "/환불",
            "text_ko": "{agent_name}입니다. 주문 {order_id} 환불을 접수했어요, {customer_name}님.",
            "text_en": "This is {agent_name}. Refund for order {order_id} is filed.",
        },
        headers=alice,
    )
    assert r.status_code == 201, r.text
    assert r.json()["scope"] == "personal" and r.json()["owner"] == "alice"
    r = api.client.post(
        "/api/v1/desk/replies",
        json={"shortcut": "hello", "text_en": "Hello! How can I help?", "scope": "global"},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    conv_id, customer = _handoff(api, language="ko")
    api.say(conv_id, customer, "주문번호 A-12345 환불해 주세요")
    r = api.client.get(
        "/api/v1/desk/replies", params={"q": "/환", "conversation_id": conv_id}, headers=alice
    )
    got = r.json()["replies"]
    assert [g["shortcut"] for g in got] == ["환불"]
    assert got[0]["text"] == "alice입니다. 주문 A-12345 환불을 접수했어요, 님."
    r = api.client.get(
        "/api/v1/desk/replies",
        params={"q": "환", "conversation_id": conv_id, "language": "en"},
        headers=alice,
    )
    assert r.json()["replies"][0]["text"] == "This is alice. Refund for order A-12345 is filed."
    # personal replies are the owner's; global ones everyone's
    assert [
        g["shortcut"] for g in api.client.get("/api/v1/desk/replies", headers=bob).json()["replies"]
    ] == ["hello"]
    # a Korean conversation without a Korean text gets the English one
    assert (
        api.client.get(
            "/api/v1/desk/replies", params={"q": "hel", "conversation_id": conv_id}, headers=bob
        ).json()["replies"][0]["text"]
        == "Hello! How can I help?"
    )
    # bad input
    for body, status, words in (
        ({"shortcut": "x", "text_ko": "{고객명}님 안녕하세요"}, 400, "unknown variable {고객명}"),
        ({"shortcut": "x"}, 400, "needs a Korean or an English text"),
        ({"shortcut": "a b", "text_en": "x"}, 400, "shortcut"),
        ({"shortcut": "환불", "text_en": "again"}, 409, "already exists"),
        ({"shortcut": "y", "text_en": "x", "scope": "global"}, 403, "admins"),
        ({"shortcut": "y", "text_en": "x", "scope": "team", "team": "nope"}, 404, "nope"),
    ):
        r = api.client.post("/api/v1/desk/replies", json=body, headers=alice)
        assert r.status_code == status, (body, r.text)
        assert words in r.json()["error"]["message"]
    with session_scope(get_engine(api.db_url)) as s:
        assert s.scalar(select(func.count()).select_from(SavedReply)) == 2


def test_saved_replies_csv_round_trip_and_broken_files(api):
    admin = api.login("root")
    r = api.client.post(
        "/api/v1/desk/teams", json={"name": "결제", "members": ["bob"]}, headers=admin
    )
    assert r.status_code == 201
    good = (
        "shortcut,scope,team,owner,text_ko,text_en\n"
        '환불,team,결제,,"{agent_name}입니다, 환불 도와드릴게요.",Refunds: {agent_name} here.\n'
        "배송,global,,,배송은 1-3일 걸려요.,Delivery takes 1-3 days.\n"
        "메모,personal,,alice,제 메모,\n"
    )
    r = api.client.post("/api/v1/desk/replies.csv", content=good.encode(), headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 3, "updated": 0}
    exported = api.client.get("/api/v1/desk/replies.csv", headers=admin)
    assert exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.strip().splitlines()
    assert lines[0] == "shortcut,scope,team,owner,text_ko,text_en" and len(lines) == 4
    again = api.client.post("/api/v1/desk/replies.csv", content=exported.content, headers=admin)
    assert again.json() == {"created": 0, "updated": 3}
    bob = api.login("bob")
    bobs = api.client.get("/api/v1/desk/replies", headers=bob).json()["replies"]
    assert sorted(r["shortcut"] for r in bobs) == ["배송", "환불"]  # team + global, not alice's
    for bad, words in (
        (good + "x,galaxy,,,a,b\n", "line 5: scope must be"),
        (good + "y,team,VIP,,a,b\n", "line 5: unknown team 'VIP'"),
        (good + "z,global,,,{foo},\n", "line 5: unknown variable {foo}"),
        (good + "배송,global,,,dup,dup\n", "appears twice"),
        ("shortcut,text\nx,y\n", "misses column"),
        ("shortcut,scope,team,owner,text_ko,text_en\n", "no rows"),
        (good + 'q,global,,,"unterminated\n', ""),
    ):
        r = api.client.post("/api/v1/desk/replies.csv", content=bad.encode(), headers=admin)
        assert r.status_code == 400, (bad, r.text)
        assert words in r.json()["error"]["message"]
    r = api.client.post("/api/v1/desk/replies.csv", content=b"\xff\xfe", headers=admin)
    assert r.status_code == 400
    assert (
        api.client.post("/api/v1/desk/replies.csv", content=good.encode(), headers=bob).status_code
        == 403
    )
    with session_scope(get_engine(api.db_url)) as s:
        assert s.scalar(select(func.count()).select_from(SavedReply)) == 3


def test_csat_after_resolve_tied_to_the_agent_or_the_bot(api):
    alice = api.login("alice")
    conv_id, customer = _handoff(api, language="ko")
    other_id, other = api.customer()
    url = f"/api/v1/conversations/{conv_id}/csat"
    assert api.client.post(url, json={"score": 5}, headers=customer).status_code == 409
    api.client.post(
        f"/api/v1/conversations/{conv_id}/replies", json={"text": "도와드릴게요"}, headers=alice
    )
    r = api.client.post(f"/api/v1/conversations/{conv_id}/resolve", headers=alice)
    assert r.status_code == 200
    msgs = api.transcript(conv_id, customer)
    assert msgs[-1]["type"] == "csat" and "1점" in msgs[-1]["text"]
    assert api.client.get(url, headers=customer).json()["can_rate"] is True
    for body, headers, status in (
        ({"score": 5}, other, 403),  # another customer's token
        ({"score": 5}, {}, 401),
        ({"score": 5}, alice, 403),  # agents do not rate
        ({"score": 6}, customer, 400),
        ({"score": 0}, customer, 400),
        ({"score": "5"}, customer, 422),
        ({"score": 4, "comment": "x" * 2001}, customer, 422),
    ):
        r = api.client.post(url, json=body, headers=headers)
        assert r.status_code == status, (body, r.text)
    r = api.client.post(url, json={"score": 4, "comment": "빨랐어요"}, headers=customer)
    assert r.status_code == 201, r.text
    assert r.json()["by"] == "agent" and r.json()["thanks"] == "평가해 주셔서 감사합니다!"
    assert api.client.post(url, json={"score": 1}, headers=customer).status_code == 409
    assert api.client.get(url, headers=customer).json() == {
        "can_rate": False,
        "score": 4,
        "comment": "빨랐어요",
    }
    # a conversation the bot handled alone is rated for the bot
    api.say(other_id, other, "How long does delivery take?")
    assert (
        api.client.post(f"/api/v1/conversations/{other_id}/resolve", headers=alice).status_code
        == 200
    )
    r = api.client.post(f"/api/v1/conversations/{other_id}/csat", json={"score": 2}, headers=other)
    assert r.status_code == 201 and r.json()["by"] == "bot"
    with session_scope(get_engine(api.db_url)) as s:
        rows = sorted((c.score, c.agent_id is None) for c in s.scalars(select(Csat)))
    assert rows == [(2, True), (4, False)]


def test_handoff_outside_hours_says_when_people_are_back_and_queues(api):
    admin, alice = api.login("root"), api.login("alice")
    today = datetime.now(ZoneInfo("Asia/Seoul")).date().isoformat()
    all_week = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    r = api.client.post(
        "/api/v1/desk/teams",
        json={"name": "general", "members": ["alice"], "weekly": all_week, "holidays": [today]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["open_now"] is False
    api.client.put("/api/v1/desk/me", json={"presence": "online"}, headers=alice)
    conv_id, customer = api.customer(language="ko")
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/messages", json={"handoff": True}, headers=customer
    )
    reply = r.json()
    assert reply["type"] == "handoff" and reply["state"] == "waiting"
    assert "지금은 상담 시간이 아니에요" in reply["text"] and "오전 12:00부터" in reply["text"]
    conv = api.client.get(f"/api/v1/conversations/{conv_id}", headers=admin).json()
    assert (conv["state"], conv["team"], conv["agent"]) == ("waiting", "general", None)
    # in hours again (holiday removed): hand-offs are assigned at once
    r = api.client.patch("/api/v1/desk/teams/general", json={"holidays": []}, headers=admin)
    assert r.status_code == 200 and r.json()["open_now"] is True
    conv2, customer2 = api.customer(language="en")
    r = api.client.post(
        f"/api/v1/conversations/{conv2}/messages", json={"handoff": True}, headers=customer2
    )
    # the reply goes out first; the assignment follows in its own transaction
    assert r.json()["state"] == "waiting" and "Connecting you" in r.json()["text"]
    assert api.client.get(f"/api/v1/conversations/{conv2}", headers=admin).json()["agent"]
