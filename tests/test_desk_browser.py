# ruff: noqa: F811  (pytest fixtures imported from browser_fixtures are used as arguments)
"""The agent desk in a real browser (Debian's chromium): auto-assignment of a hand-off to an online
agent of the right team, transfer with a note, a saved reply by shortcut, a private note the
customer never sees (page and API), CSAT after resolve, and the service levels on the analytics
page in Korean and English."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest
from browser_fixtures import LiveServer
from playwright.sync_api import expect
from test_browser import login

from annae.agents.users import create_user
from annae.store.db import get_engine

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
expect.set_options(timeout=15_000)
DESKTOP = {"width": 1280, "height": 900}


def bearer(server: LiveServer, who: tuple[str, str]) -> dict:
    r = httpx.post(server.url + "/api/v1/auth/login", json={"username": who[0], "password": who[1]})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_the_desk_workflows_in_the_browser(browser, sqlite_server: LiveServer) -> None:
    server = sqlite_server
    jun = ("jun", secrets.token_urlsafe(12))
    create_user(get_engine(server.database), jun[0], "agent", jun[1])
    get_engine(server.database).dispose()
    boss = bearer(server, server.admin)
    for body in (
        {"name": "배송", "members": [server.agent[0]], "tags": ["shipping"]},
        {"name": "결제", "members": ["jun"], "tags": ["payment"]},
    ):
        httpx.post(server.url + "/api/v1/desk/teams", json=body, headers=boss).raise_for_status()
    httpx.post(
        server.url + "/api/v1/desk/replies",
        json={
            "shortcut": "환불",
            "text_ko": "{agent_name}입니다. 환불을 접수했어요.",
            "text_en": "This is {agent_name}. Your refund is on its way.",
            "scope": "global",
        },
        headers=boss,
    ).raise_for_status()
    ctxs = [browser.new_context(viewport=DESKTOP, locale="en-US") for _ in range(4)]
    try:
        mina, junp, chat, lead = (c.new_page() for c in ctxs)
        login(mina, server, server.agent)
        login(junp, server, jun)
        # 1. presence: mina goes online from the console; a delivery hand-off is assigned to her
        expect(mina.locator("#desk-presence")).to_have_value("offline")
        mina.select_option("#desk-presence", "online")
        expect(mina.locator("#desk-open")).to_have_text("0 open")
        junp.select_option("#desk-presence", "online")
        expect(junp.locator("#desk-open")).to_have_text("0 open")
        chat.goto(server.url + "/chat?lang=en")
        chat.fill("#chat-input", "How long does delivery take?")
        chat.press("#chat-input", "Enter")
        # answered (then the customer asks for a person), or handed off at once by a weaker model
        expect(chat.locator(".msg.bot:not(.welcome) .bubble, .sys.handoff").first).to_be_visible()
        if not chat.locator(".sys.handoff").count():
            chat.click("#chat-human")
        expect(chat.locator(".sys.joined")).to_be_visible()
        mine = mina.locator("#mine-list .conv-item")
        expect(mine).to_have_count(1)
        expect(mine.first.locator(".tag-team")).to_have_text("배송")
        expect(junp.locator("#mine-list .conv-item")).to_have_count(0)
        conv = json.loads(chat.evaluate("() => JSON.stringify(Object.entries(sessionStorage))"))
        stored = next(json.loads(v) for _, v in conv if v.startswith("{") and '"token"' in v)
        customer = {"Authorization": f"Bearer {stored['token']}"}
        conv_id = stored["id"]
        assert mine.first.get_attribute("data-conv-id") == conv_id

        # 2. a private note with an @mention: jun is told; the customer never sees it
        mine.first.click()
        expect(mina.locator("#conv-meta")).to_contain_text("mina")
        mina.fill("#note-input", "Gift for her mother — @jun knows the order")
        mina.click("#note-send")
        expect(mina.locator("#note-list .note")).to_have_count(1)
        expect(junp.locator("#desk-mention")).to_contain_text("mina mentioned you")

        # 3. transfer to jun with a note
        mina.select_option("#transfer-to", "agent:jun")
        mina.fill("#transfer-note", "payment question, over to you")
        mina.click("#transfer-send")
        expect(mina.locator("#conv-meta")).to_contain_text("jun")
        expect(mina.locator("#note-list .note")).to_have_count(2)
        expect(junp.locator("#mine-list .conv-item")).to_have_count(1)

        # 4. a saved reply by its shortcut, filled in for jun
        junp.locator("#mine-list .conv-item").first.click()
        expect(junp.locator("#conv-meta")).to_contain_text("jun")
        expect(junp.locator("#note-list .note")).to_have_count(2)  # jun sees the notes
        junp.locator("#reply-input").press_sequentially("/환")
        option = junp.locator("#reply-suggest [role=option]")
        expect(option).to_have_count(1)
        expect(option.first).to_contain_text("/환불")
        junp.press("#reply-input", "Enter")
        expect(junp.locator("#reply-input")).to_have_value(
            "This is jun. Your refund is on its way."
        )
        junp.click("#reply-send")
        expect(chat.locator(".msg.agent .bubble").last).to_have_text(
            "This is jun. Your refund is on its way."
        )
        expect(chat.locator(".sys", has_text="passed to a colleague")).to_have_count(1)
        # the notes are nowhere on the customer's page nor in the customer's API
        page_text = chat.locator("body").inner_text()
        assert "Gift for her mother" not in page_text and "over to you" not in page_text
        for path in (
            f"/api/v1/conversations/{conv_id}/messages",
            f"/api/v1/conversations/{conv_id}",
        ):
            r = httpx.get(server.url + path, headers=customer)
            assert (
                r.status_code == 200
                and "Gift for her" not in r.text
                and "over to you" not in r.text
            )
        assert (
            httpx.get(
                server.url + f"/api/v1/conversations/{conv_id}/notes", headers=customer
            ).status_code
            == 401
        )

        # 5. resolve → the customer rates 4 with a comment
        expect(junp.locator("#reply-input")).to_have_value("")  # sent
        junp.click("#btn-resolve")
        junp.locator("#label-skip").click()  # the label dialog (learning) asks first
        expect(junp.locator("#btn-resolve")).to_be_hidden()
        form = chat.locator("form.csat")
        expect(form).to_be_visible()
        form.locator("[data-score='4']").click()
        form.locator("textarea").fill("quick and kind")
        form.locator("button[type=submit]").click()
        expect(chat.locator(".csat .rate-thanks")).to_have_text("Thank you for your rating!")
        got = httpx.get(
            server.url + f"/api/v1/conversations/{conv_id}/csat", headers=customer
        ).json()
        assert got == {"can_rate": False, "score": 4, "comment": "quick and kind"}

        # 6. the analytics page shows the service levels, in English and Korean
        login(lead, server, server.admin, "/console/analytics")
        section = lead.locator("#service-levels")
        expect(section.locator("h2")).to_have_text("Service levels")
        expect(lead.locator("#sl-csat")).to_have_text("4.00")
        expect(lead.locator("#sl-csat-rate")).to_have_text("100 %")
        expect(lead.locator("#sl-teams tr[data-team='배송'] td").nth(1)).to_have_text("1")
        expect(lead.locator("#sl-agents tr[data-agent='jun']")).to_be_visible()
        lead.click("[data-lang-toggle]")
        expect(section.locator("h2")).to_have_text("서비스 수준")
        expect(section.locator("th[data-i18n='service_csat']").first).to_have_text("고객 만족도")
        lead.click("[data-lang-toggle]")
        expect(section.locator("h2")).to_have_text("Service levels")
    finally:
        for c in ctxs:
            c.close()
