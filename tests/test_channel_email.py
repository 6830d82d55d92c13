"""The e-mail channel with in-process SMTP servers only (Annae's aiosmtpd receiver, and a local
relay that stands in for the shop's outgoing mail server): a whole day by mail, threading,
quoted history, HTML, attachments, and mail loops."""

from __future__ import annotations

import base64
import json
import re
import smtplib
import time
from email.message import EmailMessage

import pytest
from api_support import make_api
from channel_support import Relay, free_port
from sqlalchemy import select

from annae.channels import registry
from annae.channels.email import receive
from annae.channels.mailtext import html_to_text, strip_quoted
from annae.settings import get_settings
from annae.store.db import get_engine, session_scope
from annae.store.tables.learning import AnswerRating
from annae.store.tables.service import Conversation, Message

SHOP = "support@shop.test"


@pytest.fixture
def mail(annae_home, db_url, models, monkeypatch):
    relay, listen_port = Relay().start(), free_port()
    api = make_api(
        annae_home,
        db_url,
        models,
        monkeypatch,
        ANNAE_SMTP_LISTEN=f"127.0.0.1:{listen_port}",
        ANNAE_SMTP_RELAY=f"127.0.0.1:{relay.port}",
        ANNAE_MAIL_FROM=f"Shop Support <{SHOP}>",
        ANNAE_PUBLIC_URL="http://testserver",
        ANNAE_OUTBOX_POLL="0.05",
        ANNAE_OUTBOX_BACKOFF="0.05",
    )
    get_settings.cache_clear()
    with session_scope(get_engine(db_url)) as session:
        registry.create(session, "email", "support", {"address": SHOP})
    try:
        with api.client:
            yield api, relay, listen_port
    finally:
        relay.stop()
        get_settings.cache_clear()


def _send(port: int, msg: EmailMessage, sender: str = "kim@customer.test") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(msg, from_addr=sender, to_addrs=[SHOP])


