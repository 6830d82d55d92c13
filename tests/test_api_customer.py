"""The customer API: conversations, answers, hand-off, clarify choices, reopen, the WebSocket."""

from __future__ import annotations

import pytest

from annae.dialogue import conversations as convs
from annae.kb.entries import get_entry_by_key
from annae.store.db import get_engine, session_scope

OUT_OF_SCOPE = "Can you recommend a good dentist near Gangnam station for a root canal?"


def _entry_id(db_url: str, key: str) -> int:
    with session_scope(get_engine(db_url)) as session:
        return get_entry_by_key(session, key).id


def test_create_conversation_returns_id_and_token(api):
    r = api.client.post("/api/v1/conversations", json={"language": "ko"})
    assert r.status_code == 201
    body = r.json()
    assert len(body["id"]) == 32 and len(body["token"]) >= 40 and body["state"] == "bot"
    r = api.client.get(
        f"/api/v1/conversations/{body['id']}", headers={"Authorization": f"Bearer {body['token']}"}
    )
    assert r.json()["state"] == "bot" and r.json()["language"] == "ko"
    assert "messages" not in r.json()  # customers do not get the agent view


def test_demo_question_is_answered_and_stored(api):
    conv_id, headers = api.customer()
    reply = api.say(conv_id, headers, "How long does delivery take?")
    assert reply["type"] == "answer"
    assert reply["entry_id"] == _entry_id(api.db_url, "shipping_time_en")
    assert "business days" in reply["text"]
    assert 0 < reply["confidence"] <= 1 and reply["state"] == "bot"
    messages = api.transcript(conv_id, headers)
    assert [(m["sender"], m["type"]) for m in messages] == [("customer", "text"), ("bot", "answer")]
    assert messages[1]["id"] == reply["id"] and messages[0]["id"] == reply["message_id"]
    assert "decision" not in messages[0]  # the decision is for agents only
    after = api.client.get(
        f"/api/v1/conversations/{conv_id}/messages?after={reply['message_id']}", headers=headers
    )
    assert [m["id"] for m in after.json()["messages"]] == [reply["id"]]


def test_korean_question_is_answered_in_korean(api):
    conv_id, headers = api.customer()
    reply = api.say(conv_id, headers, "배송은 얼마나 걸리나요?")
    assert reply["type"] == "answer"
    with session_scope(get_engine(api.db_url)) as session:
        from annae.kb.entries import get_entry

        entry = get_entry(session, reply["entry_id"])
        assert entry.language == "ko" and reply["text"] == entry.answer


def test_out_of_scope_is_handed_off_and_bot_stays_silent(api):
    conv_id, headers = api.customer()
    reply = api.say(conv_id, headers, OUT_OF_SCOPE)
    assert reply["type"] == "handoff" and reply["state"] == "waiting"
    assert reply["reason"] in {"low_confidence", "human_requested"}
    queued = api.say(
        conv_id, headers, "How long does delivery take?"
    )  # the bot must not answer now
    assert queued["type"] == "queued" and queued["id"] is None and queued["state"] == "waiting"
    messages = api.transcript(conv_id, headers)
    assert [m["type"] for m in messages] == ["text", "handoff", "text"]


def test_asking_for_a_person(api):
    conv_id, headers = api.customer()
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/messages", json={"handoff": True}, headers=headers
    )
    assert r.status_code == 200
    assert r.json()["type"] == "handoff" and r.json()["reason"] == "customer_request"
    agent = api.login("alice")
    queue = api.client.get("/api/v1/queue", headers=agent).json()
    assert [item["id"] for item in queue["queue"]] == [conv_id]
    assert queue["queue"][0]["reason"] == "customer_request"


def test_clarify_choice_is_answered_and_recorded(api):
    conv_id, headers = api.customer()
    gift = _entry_id(api.db_url, "shipping_time_en")
    with session_scope(get_engine(api.db_url)) as session:
        conv = convs.get(session, conv_id)
        options = [
            {
                "entry_id": gift,
                "key": "shipping_time_en",
                "question": "How long does delivery take?",
                "confidence": 0.41,
            },
            {"entry_id": gift + 1, "key": "x", "question": "Other", "confidence": 0.3},
        ]
        convs.add_message(
            session, conv, "bot", "clarify", "Did you mean one of these?", options=options
        )
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/messages", json={"choice": gift + 999}, headers=headers
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    assert len(api.transcript(conv_id, headers)) == 1  # nothing stored on error
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/messages", json={"choice": gift}, headers=headers
    )
    assert r.status_code == 200
    reply = r.json()
    assert (
        reply["type"] == "answer" and reply["entry_id"] == gift and "business days" in reply["text"]
    )
    messages = api.transcript(conv_id, headers)
    choice = messages[1]
    assert (
        choice["sender"] == "customer" and choice["type"] == "choice" and choice["entry_id"] == gift
    )
    agent = api.login("alice")
    detail = api.client.get(f"/api/v1/conversations/{conv_id}", headers=agent).json()
    assert detail["messages"][1]["decision"] == {"clarify_message_id": messages[0]["id"]}


def test_a_turn_without_text_choice_or_handoff_is_refused(api):
    """A bad request (the API's validation keeps it from getting here), not a TypeError from
    redacting ``None``."""
    conv_id, headers = api.customer()
    with session_scope(get_engine(api.db_url)) as session:
        conv = convs.get(session, conv_id)
        with pytest.raises(convs.Invalid, match="needs text, a choice or a hand-off"):
            convs.post_customer(session, conv)
    assert api.transcript(conv_id, headers) == []


