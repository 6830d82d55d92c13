"""The learning admin API and CLI: clusters → entry, gated retrain, models, rollback, `annae learn`."""

from __future__ import annotations

import json
from datetime import timedelta

import typer
from typer.testing import CliRunner

from annae.learning import cli as learning_cli
from annae.learning import clusters, retrain
from annae.learning.feedback import Unanswered
from annae.nlu.registry import ModelRegistry
from annae.store.db import utcnow

SPONSORING = [
    "Do you sponsor local football teams?",
    "Can your company sponsor our football team?",
    "do you sponsor football clubs",
    "Is football team sponsorship possible?",
]
PETS = [
    "Can I bring my dog into the store?",
    "are dogs allowed in the shop",
    "Can my dog come in the store?",
]


def test_clusters_group_similar_questions_with_trend():
    now = utcnow()
    texts = SPONSORING + PETS
    items = [
        Unanswered(i + 1, f"c{i}", t, "en", now - timedelta(days=10 if i == 0 else 1), "handoff")
        for i, t in enumerate(texts)
    ]
    found = clusters.cluster(items, encoder="none", now=now)
    shipping, pets = {1, 2, 3, 4}, {5, 6, 7}
    assert all(set(c.message_ids) <= shipping or set(c.message_ids) <= pets for c in found)
    biggest = found[0]
    assert set(biggest.message_ids) <= shipping and biggest.size >= 3
    assert biggest.title in SPONSORING and len(biggest.representatives) <= 3
    assert biggest.last_week == (1 if 1 in biggest.message_ids else 0)
    assert biggest.this_week == biggest.size - biggest.last_week
    assert any(set(c.message_ids) <= pets and c.size >= 2 for c in found)
    assert clusters.cluster([], encoder="none") == []
    assert clusters.purity([0, 0, 1, 1], ["a", "a", "a", "b"]) == 0.75


def test_clusters_with_the_serving_models_onnx_encoder():
    from annae.nlu.encoder import Encoder
    from annae.nlu.onnx import OnnxEncoder

    onnx = Encoder("bundled").export()
    assert isinstance(onnx, OnnxEncoder)
    now = utcnow()
    items = [
        Unanswered(i + 1, f"c{i}", t, "en", now, "handoff") for i, t in enumerate(SPONSORING + PETS)
    ]
    by_object = clusters.cluster(items, encoder=onnx, now=now)
    by_name = clusters.cluster(items, encoder="bundled", now=now)
    assert [sorted(c.message_ids) for c in by_object] == [sorted(c.message_ids) for c in by_name]
    groups = {frozenset(c.message_ids) for c in by_object if c.size > 1}
    assert frozenset({1, 2, 3, 4}) in groups
    assert any(g <= {5, 6, 7} and len(g) >= 2 for g in groups)


def _unanswered_traffic(api, texts):
    ids = []
    for text in texts:
        conv_id, headers = api.customer()
        reply = api.say(conv_id, headers, text)
        assert reply["type"] == "handoff", (text, reply)
        ids.append(conv_id)
    return ids


