# ruff: noqa: F811  (pytest fixtures imported from browser_fixtures are used as arguments)
"""The learning UI in a real browser: the label question at resolve time, the analytics page."""

from __future__ import annotations

import re
import shutil

import httpx
import pytest
from browser_fixtures import LiveServer, bearer, login
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
expect.set_options(timeout=15_000)

DESKTOP = {"width": 1280, "height": 800}
DENTIST = "Can you recommend a good dentist near Gangnam station for a root canal?"
BREAD = "How do I bake sourdough bread?"
BUSAN = "Can you recommend a good dentist in Busan?"
HANGUL = re.compile(r"[가-힣]")
ENGLISH = re.compile(r"[A-Za-z]{2,}")


def _handed_off(server: LiveServer, text: str) -> str:
    r = httpx.post(server.url + "/api/v1/conversations", json={})
    conv_id, token = r.json()["id"], r.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    url = server.url + f"/api/v1/conversations/{conv_id}/messages"
    reply = httpx.post(url, json={"text": text}, headers=auth).json()
    if reply["type"] == "clarify":  # a guess the customer turns down: "talk to a person"
        reply = httpx.post(url, json={"handoff": True}, headers=auth).json()
    assert reply["type"] == "handoff", reply
    return conv_id


def test_resolve_asks_the_label_and_analytics_creates_an_entry(
    browser, sqlite_server: LiveServer
) -> None:
    server = sqlite_server
    conv_id = _handed_off(server, DENTIST)
    ctx = browser.new_context(viewport=DESKTOP)
    try:
        agent = ctx.new_page()
        login(agent, server, server.agent, "/console")
        agent.locator(f"#queue-list .conv-item[data-conv-id='{conv_id}']").click()
        agent.click("#btn-assign")
        expect(agent.locator("#conv-meta")).to_contain_text("with agent")
        agent.fill("#reply-input", "We only sell gifts, sorry!")
        agent.click("#reply-send")
        expect(agent.locator("#transcript")).to_contain_text("We only sell gifts, sorry!")
        agent.click("#btn-resolve")
        dialog = agent.locator("#label-dialog[open]")
        expect(dialog).to_be_visible()
        expect(dialog.locator(".label-q q")).to_contain_text("dentist")
        expect(dialog.locator("#label-new-a")).to_have_value("We only sell gifts, sorry!")
        dialog.locator("input[value=not_faq]").check()
        dialog.locator("#label-save").click()
        expect(agent.locator("#conv-meta .tag", has_text="resolved")).to_be_visible()
    finally:
        ctx.close()
    label = httpx.get(
        server.url + f"/api/v1/conversations/{conv_id}/label", headers=bearer(server, server.agent)
    ).json()["label"]
    assert label["kind"] == "not_faq" and label["agent"] == server.agent[0]

    _handed_off(server, BREAD)
    ctx = browser.new_context(viewport=DESKTOP)
    try:
        page = ctx.new_page()
        login(page, server, server.admin, "/console/analytics")
        expect(page.locator("#m-conversations")).not_to_have_text("0")
        expect(page.locator("svg").first).to_be_visible()
        topic = page.locator(".cluster", has_text=BREAD)
        expect(topic).to_be_visible()
        expect(page.locator(".cluster", has_text="dentist")).to_have_count(0)
        topic.locator("[data-create-entry]").click()
        form = page.locator("#cluster-dialog[open]")
        expect(form.locator("input[name=question]")).to_have_value(BREAD)
        form.locator("textarea[name=answer]").fill("We sponsor two youth teams a year.")
        form.locator("#cluster-save").click()
        expect(topic.locator(".tag-ok")).to_contain_text("created")
    finally:
        ctx.close()
    found = httpx.get(
        server.url + "/api/v1/admin/entries?q=sponsor", headers=bearer(server, server.admin)
    ).json()["entries"]
    assert [e["answer"] for e in found] == ["We sponsor two youth teams a year."]


def _korean_context(browser, server: LiveServer):
    """A browser context whose language cookie says Korean (as the toggle leaves it)."""
    ctx = browser.new_context(viewport=DESKTOP)
    ctx.add_cookies([{"name": "annae_lang", "value": "ko", "url": server.url}])
    return ctx


