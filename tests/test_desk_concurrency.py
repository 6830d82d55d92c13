"""Two processes routing the same queue on PostgreSQL never assign a conversation twice nor
fill an agent beyond their capacity (row locks with SKIP LOCKED and the conditional UPDATE)."""

from __future__ import annotations

import multiprocessing as mp
import random

import pytest
from conftest import _pg_database
from sqlalchemy import func, select

from annae.store.db import get_engine, init_db, session_scope

pytestmark = pytest.mark.postgres

AGENTS, CAPACITY, CONVERSATIONS = 4, 8, 40


def _worker(url: str, seed: int, barrier, out) -> None:
    """Race the other process: auto-assign every waiting conversation, fill every agent."""
    from annae.agents import routing
    from annae.dialogue import conversations as convs
    from annae.store.tables.desk import AgentStatus, Routing
    from annae.store.tables.service import Conversation

    engine = get_engine(url)
    with session_scope(engine) as s:
        ids = list(s.scalars(select(Conversation.id).where(Conversation.state == "waiting")))
        agents = list(s.scalars(select(AgentStatus.user_id)))
        team_id = s.scalar(select(Routing.team_id).limit(1))
    rng = random.Random(seed)
    rng.shuffle(ids)
    errors, assigned = [], 0
    barrier.wait()
    for i, conv_id in enumerate(ids):
        try:
            with session_scope(engine) as s:
                conv = convs.get(s, conv_id)
                assigned += bool(routing.auto_assign(s, conv, team_id))
            if i % 5 == 0:
                with session_scope(engine) as s:
                    assigned += len(routing.fill(s, rng.choice(agents))) // 4
        except Exception as exc:  # a deadlock or a constraint error is a failure of the test
            errors.append(repr(exc))
    engine.dispose()
    out.put((seed, assigned, errors))


def test_two_processes_never_assign_twice():
    from annae.agents import routing, teams
    from annae.agents.users import add_user
    from annae.dialogue import conversations as convs
    from annae.store.tables.desk import AgentStatus
    from annae.store.tables.service import Conversation, Message

    url, drop = _pg_database()
    try:
        engine = init_db(get_engine(url))
        with session_scope(engine) as s:
            names = [f"agent{i}" for i in range(AGENTS)]
            for name in names:
                add_user(s, name, "agent", "correct-horse-battery")
            team = teams.create_team(s, "결제", names)
            for uid in s.scalars(select(AgentStatus.user_id)):
                teams.set_status(s, uid, presence="online", capacity=CAPACITY)
            for _ in range(CONVERSATIONS):
                conv, _ = convs.create(s)
                convs.transition(s, conv, "waiting", ("bot",), handoff_reason="customer_request")
                routing.set_team(s, conv.id, team.id)
        engine.dispose()
        ctx = mp.get_context("spawn")
        barrier, out = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_worker, args=(url, seed, barrier, out)) for seed in (1, 2)]
        for p in procs:
            p.start()
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(30)
        assert [r[2] for r in results] == [[], []]
        with session_scope(get_engine(url)) as s:
            per_conv = dict(
                s.execute(
                    select(Message.conversation_id, func.count())
                    .where(Message.sender == "system", Message.text == "assigned")
                    .group_by(Message.conversation_id)
                )
                .tuples()
                .all()
            )
            per_agent = dict(
                s.execute(
                    select(Conversation.assigned_agent_id, func.count())
                    .where(Conversation.state == "agent")
                    .group_by(Conversation.assigned_agent_id)
                )
                .tuples()
                .all()
            )
            waiting = s.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.state == "waiting")
            )
        assert set(per_conv.values()) == {1}  # nobody assigned twice
        assert len(per_conv) == AGENTS * CAPACITY  # every place used …
        assert sorted(per_agent.values()) == [CAPACITY] * AGENTS  # … and none overfilled
        assert waiting == CONVERSATIONS - AGENTS * CAPACITY  # the rest still queued, none lost
        assert all(r[1] > 0 for r in results)  # both processes really assigned some
    finally:
        drop()
