"""The authorisation matrix, generated from the app's route table.

Every route (HTTP method + path, and both WebSockets) must have a rule below; a new route
without one fails ``test_every_route_has_a_rule``. Each rule is then checked with no credentials,
a customer's conversation token, an agent's and an admin's bearer token.
"""

from __future__ import annotations

import pytest
from fastapi.routing import _IncludedRouter
from starlette.routing import Mount
from starlette.websockets import WebSocketDisconnect

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

PUBLIC, CUSTOMER, AGENT, ADMIN = "public", "customer", "agent", "admin"
ONLY_CUSTOMER = "only the customer"  # its token (or a channel's key); staff are refused
STAFF_OR_CHANNEL = "staff or channel"  # an agent/admin, or a channel's X-API-Key
PAGE, CONSOLE, ADMIN_PAGE = "page", "console", "admin page"  # HTML: login redirect, 403 page
LOCAL = "loopback"  # /metrics: loopback clients or ANNAE_METRICS_TOKEN (test_hardening_web)
SECRET = "channel secret"  # the Kakao skill: only the channel's X-Annae-Secret (test_channel_kakao)

C = "/api/v1/conversations/{conv_id}"
RULES: dict[tuple[str, str], str] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): LOCAL,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): AGENT,
    ("GET", "/api/v1/auth/me"): AGENT,
    ("POST", "/auth/login"): PUBLIC,
    ("POST", "/auth/logout"): PUBLIC,  # a form; without a session it only redirects
    ("POST", "/api/v1/conversations"): PUBLIC,
    ("POST", C + "/messages"): ONLY_CUSTOMER,
    ("GET", C + "/messages"): CUSTOMER,
    ("GET", C): CUSTOMER,
    ("WS", C + "/ws"): CUSTOMER,
    ("GET", "/api/v1/queue"): AGENT,
    ("GET", "/api/v1/conversations"): AGENT,
    ("POST", C + "/assign"): AGENT,
    ("POST", C + "/replies"): AGENT,
    ("POST", C + "/resolve"): AGENT,
    ("POST", C + "/handback"): AGENT,
    ("WS", "/api/v1/agents/ws"): AGENT,
    ("GET", "/api/v1/admin/entries"): ADMIN,
    ("POST", "/api/v1/admin/entries"): ADMIN,
    ("GET", "/api/v1/admin/entries/{entry_id}"): ADMIN,
    ("PATCH", "/api/v1/admin/entries/{entry_id}"): ADMIN,
    ("POST", "/api/v1/admin/entries/{entry_id}/examples"): ADMIN,
    ("DELETE", "/api/v1/admin/examples/{example_id}"): ADMIN,
    ("GET", "/api/v1/admin/oos"): ADMIN,
    ("POST", "/api/v1/admin/oos"): ADMIN,
    ("POST", "/api/v1/admin/retrain"): ADMIN,
    ("GET", "/api/v1/admin/retrain"): ADMIN,
    ("GET", "/api/v1/admin/model"): ADMIN,
    ("GET", "/api/v1/admin/users"): ADMIN,
    ("POST", "/api/v1/admin/users"): ADMIN,
    ("POST", C + "/label"): AGENT,
    ("GET", C + "/label"): AGENT,
    ("GET", "/api/v1/learning/entries"): AGENT,
    ("POST", C + "/messages/{message_id}/rating"): ONLY_CUSTOMER,
    ("GET", "/api/v1/learning/review"): ADMIN,
    ("POST", "/api/v1/learning/review/{rating_id}/done"): ADMIN,
    ("GET", "/api/v1/learning/clusters"): ADMIN,
    ("POST", "/api/v1/learning/clusters/entry"): ADMIN,
    ("POST", "/api/v1/learning/retrain"): ADMIN,
    ("GET", "/api/v1/learning/retrain"): ADMIN,
    ("GET", "/api/v1/learning/models"): ADMIN,
    ("POST", "/api/v1/learning/models/{version}/rollback"): ADMIN,
    ("POST", "/api/v1/learning/models/{version}/promote"): ADMIN,
    ("GET", "/api/v1/learning/operating-point"): ADMIN,
    ("POST", "/api/v1/learning/operating-point"): ADMIN,
    ("GET", "/api/v1/learning/analytics"): ADMIN,
    ("GET", "/api/v1/learning/analytics.csv"): ADMIN,
    ("GET", "/console/analytics"): ADMIN_PAGE,
    ("GET", "/chat"): PAGE,
    ("GET", "/widget.js"): PAGE,
    ("GET", "/console/login"): PAGE,
    ("GET", "/console"): CONSOLE,
    ("GET", "/console/kb"): ADMIN_PAGE,
    ("GET", "/api/v1/customers/{customer_id}/recommendations"): STAFF_OR_CHANNEL,
    ("GET", "/api/v1/products/{product_id}/similar"): STAFF_OR_CHANNEL,
    ("GET", "/api/v1/entries/{entry_id}/products"): STAFF_OR_CHANNEL,
    ("POST", "/api/v1/customers/{customer_id}/interactions"): STAFF_OR_CHANNEL,
    ("GET", "/api/v1/decisions/{message_id}"): ADMIN,
    ("GET", "/api/v1/admin/privacy/customers/{customer_id}"): ADMIN,
    ("DELETE", "/api/v1/admin/privacy/customers/{customer_id}"): ADMIN,
    ("GET", "/api/v1/admin/privacy/customers/{customer_id}/consent"): ADMIN,
    ("POST", "/api/v1/admin/privacy/customers/{customer_id}/consent"): ADMIN,
    ("POST", C + "/consent"): ONLY_CUSTOMER,
    ("GET", "/api/v1/admin/audit"): ADMIN,
    ("GET", C + "/products"): CUSTOMER,
    ("POST", C + "/products/{product_id}/click"): CUSTOMER,
    ("POST", C + "/suggest-products"): AGENT,
    ("GET", "/api/v1/admin/entries/{entry_id}/products"): ADMIN,
    ("PUT", "/api/v1/admin/entries/{entry_id}/products"): ADMIN,
    # the learning loop
    ("DELETE", C + "/label"): AGENT,
    ("GET", "/api/v1/learning/labels"): ADMIN,
    # channels: the Kakao skill, e-mail links (the signed token in the path is the credential)
    ("POST", "/channels/kakao/skill"): SECRET,
    ("GET", "/channels/email/link/{token}"): PUBLIC,
    ("POST", "/channels/email/link/{token}"): PUBLIC,
    ("GET", "/api/v1/admin/webhooks"): ADMIN,
    ("POST", "/api/v1/admin/webhooks"): ADMIN,
    ("DELETE", "/api/v1/admin/webhooks/{hook_id}"): ADMIN,
    ("GET", "/api/v1/admin/deliveries"): ADMIN,
    ("POST", "/api/v1/admin/deliveries/{item_id}/resend"): ADMIN,
    ("GET", "/admin/deliveries"): ADMIN,
    # the agent desk
    ("GET", "/api/v1/desk/teams"): AGENT,
    ("POST", "/api/v1/desk/teams"): ADMIN,
    ("PATCH", "/api/v1/desk/teams/{name}"): ADMIN,
    ("DELETE", "/api/v1/desk/teams/{name}"): ADMIN,
    ("GET", "/api/v1/desk/holidays/kr/{year}"): AGENT,
    ("GET", "/api/v1/desk/agents"): AGENT,
    ("GET", "/api/v1/desk/me"): AGENT,
    ("PUT", "/api/v1/desk/me"): AGENT,
    ("GET", "/api/v1/desk/mentions"): AGENT,
    ("GET", "/api/v1/desk/replies"): AGENT,
    ("POST", "/api/v1/desk/replies"): AGENT,
    ("DELETE", "/api/v1/desk/replies/{reply_id}"): AGENT,
    ("GET", "/api/v1/desk/replies.csv"): ADMIN,
    ("POST", "/api/v1/desk/replies.csv"): ADMIN,
    ("GET", "/api/v1/desk/service-levels"): ADMIN,
    ("GET", "/api/v1/desk/service-levels.csv"): ADMIN,
    ("POST", C + "/transfer"): AGENT,
    ("GET", C + "/notes"): AGENT,
    ("POST", C + "/notes"): AGENT,
    ("POST", C + "/csat"): ONLY_CUSTOMER,
    ("GET", C + "/csat"): ONLY_CUSTOMER,
}
# valid bodies where a handler reads the body before it checks who is calling
BODIES = {
    ("POST", C + "/messages"): {"text": "How long does delivery take?"},
    ("POST", C + "/messages/{message_id}/rating"): {"helpful": True},
    ("POST", C + "/consent"): {"purpose": "training", "granted": True},
    ("POST", C + "/csat"): {"score": 5},
}
# required query parameters (checked before the handler looks at the caller)
QUERIES = {("GET", C + "/products"): "?entry_id=1"}
# starting a retrain costs minutes of CPU: its positive check is left to test_api_admin
NO_POSITIVE = {("POST", "/api/v1/admin/retrain"), ("POST", "/api/v1/learning/retrain")}