def test_cluster_to_entry_in_one_call(api):
    _unanswered_traffic(api, SPONSORING)
    admin = api.login("root")
    found = api.client.get("/api/v1/learning/clusters", headers=admin).json()["clusters"]
    top = found[0]
    assert top["size"] >= 3 and top["trend"] == "rising" and top["this_week"] == top["size"]
    r = api.client.post(
        "/api/v1/learning/clusters/entry",
        json={
            "message_ids": top["message_ids"],
            "question": top["title"],
            "answer": "We sponsor two youth teams a year; write to us.",
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert r.json()["examples_added"] == top["size"] - 1  # the title question is the entry's own
    assert r.json()["labelled"] == top["size"]
    after = api.client.get("/api/v1/learning/clusters", headers=admin).json()["clusters"]
    assert not any(set(c["message_ids"]) & set(top["message_ids"]) for c in after)
    again = api.client.post(
        "/api/v1/learning/clusters/entry",
        json={"message_ids": [1], "question": "x", "answer": "y", "key": r.json()["key"]},
        headers=admin,
    )
    assert again.status_code == 409
    bad = api.client.post(
        "/api/v1/learning/clusters/entry",
        json={"message_ids": [999999], "question": "Pets?", "answer": "No."},
        headers=admin,
    )
    assert bad.status_code == 422
    entries = api.client.get("/api/v1/admin/entries?q=Pets", headers=admin).json()["entries"]
    assert entries == [], "a failed request creates no entry"
    assert (
        api.client.get("/api/v1/learning/clusters", headers=api.login("alice")).status_code == 403
    )


def test_retrain_models_and_rollback_api(api):
    admin = api.login("root")
    reg = ModelRegistry(api.home / "models")
    first = reg.live_version()
    with retrain.file_lock(reg.root / ".retrain.lock"):
        busy = api.client.post("/api/v1/learning/retrain?wait=true", headers=admin)
        assert busy.status_code == 409 and "already running" in busy.json()["error"]["message"]
    r = api.client.post("/api/v1/learning/retrain?wait=true", headers=admin)
    assert r.status_code == 202, r.text
    result = r.json()["result"]
    assert result["live"] == first and result["mode"] == "same_slice"
    # nothing changed in the KB: the two models tie, and the promoted one keeps every example
    assert result["promoted"] and result["after"]["n_examples"] == result["before"]["n_examples"]
    listed = api.client.get("/api/v1/learning/models", headers=admin).json()
    assert [m["version"] for m in listed["models"]][0] == result["challenger"]
    assert listed["models"][0]["gate"]["challenger"] == result["challenger"]
    if result["promoted"]:
        assert listed["live"] == result["challenger"]
    r = api.client.post(f"/api/v1/learning/models/{first}/rollback", headers=admin)
    assert r.status_code == 200 and r.json()["live"] == first
    assert reg.live_version() == first
    assert api.client.get("/api/v1/admin/model", headers=admin).json()["version"] == first
    assert api.client.post("/api/v1/learning/models/v99/rollback", headers=admin).status_code == 404
    stale = api.client.post(
        f"/api/v1/learning/models/{result['challenger']}/promote",
        json={"expected_live": "v42"},
        headers=admin,
    )
    assert stale.status_code == 409 and reg.live_version() == first
    assert (
        api.client.post(
            f"/api/v1/learning/models/{first}/rollback", headers=api.login("alice")
        ).status_code
        == 403
    )


def _counting_encoder(calls: list[int]):
    """The bundled encoder on ONNX Runtime, recording the size of each ``encode`` call."""
    from annae.nlu.encoder import Encoder
    from annae.nlu.onnx import OnnxEncoder

    class Counting(OnnxEncoder):
        def encode(self, texts, *args, **kwargs):
            calls.append(len(texts))
            return super().encode(texts, *args, **kwargs)

    return Counting(Encoder("bundled").export().exported)


def test_clusters_page_uses_the_live_models_encoder(api, monkeypatch):
    calls: list[int] = []
    _unanswered_traffic(api, SPONSORING[:3])
    # the live model here is lexical: give it an encoder only for the clusters call
    live = api.client.app.state.services.holder.get()
    monkeypatch.setattr(live, "encoder", _counting_encoder(calls))
    admin = api.login("root")
    found = api.client.get("/api/v1/learning/clusters", headers=admin).json()["clusters"]
    assert calls and calls[-1] == 3
    assert found[0]["size"] == 3


def test_cli_learn_clusters_uses_the_live_models_encoder(api, monkeypatch):
    """`annae learn clusters` embeds with the live model's encoders, as the KB page does."""
    calls: list[int] = []
    counting = _counting_encoder(calls)
    real = ModelRegistry.load_live

    def load_live(self, **kwargs):  # the live model here is lexical: give it an encoder
        engine = real(self, **kwargs)
        engine.encoder = counting
        return engine

    monkeypatch.setattr(ModelRegistry, "load_live", load_live)
    _unanswered_traffic(api, SPONSORING[:3])
    app = typer.Typer()
    learning_cli.register(app)
    r = CliRunner().invoke(app, ["learn", "clusters", "--json"])
    assert r.exit_code == 0, r.output
    assert calls and calls[-1] == 3
    assert json.loads(r.output)[0]["size"] == 3


def test_cli_learn_clusters_models_and_rollback(api):
    _unanswered_traffic(api, SPONSORING[:2])
    app = typer.Typer()
    learning_cli.register(app)
    runner = CliRunner()
    r = runner.invoke(app, ["learn", "clusters"])
    assert r.exit_code == 0, r.output
    assert "football" in r.output and "2 unanswered questions" in r.output
    r = runner.invoke(app, ["learn", "clusters", "--from", "yesterday"])
    assert r.exit_code == 1 and "bad date" in r.output
    r = runner.invoke(app, ["learn", "models"])
    assert r.exit_code == 0 and "live" in r.output
    r = runner.invoke(app, ["rollback", "v77"])
    assert r.exit_code == 1 and "no model v77" in r.output


def test_console_asks_the_label_question_and_agents_can_search_entries(api):
    agent = api.login("alice")
    rows = api.client.get("/api/v1/learning/entries?q=deliver", headers=agent).json()["entries"]
    assert rows and all("deliver" in f"{r['key']} {r['question']}".lower() for r in rows)
    assert api.client.get("/api/v1/learning/entries").status_code == 401
    page = api.client.get("/console", headers=agent)
    assert page.status_code == 200 and "/static/label.js" in page.text
    script = api.client.get("/static/label.js")
    assert script.status_code == 200 and "/label" in script.text and "btn-resolve" in script.text


def _labelled_traffic(db_url: str, version: str, n: int = 40) -> None:
    """``n`` rated, helpful answers at 0.99 and ``n`` hand-offs at 0.5 whose best guess the
    agent confirmed, all decided by ``version``: traffic that supports a lower threshold."""
    from annae.store.db import get_engine, session_scope
    from annae.store.tables.learning import AnswerRating, ConversationLabel
    from annae.store.tables.service import Conversation, Message

    def decision(kind: str, conf: float) -> dict:
        return {
            "type": kind,
            "confidence": conf,
            "model_version": version,
            "candidates": [{"entry_id": 1, "confidence": conf}],
        }

    with session_scope(get_engine(db_url)) as s:
        for i in range(n):
            for kind, conf in (("answer", 0.99), ("handoff", 0.5)):
                cid = f"op-{kind}-{i}"
                s.add(Conversation(id=cid, token_hash=(cid * 8)[:64]))
                s.flush()
                q = Message(
                    conversation_id=cid,
                    sender="customer",
                    type="text",
                    text="q",
                    decision=decision(kind, conf),
                )
                s.add(q)
                s.flush()
                if kind == "answer":
                    a = Message(
                        conversation_id=cid,
                        sender="bot",
                        type="answer",
                        text="a",
                        entry_id=1,
                        confidence=conf,
                    )
                    s.add(a)
                    s.flush()
                    s.add(
                        AnswerRating(conversation_id=cid, message_id=a.id, entry_id=1, helpful=True)
                    )
                else:
                    s.add(
                        ConversationLabel(
                            conversation_id=cid,
                            message_id=q.id,
                            kind="entry",
                            entry_id=1,
                            bot_entry_id=1,
                            agent="alice",
                        )
                    )


def test_operating_point_api_curve_switch_traffic_and_rollback(api):
    from annae.privacy import audit
    from annae.store.db import get_engine, session_scope

    admin = api.login("root")
    reg = ModelRegistry(api.home / "models")
    first = reg.live_version()
    assert (
        api.client.get("/api/v1/learning/operating-point", headers=api.login("alice")).status_code
        == 403
    )
    op = api.client.get("/api/v1/learning/operating-point", headers=admin).json()
    assert op["version"] == first and [p["target"] for p in op["points"]] == [0.9, 0.95, 0.98]
    assert op["traffic"]["n_labelled"] == 0 and op["traffic"]["observed_precision_live"] is None
    assert (op["oos_share_assumed"], op["oos_share_source"]) == (0.2, "default")
    # bad requests change nothing
    for body, status, words in (
        ({}, 422, "either target or from_traffic"),
        ({"target": 0.42}, 409, "no operating point for 0.42"),
        ({"target": 2}, 422, ""),
        ({"from_traffic": True}, 409, "at least 30"),
    ):
        r = api.client.post("/api/v1/learning/operating-point", json=body, headers=admin)
        assert r.status_code == status and words in r.text, (body, r.text)
    assert reg.live_version() == first
    # pick a point from the curve: a new live version with that point's threshold
    point = next(p for p in op["points"] if p["target"] == 0.9)
    assert point["reached_target"]
    r = api.client.post("/api/v1/learning/operating-point", json={"target": 0.9}, headers=admin)
    assert r.status_code == 200, r.text
    second = r.json()["version"]
    assert r.json()["previous"] == first and reg.live_version() == second
    assert api.client.get("/api/v1/admin/model", headers=admin).json()["version"] == second
    op = api.client.get("/api/v1/learning/operating-point", headers=admin).json()
    assert [p["target"] for p in op["points"] if p["live"]] == [0.9]
    assert abs(op["threshold"] - point["threshold"]) < 1e-4
    with session_scope(get_engine(api.db_url)) as s:
        events = audit.query(s, action="model.operating_point")
        assert [(e.target, e.actor) for e in events] == [(second, "root")]
    # labelled traffic of the live model: observed precision, and the threshold it supports
    _labelled_traffic(api.db_url, second)
    op = api.client.get("/api/v1/learning/operating-point", headers=admin).json()
    assert op["traffic"]["n_labelled"] == 80 and op["traffic"]["observed_precision_live"] == 1.0
    assert op["traffic"]["proposed_threshold"] == 0.5
    page = api.client.get("/console/analytics", headers=admin).text
    assert 'id="op-observed"' in page and "100.0 %" in page and "0.500" in page
    r = api.client.post(
        "/api/v1/learning/operating-point", json={"from_traffic": True}, headers=admin
    )
    assert r.status_code == 200, r.text
    third = r.json()["version"]
    assert r.json()["threshold"] == 0.5 and reg.live_version() == third
    # reversible: rolling back restores the curve's point
    r = api.client.post(f"/api/v1/learning/models/{second}/rollback", headers=admin)
    assert r.status_code == 200 and reg.live_version() == second


def test_one_retrain_job_for_the_kb_page_the_learning_api_and_the_erase_guard(api):
    """The KB page's Retrain and POST /learning/retrain are one job: each refuses while the
    other runs, both report it, and erasure waits for it (it retrains too)."""
    import time

    admin = api.login("root")
    r = api.client.post("/api/v1/learning/retrain", headers=admin)
    assert r.status_code == 202 and r.json()["status"] == "running"
    assert api.client.post("/api/v1/admin/retrain", headers=admin).status_code == 409
    assert api.client.post("/api/v1/learning/retrain", headers=admin).status_code == 409
    erase = api.client.delete("/api/v1/admin/privacy/customers/K1", headers=admin)
    assert erase.status_code == 409 and "retrain is running" in erase.text
    deadline = time.monotonic() + 300
    while api.client.get("/api/v1/admin/retrain", headers=admin).json()["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    page, learning = (
        api.client.get(path, headers=admin).json()
        for path in ("/api/v1/admin/retrain", "/api/v1/learning/retrain")
    )
    assert page == learning and page["status"] in ("done", "rejected")
    assert page["result"]["challenger"] == page["version"]