def test_resolved_conversation_reopens(api):
    conv_id, headers = api.customer()
    api.say(conv_id, headers, OUT_OF_SCOPE)
    agent = api.login("alice")
    assert (
        api.client.post(f"/api/v1/conversations/{conv_id}/resolve", headers=agent).json()["state"]
        == "resolved"
    )
    reply = api.say(conv_id, headers, "How long does delivery take?")
    assert reply["state"] == "bot" and reply["type"] == "answer"
    texts = [
        (m["type"], m["text"]) for m in api.transcript(conv_id, headers) if m["sender"] == "system"
    ]
    assert texts == [("system", "resolved"), ("system", "reopened")]


def test_websocket_pushes_agent_replies_and_takes_messages(api):
    conv_id, headers = api.customer()
    token = headers["Authorization"].split()[1]
    agent = api.login("alice")
    with api.client.websocket_connect(f"/api/v1/conversations/{conv_id}/ws?token={token}") as ws:
        assert ws.receive_json() == {"event": "hello", "conversation_id": conv_id, "state": "bot"}
        ws.send_json({"text": "How long does delivery take?"})
        events = [ws.receive_json() for _ in range(3)]
        kinds = [e["event"] for e in events]
        assert sorted(kinds) == ["message", "message", "reply"]
        reply = next(e["reply"] for e in events if e["event"] == "reply")
        assert reply["type"] == "answer"
        r = api.client.post(
            f"/api/v1/conversations/{conv_id}/replies",
            json={"text": "Hello from Alice"},
            headers=agent,
        )
        assert r.status_code == 201
        state = ws.receive_json()
        assert state["event"] == "state" and state["state"] == "agent" and state["agent"] == "alice"
        assigned = ws.receive_json()
        assert assigned["message"]["type"] == "system" and assigned["message"]["text"] == "assigned"
        pushed = ws.receive_json()
        assert pushed["event"] == "message" and pushed["message"]["text"] == "Hello from Alice"
        assert pushed["message"]["author"] == "alice"
        ws.send_json({"ping": 1})
        assert ws.receive_json() == {"event": "pong"}
        ws.send_text("not json")
        assert ws.receive_json()["event"] == "error"
        ws.send_json({"text": ""})
        assert ws.receive_json()["error"]["code"] == "invalid"


def test_api_key_channel_creates_conversations_for_customers(api):
    from annae.agents.users import create_api_key

    with session_scope(get_engine(api.db_url)) as session:
        key = create_api_key(session, "kakao")
    r = api.client.post(
        "/api/v1/conversations", json={"customer_id": "u-42"}, headers={"X-API-Key": key}
    )
    assert r.status_code == 201
    conv_id = r.json()["id"]
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/messages",
        json={"text": "How long does delivery take?"},
        headers={"X-API-Key": key},
    )
    assert r.status_code == 200 and r.json()["type"] == "answer"
    agent = api.login("alice")
    detail = api.client.get(f"/api/v1/conversations/{conv_id}", headers=agent).json()
    assert detail["customer_id"] == "u-42" and detail["channel"] == "kakao"
    assert detail["suggestions"][0]["entry_id"] == r.json()["entry_id"]
    wrong = api.client.post("/api/v1/conversations", json={}, headers={"X-API-Key": "ak_nope"})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    # without a key or a valid widget signature the claim is ignored: an anonymous conversation
    no_key = api.client.post("/api/v1/conversations", json={"customer_id": "u-43"})
    assert no_key.status_code == 201 and no_key.json()["verified"] is False
    detail = api.client.get(f"/api/v1/conversations/{no_key.json()['id']}", headers=agent).json()
    assert detail["customer_id"] is None and detail["verified"] is False
    too_long = api.client.post(
        "/api/v1/conversations", json={"customer_id": "u" * 201}, headers={"X-API-Key": key}
    )
    assert too_long.status_code == 422


def test_a_confidently_out_of_scope_question_gets_the_reply_and_a_way_to_a_person(
    annae_home, db_url, models, monkeypatch
):
    from api_support import make_api

    api = make_api(
        annae_home,
        db_url,
        models,
        monkeypatch,
        ANNAE_OOS_THRESHOLD="0.3",
        ANNAE_OOS_REPLY_EN="I help with our shop only. Want a person?",
    )
    with api.client:
        conv_id, headers = api.customer()
        reply = api.say(conv_id, headers, "what's the weather like today")
        assert reply["type"] == "out_of_scope" and reply["state"] == "bot", reply
        assert reply["text"] == "I help with our shop only. Want a person?"
        admin = api.login("root")
        queue = api.client.get("/api/v1/queue", headers=admin).json()
        assert queue["length"] == 0, "nothing waits for a person"
        ko_id, ko_headers = api.customer()
        ko = api.say(ko_id, ko_headers, "오늘 날씨 어때?")
        assert ko["type"] == "out_of_scope" and "상담원" in ko["text"], "the built-in Korean reply"
        # the button: the customer asks for a person
        r = api.client.post(
            f"/api/v1/conversations/{conv_id}/messages", json={"handoff": True}, headers=headers
        )
        assert r.status_code == 200 and r.json()["state"] == "waiting"
        assert r.json()["reason"] == "customer_request"
        # in-scope questions are still answered
        assert api.say(ko_id, ko_headers, "선물 포장 되나요?")["type"] == "answer"
