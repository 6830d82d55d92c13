# ruff: noqa: F811  (pytest fixtures imported from browser_fixtures are used as arguments)
"""The widget's signed identity in a real browser: a shop page on another origin embeds the widget
with a customer id signed by its server; the conversation is linked to the customer, the console
shows "verified customer" and their earlier conversation, and an answer about an entry linked to
products brings personal cards. A forged signature gets an anonymous chat and general cards."""

from __future__ import annotations

import re

import httpx
import pytest
from browser_fixtures import LiveServer, link_two_products, login
from playwright.sync_api import expect
from sqlalchemy import func, select

from annae.agents import identity
from annae.store.db import get_engine, session_scope
from annae.store.tables.recommend import RecInteraction
from annae.store.tables.service import Conversation

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
expect.set_options(timeout=15_000)
QUESTION = "How long does delivery take?"
CUSTOMER = "cust-77"


def _ask_in_widget(page, shop_url: str):
    page.goto(shop_url)
    page.locator("#annae-widget button.btn").click()
    frame = page.frame_locator("#annae-widget iframe")
    # typed before chat.js has started, Enter would only add a line to the box (a slow machine
    # showed exactly that: no conversation, no cards)
    expect(frame.locator("body")).to_have_attribute("data-ready", "1")
    frame.locator("#chat-input").fill(QUESTION)
    frame.locator("#chat-input").press("Enter")
    return frame.locator(".msg.bot .products .product")


def _latest_conversation(engine) -> Conversation:
    with session_scope(engine) as s:
        return s.scalars(
            select(Conversation).order_by(Conversation.created_at.desc()).limit(1)
        ).one()


def test_signed_widget_verified_in_console_and_forgery_stays_anonymous(
    browser, sqlite_server: LiveServer, shop_site
) -> None:
    server = sqlite_server
    secret = identity.rotate_secret(server.home)  # `annae widget secret` on the service's home
    link_two_products(server, QUESTION, CUSTOMER)
    engine = get_engine(server.database)
    signature = identity.sign(secret, CUSTOMER)  # what the shop's server computes
    earlier = httpx.post(
        server.url + "/api/v1/conversations",
        json={"customer_id": CUSTOMER, "signature": signature},
    ).json()
    assert earlier["verified"] is True

    shop = shop_site(
        server.url,
        "en",
        {"customer-id": CUSTOMER, "signature": signature, "name": "Mina Park", "email": "m@p.kr"},
    )
    assert not shop.startswith(server.url)  # the shop is another origin
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    try:
        cards = _ask_in_widget(ctx.new_page(), shop)
        expect(cards).to_have_count(2)
        expect(cards.nth(0)).to_contain_text("Express delivery")
        expect(cards.nth(0)).to_contain_text("for you")
        for i in range(2):
            expect(cards.nth(i)).to_have_attribute("data-kind", "personal")
        conv = _latest_conversation(engine)
        assert conv.customer_id == CUSTOMER and conv.verified and conv.id != earlier["id"]
        assert conv.customer_name == "Mina Park" and conv.customer_email == "m@p.kr"

        agent = ctx.new_page()
        login(agent, server, server.agent)
        agent.goto(f"{server.url}/console#c={conv.id}")
        agent.reload()
        badge = agent.locator("#conv-meta .verified")
        expect(badge).to_have_text("✓ verified customer")
        expect(agent.locator("#conv-meta")).to_contain_text(CUSTOMER)
        expect(agent.locator("#conv-meta .customer-name")).to_have_text("Mina Park")
        previous = agent.locator("#previous-list .previous-item")
        expect(previous).to_have_count(1)
        expect(previous).to_have_attribute("data-conv-id", earlier["id"])
        # the same badge in Korean through the existing language switch
        agent.evaluate("Annae.setLang('ko')")
        expect(badge).to_have_text("✓ 인증된 고객")
        expect(agent.locator("#previous-title")).to_have_text("이전 상담")
    finally:
        ctx.close()

    # a forged signature (another deployment's secret) for the same customer id: anonymous
    forged = identity.sign("ws_some-other-deployment", CUSTOMER)
    shop = shop_site(server.url, "en", {"customer-id": CUSTOMER, "signature": forged})
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    try:
        cards = _ask_in_widget(ctx.new_page(), shop)
        expect(cards).to_have_count(2)
        for i in range(2):
            expect(cards.nth(i)).to_have_attribute("data-kind", "general")
            expect(cards.nth(i)).to_contain_text("for everyone")
        cards.nth(1).click()
        expect(cards.nth(1)).to_have_class(re.compile("clicked"))
        conv = _latest_conversation(engine)
        assert conv.customer_id is None and not conv.verified
        with session_scope(engine) as s:
            mine = s.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.customer_id == CUSTOMER)
            )
            clicks = s.scalar(
                select(func.count())
                .select_from(RecInteraction)
                .where(RecInteraction.kind == "click")
            )
        assert mine == 2 and clicks == 0  # nothing stored under the claimed id, no click kept
    finally:
        ctx.close()
        engine.dispose()
    log = (server.home / "server.log").read_text()
    assert "widget identity refused (wrong_signature)" in log
    assert secret not in log and forged not in log
