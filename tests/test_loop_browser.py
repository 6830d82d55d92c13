# ruff: noqa: F811  (pytest fixtures imported from browser_fixtures are used as arguments)
"""Issue 14 in a real browser, Korean and English: the label dialog labels the question that led
to the hand-off (never the later small talk) and a label can be undone; Retrain on the KB page
shows the gate's comparison; an off-topic question gets the out-of-scope reply with a button to
reach a person."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from api_support import handed_off
from browser_fixtures import ENCODER, LiveServer, bearer, login, start_server
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(900)]
expect.set_options(timeout=20_000)

DESKTOP = {"width": 1280, "height": 800}
# the scenario: a question the bot hands off, the agent asks for the order number,
# the customer answers with thanks
SCENARIO = {
    "ko": (
        "이어폰 한쪽이 안 들려요",
        "주문번호를 알려 주시면 확인해 드릴게요.",
        "A12345 입니다 감사해요!",
    ),
    "en": (
        "One of my earbuds has no sound",
        "Could you send me your order number?",
        "It's A12345, thanks!",
    ),
}
LABELS = {
    "ko": {"title": "이 상담은 어떤 내용이었나요?", "undo": "되돌리기", "ok": "예"},  # noqa: RUF001
    "en": {"title": "What was this conversation about?", "undo": "Undo", "ok": "Yes"},
}


def _context(browser, server: LiveServer, lang: str):
    ctx = browser.new_context(viewport=DESKTOP)
    ctx.add_cookies([{"name": "annae_lang", "value": lang, "url": server.url}])
    return ctx


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_label_dialog_quotes_the_handed_off_question_and_a_label_can_be_undone(
    browser, sqlite_server: LiveServer, lang: str
) -> None:
    server = sqlite_server
    question, agent_reply, small_talk = SCENARIO[lang]
    r = httpx.post(server.url + "/api/v1/conversations", json={"language": lang})
    conv_id, customer = r.json()["id"], {"Authorization": f"Bearer {r.json()['token']}"}
    say = server.url + f"/api/v1/conversations/{conv_id}/messages"
    reply = handed_off(lambda body: httpx.post(say, json=body, headers=customer).json(), question)
    assert reply["type"] == "handoff"
    form = httpx.get(
        server.url + f"/api/v1/conversations/{conv_id}/label", headers=bearer(server, server.agent)
    ).json()

    ctx = _context(browser, server, lang)
    try:
        agent = ctx.new_page()
        login(agent, server, server.agent, "/console")
        agent.locator(f"#queue-list .conv-item[data-conv-id='{conv_id}']").click()
        agent.click("#btn-assign")
        expect(agent.locator("#btn-assign")).to_be_hidden()  # assigned to this agent
        agent.fill("#reply-input", agent_reply)
        agent.click("#reply-send")
        expect(agent.locator("#transcript")).to_contain_text(agent_reply)
        httpx.post(say, json={"text": small_talk}, headers=customer)
        expect(agent.locator("#transcript")).to_contain_text(small_talk)
        agent.click("#btn-resolve")

        dialog = agent.locator("#label-dialog[open]")
        expect(dialog.locator("h2")).to_have_text(LABELS[lang]["title"])
        # the question that led to the hand-off, ticked; never the later small talk
        expect(dialog.locator(".label-q")).to_have_count(1)
        expect(dialog.locator(".label-q q")).to_have_text(question)
        expect(dialog.locator(".label-q input")).to_be_checked()
        expect(dialog).not_to_contain_text(small_talk)
        # a styled dialog (the console's card), not the browser's box
        radius = dialog.evaluate("d => getComputedStyle(d).borderRadius")
        assert radius not in ("", "0px"), radius
        # no credible guess: nothing pre-selected, and it says so
        if form["preselect"] is None:
            assert dialog.locator("#label-entry").evaluate("s => s.selectedIndex") == -1
            expect(dialog.locator("#label-no-guess")).to_be_visible()
        # entries of the conversation's language first
        expect(dialog.locator("#label-entry option").first).to_have_attribute("lang", lang)
        dialog.locator("#label-search").fill(f"warranty_{lang}")
        dialog.locator("#label-entry").select_option(index=0)
        dialog.locator("#label-save").click()
        expect(agent.locator("#label-dialog[open]")).to_have_count(0)
        resolved = {"ko": "종료", "en": "resolved"}[lang]
        expect(agent.locator("#conv-meta .tag", has_text=resolved)).to_be_visible()
    finally:
        ctx.close()
    admin_headers = bearer(server, server.admin)
    labels = httpx.get(server.url + "/api/v1/learning/labels", headers=admin_headers).json()
    mine = next(x for x in labels["labels"] if x["conversation_id"] == conv_id)
    assert mine["examples"] == [question] and mine["entry_key"] == f"warranty_{lang}"

    ctx = _context(browser, server, lang)
    try:
        page = ctx.new_page()
        login(page, server, server.admin, "/console/analytics")
        row = page.locator(f"#labels tr[data-conversation='{conv_id}']")
        expect(row.locator("[data-question]")).to_have_text(question)
        expect(row.locator("[data-undo-label]")).to_have_text(LABELS[lang]["undo"])
        row.locator("[data-undo-label]").click()
        confirm = page.locator("#confirm-dialog[open]")
        expect(confirm.locator("#confirm-ok")).to_have_text(LABELS[lang]["ok"])
        confirm.locator("#confirm-ok").click()
        expect(row).to_have_count(0)
        expect(page.locator("#labels-status")).not_to_be_empty()
    finally:
        ctx.close()
    after = httpx.get(
        server.url + f"/api/v1/conversations/{conv_id}/label", headers=admin_headers
    ).json()
    assert after["label"] is None


@pytest.fixture(scope="module")
def oos_server(tmp_path_factory, demo_models) -> Iterator[LiveServer]:
    """A service with the out-of-scope reply on (a low threshold: the demo's own oos examples)."""
    home = tmp_path_factory.mktemp("oos-home")
    server = start_server(
        home, f"sqlite:///{home / 'annae.db'}", ENCODER, demo_models, {"ANNAE_OOS_THRESHOLD": "0.3"}
    )
    yield server
    server.stop()


OFF_TOPIC = {
    "ko": ("오늘 날씨 어때?", "상담원", "상담원 연결"),
    "en": ("what's the weather like today", "person", "Talk to a person"),
}


@pytest.mark.parametrize("lang", ["ko", "en"])
def test_an_off_topic_question_gets_the_out_of_scope_reply_and_a_person_button(
    browser, oos_server: LiveServer, lang: str
) -> None:
    question, word, button = OFF_TOPIC[lang]
    ctx = browser.new_context(viewport=DESKTOP)
    try:
        chat = ctx.new_page()
        chat.goto(oos_server.url + f"/chat?lang={lang}")
        chat.fill("#chat-input", question)
        chat.press("#chat-input", "Enter")
        reply = chat.locator(".msg.bot.out-of-scope").last
        expect(reply.locator(".bubble")).to_contain_text(word)
        expect(chat.locator("#chat-status")).to_be_hidden()  # not queued
        btn = reply.locator("button.oos-human")
        expect(btn).to_have_text(button)
        btn.click()
        expect(chat.locator(".sys.handoff").last).to_be_visible()
        expect(chat.locator("body")).to_have_attribute("data-state", "waiting")
    finally:
        ctx.close()
