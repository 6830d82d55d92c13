"""Consent per customer and purpose: grant, withdraw, latest-wins, history, the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from annae.privacy import consent
from annae.privacy.cli import app
from annae.store.db import session_scope
from annae.store.tables.privacy import AuditEvent, ConsentEvent


def test_no_event_means_no_consent(engine) -> None:
    with session_scope(engine) as s:
        assert consent.has_consent(s, "nobody", "training") is False
        assert consent.status(s, "nobody") == {
            "service": False,
            "training": False,
            "marketing": False,
        }
        assert consent.history(s, "nobody") == []


def test_grant_then_withdraw_takes_effect_at_once(engine) -> None:
    with session_scope(engine) as s:
        consent.grant(s, "cust-1", "training", text_version="v2026-11", source="widget")
        consent.grant(s, "cust-1", "service", text_version="v2026-11", source="widget")
    with session_scope(engine) as s:
        assert consent.has_consent(s, "cust-1", "training")
        assert not consent.has_consent(s, "cust-1", "marketing")
        assert not consent.has_consent(s, "cust-2", "training")
    with session_scope(engine) as s:
        consent.withdraw(s, "cust-1", "training", source="email")
        # in the same transaction, right after the withdrawal
        assert consent.has_consent(s, "cust-1", "training") is False
    with session_scope(engine) as s:
        assert consent.status(s, "cust-1") == {
            "service": True,
            "training": False,
            "marketing": False,
        }
        hist = consent.history(s, "cust-1", "training")
        assert [e.granted for e in hist] == [True, False]
        assert hist[0].text_version == "v2026-11" and hist[0].source == "widget"
        assert hist[1].source == "email"


def test_latest_event_by_time_wins_even_within_one_second(engine) -> None:
    t0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    with session_scope(engine) as s:
        consent.grant(s, "c", "marketing", text_version="m1", at=t0)
        consent.withdraw(s, "c", "marketing", at=t0 + timedelta(days=30))
        consent.grant(s, "c", "marketing", text_version="m2", at=t0 + timedelta(days=60))
        # an older event recorded late does not override newer ones
        consent.withdraw(s, "c", "marketing", at=t0 + timedelta(days=10))
        assert consent.has_consent(s, "c", "marketing")
        consent.withdraw(s, "c", "marketing")  # now, same clock second as nothing else
        consent.grant(s, "d", "service", text_version="s1", at=t0)
        consent.withdraw(s, "d", "service", at=t0)  # same instant: insertion order decides
    with session_scope(engine) as s:
        assert not consent.has_consent(s, "c", "marketing")
        assert not consent.has_consent(s, "d", "service")
        assert [e.text_version for e in consent.history(s, "c")][:3] == ["m1", None, None]
        assert consent.history(s, "c")[0].at.replace(tzinfo=UTC) == t0


def test_consenting_filters_customers(engine) -> None:
    with session_scope(engine) as s:
        for cid in ("a", "b", "c"):
            consent.grant(s, cid, "training", text_version="t1")
        consent.withdraw(s, "b", "training")
        consent.grant(s, "d", "marketing", text_version="m1")
    with session_scope(engine) as s:
        assert consent.consenting(s, "training") == {"a", "c"}
        assert consent.consenting(s, "training", ["a", "b", "x"]) == {"a"}
        assert consent.consenting(s, "training", []) == set()
        assert consent.consenting(s, "marketing") == {"d"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"customer_id": "", "purpose": "training", "text_version": "v"}, "customer_id"),
        ({"customer_id": "x" * 201, "purpose": "training", "text_version": "v"}, "longer than 200"),
        ({"customer_id": "c", "purpose": "ads", "text_version": "v"}, "unknown purpose"),
        ({"customer_id": "c", "purpose": "training", "text_version": ""}, "text_version"),
        ({"customer_id": 42, "purpose": "training", "text_version": "v"}, "customer_id"),
        ({"customer_id": "c", "purpose": "training", "text_version": "v",
          "at": datetime.now(UTC) + timedelta(days=1)}, "future"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_and_nothing_written(engine, kwargs, message) -> None:
    with session_scope(engine) as s:
        consent.grant(s, "keep", "service", text_version="v1")
    with pytest.raises(consent.ConsentError, match=message):
        with session_scope(engine) as s:
            consent.grant(s, "other", "service", text_version="v1")
            consent.grant(s, **kwargs)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(ConsentEvent)) == 1
        assert consent.has_consent(s, "keep", "service")


def test_erase_removes_only_that_customer(engine) -> None:
    with session_scope(engine) as s:
        consent.grant(s, "gone", "training", text_version="v")
        consent.withdraw(s, "gone", "training")
        consent.grant(s, "stays", "training", text_version="v")
    with session_scope(engine) as s:
        assert consent.erase(s, "gone") == 2
        assert consent.erase(s, "gone") == 0
    with session_scope(engine) as s:
        assert consent.history(s, "gone") == []
        assert consent.has_consent(s, "stays", "training")
        assert consent.to_dict(consent.history(s, "stays")[0])["at"].endswith("+00:00")


def test_cli_consent_grant_withdraw_and_audit(annae_home) -> None:
    runner = CliRunner()
    out = runner.invoke(
        app,
        [
            "consent",
            "cust-9",
            "--grant",
            "training",
            "--grant",
            "service",
            "--text-version",
            "p-2026-11",
        ],
    )
    assert out.exit_code == 0, out.output
    assert "training yes" in out.output and "marketing no" in out.output
    out = runner.invoke(app, ["consent", "cust-9", "--withdraw", "training", "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output)
    assert payload["consent"] == {"service": True, "training": False, "marketing": False}
    assert [(e["purpose"], e["granted"]) for e in payload["history"]][-1] == ("training", False)
    out = runner.invoke(app, ["consent", "cust-9", "--grant", "training"])
    assert out.exit_code != 0 and "--text-version" in out.output
    out = runner.invoke(app, ["consent", "cust-9", "--grant", "ads", "--text-version", "v"])
    assert out.exit_code == 1 and "unknown purpose" in out.output
    out = runner.invoke(app, ["audit", "--json", "--action", "consent."])
    lines = [json.loads(line) for line in out.output.splitlines()]
    assert [e["action"] for e in lines] == ["consent.withdraw", "consent.grant", "consent.grant"]
    from annae.privacy.audit import customer_ref

    ref = customer_ref("cust-9")
    assert ref.startswith("customer:") and "cust-9" not in ref
    assert all(e["target"] == ref for e in lines)
    assert customer_ref("cust-9") == ref != customer_ref("cust-10")

    from annae.settings import get_settings
    from annae.store.db import get_engine

    with session_scope(get_engine(get_settings().database)) as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == 3