def route_table(app) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves (HEAD folded into GET; WebSockets as WS)."""

    def flat(routes):
        for route in routes:
            if isinstance(route, _IncludedRouter):
                yield from route.effective_route_contexts()
            elif not isinstance(route, Mount):  # /static files are public by design
                yield route

    table = set()
    for route in flat(app.routes):
        path = route.path or route.original_route.path
        for method in route.methods or {"WS"}:
            if method != "HEAD":
                table.add((method, path))
    return table


def test_every_route_has_a_rule(api):
    table = route_table(api.client.app)
    assert table - set(RULES) == set(), "routes without an authorisation rule"
    assert set(RULES) - table == set(), "rules for routes that no longer exist"


def _fill(path: str, conv_id: str) -> str:
    return (
        path.replace("{conv_id}", conv_id)
        .replace("{message_id}", "1")
        .replace("{entry_id}", "1")
        .replace("{example_id}", "1")
        .replace("{rating_id}", "1")
        .replace("{version}", "v1")
        .replace("{customer_id}", "C001")
        .replace("{product_id}", "B01")
        .replace("{hook_id}", "1")
        .replace("{item_id}", "1")
        .replace("{reply_id}", "1")
        .replace("{name}", "none")
        .replace("{year}", "2026")
    )


def _call(api, method: str, path: str, headers: dict, body) -> tuple[int, str]:
    """(HTTP status or WebSocket close code, redirect location)."""
    if method == "WS":
        token = headers.get("Authorization", " ").split(" ", 1)[1]
        url = path + (f"?token={token}" if token else "")
        with api.client.websocket_connect(url) as ws:
            try:
                first = ws.receive_json()
            except WebSocketDisconnect as exc:
                return exc.code, ""
            return (200 if first.get("event") == "hello" else 0), ""
    r = api.client.request(method, path, headers=headers, json=body, follow_redirects=False)
    return r.status_code, r.headers.get("location", "")


def test_matrix(api):
    conv_id, customer = api.customer()
    api.say(conv_id, customer, "How long does delivery take?")
    agent, admin = api.login("alice"), api.login("root")
    api.client.cookies.clear()
    denied = {401, 403, 4401, 4403}
    wrong: list[str] = []

    def expect(ok: bool, who: str, key, got) -> None:
        if not ok:
            wrong.append(f"{key[0]} {key[1]} as {who}: {got}")

    # logging out revokes the token used: that route goes last
    logout = ("POST", "/api/v1/auth/logout")
    for key, rule in sorted(RULES.items(), key=lambda item: (item[0] == logout, item[0])):
        method, template = key
        path = _fill(template, conv_id) + QUERIES.get(key, "")
        body = BODIES.get(key)
        anon = _call(api, method, path, {}, body)
        if rule == SECRET:  # no token of any kind opens it
            for who, headers in (("anonymous", {}), ("a customer", customer), ("an admin", admin)):
                got = _call(api, method, path, headers, body)
                expect(got[0] == 401, who, key, got)
            continue
        if rule in (PUBLIC, PAGE, LOCAL):
            expect(anon[0] not in denied, "anonymous", key, anon)
            continue
        if rule in (CONSOLE, ADMIN_PAGE):
            expect(anon[0] == 303 and anon[1].startswith("/console/login"), "anonymous", key, anon)
        else:
            expect(anon[0] in (401, 4401), "anonymous", key, anon)
        as_customer = _call(api, method, path, customer, body)
        if rule in (CUSTOMER, ONLY_CUSTOMER):
            expect(as_customer[0] not in denied, "its customer", key, as_customer)
        elif rule not in (CONSOLE, ADMIN_PAGE):
            expect(as_customer[0] in (401, 4401), "a customer", key, as_customer)
        as_agent = _call(api, method, path, agent, body)
        if rule == ONLY_CUSTOMER:
            as_admin = _call(api, method, path, admin, body)
            expect(as_agent[0] in denied, "an agent", key, as_agent)
            expect(as_admin[0] in denied, "an admin", key, as_admin)
            continue
        if rule in (ADMIN, ADMIN_PAGE):
            expect(as_agent[0] in (403, 4403), "an agent", key, as_agent)
        elif rule != CONSOLE and key not in NO_POSITIVE:
            expect(as_agent[0] not in denied, "an agent", key, as_agent)
        if key not in NO_POSITIVE and rule not in (CONSOLE, ADMIN_PAGE):
            as_admin = _call(api, method, path, admin, body)
            expect(as_admin[0] not in denied, "an admin", key, as_admin)
    assert not wrong, "\n".join(wrong)
