"""Signed customer identity from the widget: the shop's HMAC-SHA256 links a conversation to its
customer; any bad claim gives an anonymous conversation, stores nothing under the claimed id and
logs one line without the secret. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from annae.agents import identity
from annae.cli import app
from annae.privacy import rights
from annae.store.db import session_scope
from annae.store.tables.privacy import ConsentEvent
from annae.store.tables.recommend import RecCustomer, RecInteraction
from annae.store.tables.service import Conversation

OTHER_SECRET = "ws_another-deployments-secret"


def test_verify_accepts_only_the_exact_signed_id() -> None:
    secret = "ws_test"
    good = identity.sign(secret, "cust-1")
    assert identity.verify(secret, "cust-1", good).customer_id == "cust-1"
    assert identity.verify(secret, "cust-1", good.upper()).verified  # hex in either case
    cases = {
        "wrong_signature": ("cust-2", good),
        "malformed_signature": ("cust-1", good[:-1]),
        "missing_signature": ("cust-1", None),
        "no_widget_secret": ("cust-1", good),
        "customer_id_too_long": ("x" * 10_240, identity.sign(secret, "x" * 10_240)),
        "customer_id_control_characters": ("cu\x00st", identity.sign(secret, "cu\x00st")),
        "customer_id_whitespace": (" cust-1", identity.sign(secret, " cust-1")),
        "empty_customer_id": ("", identity.sign(secret, "")),
    }
    for problem, (cid, sig) in cases.items():
        verdict = identity.verify(None if problem == "no_widget_secret" else secret, cid, sig)
        assert verdict == identity.Verdict(None, problem), problem
    assert identity.clean_text("  Kim\x1b[31m Mina\u202e ", 200) == "Kim[31m Mina"
    assert identity.clean_text("\x00", 200) is None


@pytest.fixture
def signed(api):
    secret = identity.rotate_secret(api.home)
    assert (identity.secret_path(api.home).stat().st_mode & 0o777) == 0o600
    api.secret = secret
    return api


def _start(api, **body):
    r = api.client.post("/api/v1/conversations", json={"language": "en", **body})
    assert r.status_code == 201, r.text  # never an error for the customer
    return r.json()


def _stored_under(api, claimed: str) -> int:
    from annae.store.db import get_engine

    with session_scope(get_engine(api.db_url)) as s:
        return sum(
            s.scalar(select(func.count()).select_from(table).where(column == claimed)) or 0
            for table, column in (
                (Conversation, Conversation.customer_id),
                (RecCustomer, RecCustomer.id),
                (RecInteraction, RecInteraction.customer_id),
                (ConsentEvent, ConsentEvent.customer_id),
            )
        )


def test_a_valid_signature_links_the_conversation(signed) -> None:
    api = signed
    sig = identity.sign(api.secret, "cust-42")
    first = _start(api, customer_id="cust-42", signature=sig, name="Kim Mina", email="m@ex.com")
    assert first["verified"] is True
    second = _start(api, customer_id="cust-42", signature=sig)
    agent = api.login("alice")
    detail = api.client.get(f"/api/v1/conversations/{second['id']}", headers=agent).json()
    assert detail["customer_id"] == "cust-42" and detail["verified"] is True
    assert [p["id"] for p in detail["previous"]] == [first["id"]]
    detail = api.client.get(f"/api/v1/conversations/{first['id']}", headers=agent).json()
    assert detail["customer_name"] == "Kim Mina" and detail["customer_email"] == "m@ex.com"
    headers = {"Authorization": f"Bearer {second['token']}"}
    api.say(second["id"], headers, "How long does delivery take?")
    listed = api.client.get("/api/v1/conversations", headers=agent).json()["conversations"]
    assert {c["id"]: c["verified"] for c in listed} == {first["id"]: True, second["id"]: True}
    # the customer's own view does not leak other conversations
    public = api.client.get(f"/api/v1/conversations/{second['id']}", headers=headers).json()
    assert "previous" not in public and "customer_email" not in public
    # export covers the widget's conversations like any other channel's
    from annae.store.db import get_engine

    with session_scope(get_engine(api.db_url)) as s:
        data = rights.export_customer(s, "cust-42")
    assert {c["id"] for c in data["conversations"]} == {first["id"], second["id"]}


BAD_CLAIMS = {
    "signature for another id": lambda secret: ("victim-1", identity.sign(secret, "attacker-1")),
    "another deployment's secret": lambda _s: ("victim-1", identity.sign(OTHER_SECRET, "victim-1")),
    "10 kB customer id": lambda secret: ("v" * 10_240, identity.sign(secret, "v" * 10_240)),
    "control characters": lambda secret: ("victim\r\n1", identity.sign(secret, "victim\r\n1")),
    "no signature": lambda _s: ("victim-1", None),
    "garbage signature": lambda _s: ("victim-1", "not-hex" * 100),
}


@pytest.mark.parametrize("case", list(BAD_CLAIMS))
def test_bad_claims_stay_anonymous_and_log_without_the_secret(signed, caplog, case) -> None:
    api = signed
    claimed, signature = BAD_CLAIMS[case](api.secret)
    body = {"customer_id": claimed, "name": "Victim", "email": "victim@example.com"}
    if signature is not None:
        body["signature"] = signature
    with caplog.at_level(logging.WARNING, logger="annae.web"):
        out = _start(api, **body)
    assert out["verified"] is False
    assert _stored_under(api, claimed) == 0
    agent = api.login("alice")
    detail = api.client.get(f"/api/v1/conversations/{out['id']}", headers=agent).json()
    assert detail["customer_id"] is None and detail["verified"] is False
    assert detail["customer_name"] is None and detail["customer_email"] is None
    lines = [r.getMessage() for r in caplog.records if "widget identity refused" in r.message]
    assert len(lines) == 1
    assert api.secret not in lines[0] and OTHER_SECRET not in lines[0]
    assert claimed not in lines[0] and (signature is None or signature not in lines[0])
    # the anonymous customer can chat as usual
    headers = {"Authorization": f"Bearer {out['token']}"}
    assert api.say(out["id"], headers, "How long does delivery take?")["type"] == "answer"


def test_without_a_secret_nobody_is_verified(api, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="annae.web"):
        out = _start(api, customer_id="cust-1", signature=identity.sign("guess", "cust-1"))
    assert out["verified"] is False and _stored_under(api, "cust-1") == 0
    assert any("no_widget_secret" in r.getMessage() for r in caplog.records)


def test_rotation_invalidates_old_signatures(signed) -> None:
    api = signed
    old = identity.sign(api.secret, "cust-9")
    assert _start(api, customer_id="cust-9", signature=old)["verified"] is True
    new = identity.rotate_secret(api.home)
    assert new != api.secret
    assert _start(api, customer_id="cust-9", signature=old)["verified"] is False
    assert _start(api, customer_id="cust-9", signature=identity.sign(new, "cust-9"))["verified"]


def test_cli_creates_rotates_and_signs(annae_home) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["widget", "sign", "cust-1"])
    assert r.exit_code == 1 and "annae widget secret" in r.output
    r = runner.invoke(app, ["widget", "secret"])
    assert r.exit_code == 0
    secret = r.output.strip()
    assert secret.startswith("ws_") and identity.load_secret(annae_home) == secret
    r = runner.invoke(app, ["widget", "secret"])
    assert r.exit_code == 1 and "--rotate" in r.output
    assert identity.load_secret(annae_home) == secret  # nothing lost
    r = runner.invoke(app, ["widget", "sign", "cust-1"])
    assert r.exit_code == 0 and r.output.strip() == identity.sign(secret, "cust-1")
    r = runner.invoke(app, ["widget", "sign", "bad\tid"])
    assert r.exit_code == 1 and "control" in r.output
    r = runner.invoke(app, ["widget", "secret", "--rotate"])
    assert r.exit_code == 0 and r.output.strip() != secret


def test_the_setting_overrides_the_file(annae_home) -> None:
    identity.rotate_secret(annae_home)
    assert identity.load_secret(annae_home, "ws_from_env") == "ws_from_env"