def test_label_dialog_in_korean_and_english(browser, sqlite_server: LiveServer) -> None:
    server = sqlite_server
    conv_id = _handed_off(server, BUSAN)
    ctx = _korean_context(browser, server)
    try:
        agent = ctx.new_page()
        login(agent, server, server.agent, "/console")
        expect(agent.locator("html")).to_have_attribute("lang", "ko")
        agent.locator(f"#queue-list .conv-item[data-conv-id='{conv_id}']").click()
        agent.click("#btn-assign")
        expect(agent.locator("#conv-meta")).to_contain_text("상담원 응대")
        agent.click("#btn-resolve")
        dialog = agent.locator("#label-dialog[open]")
        expect(dialog.locator("h2")).to_have_text("이 상담은 어떤 내용이었나요?")
        expect(dialog.locator("label.choice")).to_have_text(
            ["기존 항목", "새 항목", "자주 묻는 질문 아님"]
        )
        expect(dialog.locator("#label-search")).to_have_attribute("placeholder", "항목 검색")
        expect(dialog.locator("#label-search")).to_have_attribute("aria-label", "항목 검색")
        expect(dialog.locator("#label-entry")).to_have_attribute("aria-label", "항목")
        expect(dialog.locator("#label-new-q")).to_have_attribute("aria-label", "새 항목 질문")
        expect(dialog.locator("#label-new-a")).to_have_attribute("aria-label", "새 항목 답변")
        expect(dialog.locator("#label-save")).to_have_text("저장하고 상담 종료")
        expect(dialog.locator("#label-skip")).to_have_text("건너뛰기")
        dialog.locator("input[value=new_entry]").check()
        dialog.locator("#label-save").click()  # no answer written: our own error, in Korean
        expect(dialog.locator("#label-error")).to_have_text("새 항목의 질문과 답변을 입력하세요.")
        agent.keyboard.press("Escape")
        expect(agent.locator("#label-dialog[open]")).to_have_count(0)

        # the toggle switches the page and the (closed, reused) dialog to English
        agent.click("[data-lang-toggle]")
        expect(agent.locator("html")).to_have_attribute("lang", "en")
        agent.click("#btn-resolve")
        expect(dialog.locator("h2")).to_have_text("What was this conversation about?")
        expect(dialog.locator("label.choice")).to_have_text(
            ["An existing entry", "A new entry", "Not a FAQ question"]
        )
        expect(dialog.locator("#label-search")).to_have_attribute("placeholder", "Search entries")
        expect(dialog.locator("#label-entry")).to_have_attribute("aria-label", "Entry")
        expect(dialog.locator("#label-save")).to_have_text("Save and resolve")
        expect(dialog.locator("#label-skip")).to_have_text("Skip")
        expect(dialog.locator("#label-error")).to_be_hidden()
        dialog.locator("input[value=new_entry]").check()
        dialog.locator("#label-save").click()
        expect(dialog.locator("#label-error")).to_have_text(
            "Write the question and the answer of the new entry."
        )
        # what the toggle does, while the modal dialog covers it: our error follows the language
        agent.evaluate("window.Annae.setLang('ko')")
        expect(dialog.locator("#label-error")).to_have_text("새 항목의 질문과 답변을 입력하세요.")
        expect(dialog.locator("#label-skip")).to_have_text("건너뛰기")
        dialog.locator("#label-skip").click()  # resolves without a label: the topic stays open
        # a minute: in the suite another server may be retraining on both cores meanwhile
        expect(agent.locator("#conv-meta .tag", has_text="종료")).to_be_visible(timeout=60_000)
    finally:
        ctx.close()


def _chrome_texts(page) -> list[str]:
    """The analytics page's own interface text (headings, labels, buttons, headers, tags)."""
    main = page.locator("main.analytics")
    parts = "h1, h2, th, label > span, button, .tile > span, .legend, .tag, td[data-reason]"
    return [t for t in main.locator(parts).all_inner_texts() if t.strip()]


ANALYTICS_LABELS = {
    "ko": {
        "title": "통계 · Annae",
        "h1": "통계",
        "filters": ["시작일", "종료일 (해당일 제외)", "언어"],
        "apply": "적용",
        "tile": "자동 해결률",
        "tile_count": r"자동 해결 \d+건",
        "low_confidence": "도우미 확신 낮음",
        "size": r"^질문 \d+개$",
        "trend": r"(증가|감소|유지): 이번 주 \d+건, 지난주 \d+건",
        "create": "항목 만들기",
        "retrain": "다시 학습 (검증 후 적용)",
        "version": "버전",
        "live": "적용 중",
        "rollback": "적용하기",
    },
    "en": {
        "title": "Analytics · Annae",
        "h1": "Analytics",
        "filters": ["From", "To (exclusive)", "Language"],
        "apply": "Apply",
        "tile": "Containment rate",
        "tile_count": r"\d+ contained",
        "low_confidence": "bot unsure",
        "size": r"^\d+ questions$",
        "trend": r"(rising|falling|steady): \d+ this week, \d+ last week",
        "create": "Create entry",
        "retrain": "Retrain (gated)",
        "version": "version",
        "live": "live",
        "rollback": "Make live",
    },
}