def _mail(
    text: str, subject: str = "Delivery", msgid: str = "<q1@customer.test>", **headers
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Kim <kim@customer.test>"
    msg["To"] = SHOP
    msg["Subject"] = subject
    msg["Message-ID"] = msgid
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(text)
    return msg


def _wait_mails(relay: Relay, n: int, seconds: float = 20) -> list:
    end = time.monotonic() + seconds
    while time.monotonic() < end and len(relay.mails) < n:
        time.sleep(0.05)
    assert len(relay.mails) >= n, f"{len(relay.mails)} mails, wanted {n}"
    return relay.mails


def test_whole_day_by_mail(mail):
    api, relay, port = mail
    body = (
        "How long does delivery take?\n\nThanks,\n-- \nKim\nACME Corp\n\n"
        "On Mon, 1 Dec 2026 at 10:00, Shop wrote:\n> an old quote with kim@customer.test\n"
    )
    _send(port, _mail(body))
    (answer,) = _wait_mails(relay, 1)
    assert (
        answer["In-Reply-To"] == "<q1@customer.test>"
        and "<q1@customer.test>" in answer["References"]
    )
    assert answer["Auto-Submitted"] == "auto-replied" and answer["To"] == "kim@customer.test"
    assert answer["Subject"] == "Re: Delivery"
    text = answer.get_content()
    assert "business days" in text
    links = re.findall(r"http://testserver(/channels/email/link/\S+)", text)
    assert len(links) == 2
    with session_scope(get_engine(api.db_url)) as session:
        conv = session.scalar(select(Conversation))
        first = session.scalar(select(Message).where(Message.sender == "customer"))
        assert conv.channel == "email:support" and first.text == "How long does delivery take?"

    # the answer didn't help: the link page (GET changes nothing), then its button (POST)
    page = api.client.get(links[1])
    assert page.status_code == 200 and "<form method=post>" in page.text
    assert api.client.post(links[1]).status_code == 200
    agent = api.login("alice")
    queue = api.client.get("/api/v1/queue", headers=agent).json()["queue"]
    assert [q["id"] for q in queue] == [conv.id]
    notice = _wait_mails(relay, 2)[1]
    assert notice["In-Reply-To"] == "<q1@customer.test>"

    # the agent replies from the console: a threaded mail, not marked automatic
    r = api.client.post(
        f"/api/v1/conversations/{conv.id}/replies",
        json={"text": "It ships tomorrow."},
        headers=agent,
    )
    assert r.status_code == 201
    reply = _wait_mails(relay, 3)[2]
    assert reply.get_content().strip() == "It ships tomorrow." and reply["Auto-Submitted"] is None
    assert "<q1@customer.test>" in reply["References"]

    # the customer answers the agent's mail (only In-Reply-To): same conversation, quote stripped
    _send(
        port,
        _mail(
            "Great, thank you!\n\n> It ships tomorrow.",
            "Re: Delivery",
            "<q2@customer.test>",
            In_Reply_To=reply["Message-ID"],
        ),
    )
    time.sleep(0.3)
    with session_scope(get_engine(api.db_url)) as session:
        texts = [
            m.text
            for m in session.scalars(
                select(Message)
                .where(Message.conversation_id == conv.id, Message.sender == "customer")
                .order_by(Message.id)
            )
        ]
        assert texts[-1] == "Great, thank you!"
        assert session.scalar(select(Conversation).where(Conversation.id != conv.id)) is None
    assert len(relay.mails) == 3  # queued for the agent: no mail back

    assert (
        api.client.post(f"/api/v1/conversations/{conv.id}/resolve", headers=agent).status_code
        == 200
    )
    assert api.client.post(links[0]).status_code == 200  # finally: it helped
    with session_scope(get_engine(api.db_url)) as session:
        (rating,) = session.scalars(select(AnswerRating)).all()
        assert rating.helpful is True and rating.conversation_id == conv.id
    assert api.client.post("/channels/email/link/forged").status_code == 404
    body, mac = links[0].rsplit("/", 1)[1].split(".")
    tampered = (
        base64.urlsafe_b64encode(json.dumps([conv.id, 1, "handoff"]).encode()).decode().rstrip("=")
    )
    for token in (f"{tampered}.{mac}", f"{body}.{mac[:-2]}", f"{body}.", "é.é"):
        assert api.client.post(f"/channels/email/link/{token}").status_code == 404


def _count(api) -> int:
    with session_scope(get_engine(api.db_url)) as session:
        return len(session.scalars(select(Conversation.id)).all())


def test_loops_bounces_and_bad_mail_are_dropped(mail):
    api, relay, port = mail
    svc = api.client.app.state.services
    base = _mail("How long does delivery take?").as_bytes()
    cases = {
        "auto": _mail("Out of office", Auto_Submitted="auto-replied").as_bytes(),
        "precedence": _mail("Away", msgid="<a2@x>", Precedence="bulk").as_bytes(),
        "own": base.replace(b"kim@customer.test", SHOP.encode()),
        "broken": b"From: \x00\xff<<<\r\nContent-Type: multipart/mixed; boundary=\r\n\r\n--\r\n",
        "empty": b"From: kim@customer.test\r\nSubject: \r\n\r\n   \r\n",
    }
    for name, raw in cases.items():
        assert receive(svc, raw, "kim@customer.test", [SHOP]).startswith("dropped"), name
    bounce = EmailMessage()
    bounce["From"] = "MAILER-DAEMON@mx.test"
    bounce["Subject"] = "Undelivered Mail"
    bounce.set_content("gone")
    assert receive(svc, bounce.as_bytes(), "", [SHOP]).startswith("dropped")
    assert _count(api) == 0 and relay.mails == []
    # the same Message-ID twice (a retrying server) is one turn
    assert receive(svc, base, "kim@customer.test", [SHOP]) == "answer"
    assert receive(svc, base, "kim@customer.test", [SHOP]) == "dropped: duplicate"
    assert _count(api) == 1


def test_html_and_big_attachment(mail):
    api, relay, port = mail
    msg = EmailMessage()
    msg["From"] = "lee@customer.test"
    msg["To"] = SHOP
    msg["Subject"] = "Order"
    msg["Message-ID"] = "<h1@customer.test>"
    msg.set_content(
        "<html><body><p>How long does <b>delivery</b> take?</p><blockquote>old</blockquote><script>x()</script></body></html>",
        subtype="html",
    )
    msg.add_attachment(
        b"\0" * (10 * 1024 * 1024),
        maintype="application",
        subtype="x-msdownload",
        filename="setup.exe",
    )
    _send(port, msg, "lee@customer.test")
    _wait_mails(relay, 1)
    with session_scope(get_engine(api.db_url)) as session:
        text = session.scalar(select(Message.text).where(Message.sender == "customer"))
    assert text.startswith("How long does delivery take?")
    assert "[attachments not opened: setup.exe (10240 kB)]" in text and "old" not in text


def test_text_helpers():
    assert html_to_text("<p>a&nbsp;b</p><style>p{}</style><br>c") == "a b\n\nc"
    assert strip_quoted("hi\n\n-----Original Message-----\nFrom: x") == "hi"
    assert (
        strip_quoted("안녕하세요\n\n2026. 12. 1. 오전 10:00, 상점 님이 작성:\n> 이전")
        == "안녕하세요"
    )
    assert strip_quoted("q?\n\nSent from my iPhone") == "q?"
    assert strip_quoted("q?\n\nThanks,\n-- \nKim") == "q?"
