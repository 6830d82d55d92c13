"""Personal data in customer messages never reaches the database; agents' replies are kept as sent."""

from __future__ import annotations

from sqlalchemy import text

from annae.store.db import get_engine

EMAIL = "minji.kim@example.com"
PHONE = "010-2345-6789"


def test_messages_are_stored_redacted(api, db_url):
    conv, headers = api.customer()
    reply = api.say(
        conv, headers, f"상담원 연결해 주세요. 제 메일은 {EMAIL}, 전화는 {PHONE} 이에요"
    )
    assert reply["type"] == "handoff"
    agent = api.login("alice")
    assert api.client.post(f"/api/v1/conversations/{conv}/assign", headers=agent).status_code == 200
    r = api.client.post(
        f"/api/v1/conversations/{conv}/replies",
        json={"text": "Write to help@annaegift.example any time"},
        headers=agent,
    )
    assert r.status_code in (200, 201), r.text

    texts = [m["text"] for m in api.transcript(conv, headers)]
    customer = next(t for t in texts if "상담원" in t)
    assert "[EMAIL]" in customer and "[PHONE]" in customer
    assert any("help@annaegift.example" in t for t in texts)  # the shop's own address stays
    with get_engine(db_url).connect() as c:
        stored = " ".join(str(row) for row in c.execute(text("SELECT * FROM messages")))
    assert EMAIL not in stored and PHONE not in stored and "01023456789" not in stored
