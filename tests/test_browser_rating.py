# ruff: noqa: F811  (pytest fixtures imported from browser_fixtures are used as arguments)
"""Rating a bot answer in the chat, in a real browser: 👎 is sent once, shown, and reaches the
admins' review list."""

from __future__ import annotations

import httpx
import pytest
from browser_fixtures import LiveServer
from playwright.sync_api import expect
from sqlalchemy import select

from annae.store.db import get_engine, session_scope
from annae.store.tables.learning import AnswerRating

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
expect.set_options(timeout=15_000)
QUESTION = "How long does delivery take?"


def _admin_headers(server: LiveServer) -> dict[str, str]:
    user, password = server.admin
    r = httpx.post(server.url + "/api/v1/auth/login", json={"username": user, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_customer_rates_answer_not_helpful(browser, sqlite_server: LiveServer) -> None:
    server = sqlite_server
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    engine = get_engine(server.database)
    try:
        chat = ctx.new_page()
        requests: list[str] = []
        chat.on(
            "request",
            lambda r: requests.append(r.post_data or "") if r.url.endswith("/rating") else None,
        )
        chat.goto(server.url + "/chat?lang=en")
        expect(chat.locator("body")).to_have_attribute("data-ready", "1")
        chat.fill("#chat-input", QUESTION)
        chat.press("#chat-input", "Enter")

        answer = chat.locator(".msg.bot").last
        rating = answer.get_by_role("group", name="Was this answer helpful?")
        helpful = rating.get_by_role("button", name="Helpful", exact=True)
        not_helpful = rating.get_by_role("button", name="Not helpful", exact=True)
        expect(not_helpful).to_be_enabled()
        expect(helpful).to_be_enabled()
        expect(chat.locator(".msg.customer .rating")).to_have_count(0)

        not_helpful.click()
        expect(not_helpful).to_have_class("rate not-helpful chosen")
        expect(not_helpful).to_have_attribute("aria-pressed", "true")
        expect(helpful).to_have_attribute("aria-pressed", "false")
        expect(not_helpful).to_be_disabled()
        expect(helpful).to_be_disabled()
        expect(rating.locator(".rate-thanks")).to_have_text("Thanks for your feedback.")
        expect(chat.locator("#chat-error")).to_be_hidden()
        assert len(requests) == 1 and '"helpful":false' in requests[0].replace(" ", "")

        with session_scope(engine) as s:
            rows = s.scalars(select(AnswerRating)).all()
            assert [(r.helpful, r.reviewed_at) for r in rows] == [(False, None)]
            message_id = rows[0].message_id

        review = httpx.get(server.url + "/api/v1/learning/review", headers=_admin_headers(server))
        assert review.status_code == 200, review.text
        items = [i for i in review.json()["items"] if i["message_id"] == message_id]
        assert len(items) == 1, review.json()
        assert items[0]["question"] == QUESTION
        assert items[0]["answer"] == answer.locator(".bubble").inner_text()
    finally:
        ctx.close()
        engine.dispose()