def _expect_analytics_labels(page: Page, topic, labels: dict) -> None:
    """The analytics page's own interface text, in one language (``ANALYTICS_LABELS``)."""
    expect(page).to_have_title(labels["title"])
    expect(page.locator("main h1")).to_have_text(labels["h1"])
    expect(page.locator(".filters label > span")).to_have_text(labels["filters"])
    expect(page.locator(".filters button")).to_have_text(labels["apply"])
    expect(page.locator(".tile > span.muted").nth(1)).to_have_text(labels["tile"])
    expect(page.locator(".tile").nth(1)).to_contain_text(re.compile(labels["tile_count"]))
    expect(page.locator("td[data-reason=low_confidence]")).to_have_text(labels["low_confidence"])
    expect(topic.locator(".tag").first).to_have_text(re.compile(labels["size"]))
    expect(topic).to_contain_text(re.compile(labels["trend"]))
    expect(topic.locator("[data-create-entry]")).to_have_text(labels["create"])
    expect(page.locator("#gated-retrain")).to_have_text(labels["retrain"])
    expect(page.locator("#models th").first).to_have_text(labels["version"])
    expect(page.locator("#models [data-status=live]")).to_have_text(labels["live"])
    expect(page.locator("[data-rollback=v90]")).to_have_text(labels["rollback"])


def _asks_and_keeps_the_live_model(page, question: str) -> None:
    """ "Make live" asks in the styled confirm dialog; answering no keeps the live model."""
    page.locator("[data-rollback=v90]").click()
    asked = page.locator("#confirm-dialog[open]")
    expect(asked.locator("#confirm-text")).to_have_text(question)
    asked.locator("#confirm-cancel").click()
    expect(page.locator("#confirm-dialog[open]")).to_have_count(0)
    expect(page.locator("#models [data-status=saved]")).to_have_count(1)


def test_analytics_page_in_korean_and_english(browser, sqlite_server: LiveServer) -> None:
    server = sqlite_server
    _handed_off(server, BUSAN)  # an unanswered topic (the label test may run alone or not at all)
    models = server.home / "models"
    live = (models / "LIVE").read_text().strip()
    (models / "v90").mkdir(exist_ok=True)  # a saved version, so "Make live" is offered
    shutil.copy(models / live / "manifest.json", models / "v90" / "manifest.json")
    ctx = _korean_context(browser, server)
    try:
        page = ctx.new_page()
        login(page, server, server.admin, "/console/analytics")
        topic = page.locator(".cluster", has_text=BUSAN)
        _expect_analytics_labels(page, topic, ANALYTICS_LABELS["ko"])
        expect(page.locator(".legend")).to_have_text(re.compile(r"자동 해결\s+상담원 연결\s+기타"))
        expect(page.locator("#models [data-status=saved]")).to_have_text("보관됨")
        english = [t for t in _chrome_texts(page) if ENGLISH.search(t.replace("CSV", ""))]
        assert english == []

        _asks_and_keeps_the_live_model(page, "v90 모델을 적용할까요?")

        topic.locator("[data-create-entry]").click()
        form = page.locator("#cluster-dialog[open]")
        expect(form.locator("h2")).to_have_text("주제로 새 항목 만들기")
        expect(form.locator("label > span")).to_have_text(["질문 (제목)", "답변"])
        expect(form.locator("#cluster-save")).to_have_text("항목 저장")
        expect(form.locator("button[value=cancel]")).to_have_text("취소")
        form.locator("textarea[name=answer]").fill("부산 치과는 추천해 드리기 어려워요.")
        form.locator("#cluster-save").click()
        expect(topic.locator(".tag-ok")).to_have_text(
            re.compile(r"항목을 만들었어요 \(예시 \d+개\)")
        )

        # the toggle re-labels everything without a reload, the numbers included
        page.click("[data-lang-toggle]")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        _expect_analytics_labels(page, topic, ANALYTICS_LABELS["en"])
        expect(topic.locator(".tag-ok")).to_have_text(
            re.compile(r"^entry \S+ created, \d+ examples$")
        )
        korean = [t for t in _chrome_texts(page) if HANGUL.search(t)]
        assert korean == []
        _asks_and_keeps_the_live_model(page, "Make v90 the live model?")

        page.click("[data-lang-toggle]")  # and back
        expect(page.locator("main h1")).to_have_text("통계")
        expect(topic.locator(".tag").first).to_have_text(re.compile(r"^질문 \d+개$"))
        expect(topic.locator(".tag-ok")).to_have_text(re.compile(r"항목을 만들었어요"))
    finally:
        ctx.close()
