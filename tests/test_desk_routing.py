"""Teams, presence and capacity, auto-assignment on hand-off, transfers, private notes and the
desk's bad input, through the real API on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from annae.store.db import get_engine, session_scope
from annae.store.tables.desk import Note, Team, TeamMember
from annae.store.tables.service import Conversation, Message


def _handoff(api, question: str | None = None, language: str | None = None) -> tuple[str, dict]:
    conv_id, headers = api.customer(**({"language": language} if language else {}))
    if question:
        api.say(conv_id, headers, question)
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/messages", json={"handoff": True}, headers=headers
    )
    assert r.status_code == 200, r.text
    return conv_id, headers


def _conv(api, conv_id: str, staff: dict) -> dict:
    r = api.client.get(f"/api/v1/conversations/{conv_id}", headers=staff)
    assert r.status_code == 200, r.text
    return r.json()


def _online(api, headers: dict, capacity: int = 5) -> dict:
    r = api.client.put(
        "/api/v1/desk/me", json={"presence": "online", "capacity": capacity}, headers=headers
    )
    assert r.status_code == 200, r.text
    return r.json()


def _team(api, admin: dict, **body) -> dict:
    r = api.client.post("/api/v1/desk/teams", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


def test_handoff_goes_to_the_team_of_the_entry_tags_and_an_online_member(api):
    admin, alice, bob = api.login("root"), api.login("alice"), api.login("bob")
    _team(api, admin, name="배송", members=["alice"], tags=["shipping"])
    _team(api, admin, name="결제", members=["bob"], tags=["payment"])
    # nobody online: the hand-off waits in the team's queue
    waiting, _ = _handoff(api, "How long does delivery take?")
    view = _conv(api, waiting, admin)
    assert (view["state"], view["team"], view["agent"]) == ("waiting", "배송", None)
    q = api.client.get("/api/v1/queue", headers=admin).json()["queue"]
    assert [(i["id"], i["team"]) for i in q] == [(waiting, "배송")]
    r = api.client.get("/api/v1/queue", params={"team": "배송"}, headers=admin)
    assert [i["id"] for i in r.json()["queue"]] == [waiting]
    r = api.client.get("/api/v1/queue", params={"team": "결제"}, headers=admin)
    assert r.json() == {"length": 0, "queue": []}
    assert (
        api.client.get("/api/v1/queue", params={"team": "nope"}, headers=admin).status_code == 404
    )
    # alice going online takes her team's waiting conversation
    assert _online(api, alice)["open"] == 1
    assert _conv(api, waiting, admin)["agent"] == "alice"
    _online(api, bob)
    paying, customer = _handoff(api, "Which payment methods do you accept?")
    view = _conv(api, paying, admin)
    assert (view["state"], view["team"], view["agent"]) == ("agent", "결제", "bob")
    # the customer sees the assignment, never which team or a note
    msgs = api.transcript(paying, customer)
    assert [m["text"] for m in msgs if m["sender"] == "system"] == ["assigned"]
    overview = {
        a["username"]: a
        for a in api.client.get("/api/v1/desk/agents", headers=bob).json()["agents"]
    }
    assert overview["bob"]["open"] == 1 and overview["bob"]["teams"] == ["결제"]


def test_least_busy_first_round_robin_capacity_and_queue(api):
    admin, alice, bob = api.login("root"), api.login("alice"), api.login("bob")
    _team(api, admin, name="general", members=["alice", "bob"])
    _online(api, alice, capacity=2)
    _online(api, bob, capacity=1)
    order = []
    for _ in range(4):
        conv_id, _ = _handoff(api)
        order.append((conv_id, _conv(api, conv_id, admin)["agent"]))
    # both free → alice (equal load, neither assigned before); then the less busy bob; then alice
    # (bob is at capacity); then nobody: it waits
    assert [a for _, a in order] == ["alice", "bob", "alice", None]
    # an away agent gets nothing
    r = api.client.put("/api/v1/desk/me", json={"presence": "away"}, headers=bob)
    assert r.status_code == 200
    # resolving frees alice's place: the waiting conversation goes to her
    r = api.client.post(f"/api/v1/conversations/{order[0][0]}/resolve", headers=alice)
    assert r.status_code == 200, r.text
    assert _conv(api, order[3][0], admin)["agent"] == "alice"
    # every conversation was assigned exactly once
    with session_scope(get_engine(api.db_url)) as s:
        counts = dict(
            s.execute(
                select(Message.conversation_id, func.count())
                .where(Message.text == "assigned", Message.sender == "system")
                .group_by(Message.conversation_id)
            )
            .tuples()
            .all()
        )
    assert counts == {c: 1 for c, _ in order}


def test_transfer_to_agent_and_team_with_a_private_note(api):
    admin, alice, bob = api.login("root"), api.login("alice"), api.login("bob")
    _team(api, admin, name="결제", members=["bob"], tags=["payment"])
    _team(api, admin, name="VIP", members=["root"])
    _online(api, alice)
    conv_id, customer = _handoff(api)
    r = api.client.post(f"/api/v1/conversations/{conv_id}/assign", headers=alice)
    assert r.status_code == 200
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/transfer",
        json={"agent": "bob", "note": "환불 건이에요 @bob 확인 부탁"},
        headers=alice,
    )
    assert r.status_code == 200, r.text
    assert r.json()["agent"] == "bob" and r.json()["state"] == "agent"
    view = _conv(api, conv_id, bob)
    assert [n["text"] for n in view["notes"]] == ["→ bob: 환불 건이에요 @bob 확인 부탁"]
    assert view["notes"][0]["author"] == "alice" and view["notes"][0]["mentions"] == ["bob"]
    # to a team: it waits in that team's queue until a member is online, then goes to them
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/transfer", json={"team": "VIP"}, headers=bob
    )
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["agent"]) == ("waiting", None)
    assert _conv(api, conv_id, admin)["team"] == "VIP"
    _online(api, admin)
    assert _conv(api, conv_id, admin)["agent"] == "root"
    # bad transfers change nothing
    for body, status in (
        ({"agent": "bob", "team": "VIP"}, 400),
        ({}, 400),
        ({"team": "nope"}, 404),
        ({"agent": "zed"}, 404),
        ({"agent": "root", "note": "x"}, 409),
    ):
        r = api.client.post(f"/api/v1/conversations/{conv_id}/transfer", json=body, headers=admin)
        assert r.status_code == status, (body, r.text)
    assert len(_conv(api, conv_id, admin)["notes"]) == 1
    # the customer's transcript has no note text
    assert all("환불 건" not in m["text"] for m in api.transcript(conv_id, customer))


def test_private_notes_and_mentions_never_reach_the_customer(api):
    alice, bob = api.login("alice"), api.login("bob")
    conv_id, customer = _handoff(api)
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/notes",
        json={"text": "VIP customer, be kind. @bob please look."},
        headers=alice,
    )
    assert r.status_code == 201, r.text
    assert r.json()["mentions"] == ["bob"]
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/notes", json={"text": "ask @zed"}, headers=alice
    )
    assert r.status_code == 400 and "@zed" in r.json()["error"]["message"]
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/notes", json={"text": "  "}, headers=alice
    )
    assert r.status_code == 400
    notes = api.client.get(f"/api/v1/conversations/{conv_id}/notes", headers=bob).json()["notes"]
    assert [n["text"] for n in notes] == ["VIP customer, be kind. @bob please look."]
    mine = api.client.get("/api/v1/desk/mentions", headers=bob).json()["mentions"]
    assert [m["conversation_id"] for m in mine] == [conv_id]
    assert api.client.get("/api/v1/desk/mentions", headers=alice).json()["mentions"] == []
    # the customer: transcript, conversation view; notes need staff
    for path in (f"/api/v1/conversations/{conv_id}/messages", f"/api/v1/conversations/{conv_id}"):
        r = api.client.get(path, headers=customer)
        assert r.status_code == 200 and "VIP customer" not in r.text
    r = api.client.get(f"/api/v1/conversations/{conv_id}/notes", headers=customer)
    assert r.status_code == 401
    with session_scope(get_engine(api.db_url)) as s:
        assert s.scalar(select(func.count()).select_from(Note)) == 1
        assert not s.scalar(
            select(func.count()).select_from(Message).where(Message.text.like("%VIP customer%"))
        )


def test_note_events_go_to_agents_only(api):
    from annae.agents import notes
    from annae.agents.users import Identity

    conv_id, _ = _handoff(api)
    with session_scope(get_engine(api.db_url)) as s:
        alice_id = s.scalar(select(TeamMember.user_id).limit(1))  # no teams: None
        assert alice_id is None
        from annae.store.tables.service import User

        uid = s.scalar(select(User.id).where(User.username == "alice"))
        _, events = notes.add_note(s, conv_id, Identity(uid, "alice", "agent"), "hi @bob")
    assert [c for c, _ in events] == ["agents", "agents"]
    assert [e["event"] for _, e in events] == ["note", "mention"]


def test_desk_bad_input_is_refused_and_changes_nothing(api):
    admin, alice = api.login("root"), api.login("alice")
    ok = {"name": "배송", "members": ["alice"], "tags": ["shipping"]}
    for body, status, words in (
        ({**ok, "members": []}, 400, "at least one member"),
        ({**ok, "members": ["zed"]}, 400, "zed"),
        ({**ok, "weekly": {"mon": [["09:00", "13:00"], ["12:00", "18:00"]]}}, 400, "overlapping"),
        ({**ok, "weekly": {"mon": [["18:00", "09:00"]]}}, 400, "ends before"),
        ({**ok, "weekly": {"funday": [["09:00", "18:00"]]}}, 400, "unknown day"),
        ({**ok, "timezone": "Mars/Olympus"}, 400, "time zone"),
        ({**ok, "holidays": ["2026-13-01"]}, 400, "not a YYYY-MM-DD"),
    ):
        r = api.client.post("/api/v1/desk/teams", json=body, headers=admin)
        assert r.status_code == status, (body, r.text)
        assert words in r.json()["error"]["message"]
    r = api.client.post("/api/v1/desk/teams", json=ok, headers=alice)
    assert r.status_code == 403
    with session_scope(get_engine(api.db_url)) as s:
        assert s.scalar(select(func.count()).select_from(Team)) == 0
    _team(api, admin, **ok)
    assert api.client.post("/api/v1/desk/teams", json=ok, headers=admin).status_code == 409
    # an update with one bad value writes none of the others
    r = api.client.patch(
        "/api/v1/desk/teams/배송",
        json={"tags": ["x"], "weekly": {"tue": [["09:00", "12:00"], ["11:00", "13:00"]]}},
        headers=admin,
    )
    assert r.status_code == 400
    r = api.client.patch("/api/v1/desk/teams/배송", json={"members": []}, headers=admin)
    assert r.status_code == 400
    team = api.client.get("/api/v1/desk/teams", headers=admin).json()["teams"][0]
    assert team["tags"] == ["shipping"] and team["weekly"] == {} and team["members"] == ["alice"]
    # capacity 0 (or wrong types) is refused; presence unchanged
    for body in ({"capacity": 0}, {"capacity": 101}, {"presence": "busy"}, {"capacity": "5"}):
        r = api.client.put("/api/v1/desk/me", json={"presence": "online", **body}, headers=alice)
        assert r.status_code in (400, 422), (body, r.text)
    assert api.client.get("/api/v1/desk/me", headers=alice).json()["presence"] == "offline"
    # a team with a waiting conversation cannot be deleted
    conv_id, _ = _handoff(api, "How long does delivery take?")
    r = api.client.delete("/api/v1/desk/teams/배송", headers=admin)
    assert r.status_code == 409 and "1 open conversation" in r.json()["error"]["message"]
    r = api.client.post(f"/api/v1/conversations/{conv_id}/resolve", headers=alice)
    assert r.status_code == 200
    assert api.client.delete("/api/v1/desk/teams/배송", headers=admin).status_code == 200
    assert api.client.delete("/api/v1/desk/teams/배송", headers=admin).status_code == 404
    with session_scope(get_engine(api.db_url)) as s:
        assert s.get(Conversation, conv_id).state == "resolved"


def test_websocket_handoff_replies_first_then_the_assignment_follows(api):
    """The reply to a hand-off does not wait for the agent pick: it says ``waiting``; the
    assignment runs right after it is sent and its state event reaches the customer's socket."""
    admin, alice = api.login("root"), api.login("alice")
    _team(api, admin, name="general", members=["alice"])
    _online(api, alice)
    conv_id, headers = api.customer()
    token = headers["Authorization"].split()[1]
    with api.client.websocket_connect(f"/api/v1/conversations/{conv_id}/ws?token={token}") as ws:
        assert ws.receive_json()["event"] == "hello"
        ws.send_json({"handoff": True})
        frames = [ws.receive_json()]
        while not any(f.get("event") == "state" and f.get("state") == "agent" for f in frames):
            frames.append(ws.receive_json())
    reply = next(f["reply"] for f in frames if f.get("event") == "reply")
    assert reply["type"] == "handoff" and reply["state"] == "waiting"
    kinds = [(f.get("event"), f.get("state")) for f in frames]
    assert kinds.index(("reply", None)) < kinds.index(("state", "agent"))
    assert (_conv(api, conv_id, admin)["state"], _conv(api, conv_id, admin)["agent"]) == (
        "agent",
        "alice",
    )


def test_a_failed_assignment_leaves_the_conversation_queued(api, monkeypatch, caplog):
    from annae.agents import routing

    def broken(session, conv_id):
        raise RuntimeError("database went away")

    admin, alice = api.login("root"), api.login("alice")
    _team(api, admin, name="general", members=["alice"])
    _online(api, alice)
    monkeypatch.setattr(routing, "assign_after_turn", broken)
    conv_id, _ = _handoff(api)
    view = _conv(api, conv_id, admin)
    assert (view["state"], view["team"], view["agent"]) == ("waiting", "general", None)
    assert "stays queued" in caplog.text
    monkeypatch.undo()
    # the next free place takes it: alice going offline and online again refills hers
    api.client.put("/api/v1/desk/me", json={"presence": "offline"}, headers=alice)
    _online(api, alice)
    assert _conv(api, conv_id, admin)["agent"] == "alice"
