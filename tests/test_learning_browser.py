# ruff: noqa: F811  (pytest fixtures imported from browser_fixtures are used as arguments)
"""The learning UI in a real browser: the label question at resolve time, the analytics page."""

from __future__ import annotations

import httpx
import pytest
from browser_fixtures import LiveServer
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
expect.set_options(timeout=15_000)

DESKTOP = {"width": 1280, "height": 800}
DENTIST = "Can you recommend a good dentist near Gangnam station for a root canal?"
SPONSOR = "Do you sponsor local football teams?"


def _login(page, server: LiveServer, who, target: str) -> None:
    page.goto(server.url + target)
    page.fill("#username", who[0])
    page.fill("#password", who[1])
    page.click("#login-form button[type=submit]")
    expect(page).to_have_url(server.url + target)


def _token(server: LiveServer, who) -> dict:
    r = httpx.post(server.url + "/api/v1/auth/login", json={"username": who[0], "password": who[1]})
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _handed_off(server: LiveServer, text: str) -> str:
    r = httpx.post(server.url + "/api/v1/conversations", json={})
    conv_id, token = r.json()["id"], r.json()["token"]
    reply = httpx.post(
        server.url + f"/api/v1/conversations/{conv_id}/messages",
        json={"text": text},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
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
        _login(agent, server, server.agent, "/console")
        agent.locator(f"#queue-list .conv-item[data-conv-id='{conv_id}']").click()
        agent.click("#btn-assign")
        expect(agent.locator("#conv-meta")).to_contain_text("with agent")
        agent.fill("#reply-input", "We only sell gifts, sorry!")
        agent.click("#reply-send")
        expect(agent.locator("#transcript")).to_contain_text("We only sell gifts, sorry!")
        agent.click("#btn-resolve")
        dialog = agent.locator("#label-dialog[open]")
        expect(dialog).to_be_visible()
        expect(dialog.locator("#label-question")).to_contain_text("dentist")
        expect(dialog.locator("#label-new-a")).to_have_value("We only sell gifts, sorry!")
        dialog.locator("input[value=not_faq]").check()
        dialog.locator("#label-save").click()
        expect(agent.locator("#conv-meta .tag", has_text="resolved")).to_be_visible()
    finally:
        ctx.close()
    label = httpx.get(
        server.url + f"/api/v1/conversations/{conv_id}/label", headers=_token(server, server.agent)
    ).json()["label"]
    assert label["kind"] == "not_faq" and label["agent"] == server.agent[0]

    _handed_off(server, SPONSOR)
    ctx = browser.new_context(viewport=DESKTOP)
    try:
        page = ctx.new_page()
        _login(page, server, server.admin, "/console/analytics")
        expect(page.locator("#m-conversations")).not_to_have_text("0")
        expect(page.locator("svg").first).to_be_visible()
        topic = page.locator(".cluster", has_text=SPONSOR)
        expect(topic).to_be_visible()
        expect(page.locator(".cluster", has_text="dentist")).to_have_count(0)
        topic.locator("[data-create-entry]").click()
        form = page.locator("#cluster-dialog[open]")
        expect(form.locator("input[name=question]")).to_have_value(SPONSOR)
        form.locator("textarea[name=answer]").fill("We sponsor two youth teams a year.")
        form.locator("#cluster-save").click()
        expect(topic.locator(".tag-ok")).to_contain_text("created")
    finally:
        ctx.close()
    found = httpx.get(
        server.url + "/api/v1/admin/entries?q=sponsor", headers=_token(server, server.admin)
    ).json()["entries"]
    assert [e["answer"] for e in found] == ["We sponsor two youth teams a year."]
