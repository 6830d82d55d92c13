# ruff: noqa: F811  (pytest fixtures imported from browser_fixtures are used as arguments)
"""Product cards in the chat, in a real browser: a consenting identified customer asks about an
entry linked to products and sees the cards; a click is recorded; an agent's suggestion arrives live."""

from __future__ import annotations

import json

import httpx
import pytest
from browser_fixtures import LiveServer, link_two_products, login
from playwright.sync_api import expect
from sqlalchemy import func, select

from annae.agents.users import create_api_key
from annae.store.db import get_engine, session_scope
from annae.store.tables.recommend import RecInteraction

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
expect.set_options(timeout=15_000)
QUESTION = "How long does delivery take?"


def test_consenting_customer_sees_product_cards(browser, sqlite_server: LiveServer) -> None:
    server = sqlite_server
    link_two_products(server, QUESTION, "cust-42")
    engine = get_engine(server.database)
    with session_scope(engine) as s:
        key = create_api_key(s, "browser-shop")
    conv = httpx.post(
        server.url + "/api/v1/conversations",
        json={"customer_id": "cust-42", "language": "en"},
        headers={"X-API-Key": key},
    ).json()
    stored = json.dumps({"id": conv["id"], "token": conv["token"]})
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    try:
        ctx.add_init_script(f"sessionStorage.setItem('annae.conversation', {json.dumps(stored)})")
        chat = ctx.new_page()
        chat.goto(server.url + "/chat?lang=en")
        expect(chat.locator("body")).to_have_attribute("data-ready", "1")
        chat.fill("#chat-input", QUESTION)
        chat.press("#chat-input", "Enter")
        cards = chat.locator(".msg.bot .products .product")
        expect(cards).to_have_count(2)
        expect(cards.nth(0)).to_contain_text("Express delivery")
        expect(cards.nth(0)).to_contain_text("4.00")
        expect(cards.nth(1)).to_contain_text("Gift wrap")
        cards.nth(1).click()
        expect(cards.nth(1)).to_have_class("product clicked")
        expect(cards.nth(1)).to_contain_text("Thanks")
        with session_scope(engine) as s:
            clicks = s.scalar(
                select(func.count())
                .select_from(RecInteraction)
                .where(RecInteraction.customer_id == "cust-42", RecInteraction.kind == "click")
            )
        assert clicks == 1

        # the agent's "Suggest products" button in the console; the cards arrive live
        agent = ctx.new_page()
        login(agent, server, server.agent)
        agent.goto(f"{server.url}/console#c={conv['id']}")
        agent.reload()
        button = agent.locator("#btn-suggest-products")
        expect(button).to_be_visible()
        button.click()
        expect(agent.locator("#transcript .line.agent").last).to_contain_text(
            "Products you may like"
        )
        suggested = chat.locator(".msg.agent .products .product")
        expect(suggested).not_to_have_count(0)
        expect(chat.locator(".msg.agent .bubble").last).to_have_text("Products you may like")
    finally:
        ctx.close()
        engine.dispose()
