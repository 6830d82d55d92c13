"""Routing hand-offs to teams and agents: the team by the entry's tags and language, then
auto-assignment (online members under capacity, least busy first, round-robin among equals),
filling an agent's free capacity from the queue, and transfers.

No conversation is assigned twice: the conversation moves ``waiting → agent`` in one conditional
UPDATE (:func:`annae.dialogue.conversations.transition`), and an agent's row is locked
(``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL) while their capacity is checked and used, so
two processes neither double-assign nor overfill an agent.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from annae.agents import hours, notes, teams
from annae.agents.users import Identity
from annae.dialogue import conversations as convs
from annae.dialogue import desk_queries
from annae.dialogue.conversations import Conflict, Event, Invalid, NotFound
from annae.kb import entries
from annae.store.db import utcnow
from annae.store.tables.desk import AgentStatus, Routing, Team, TeamMember
from annae.store.tables.service import User

if TYPE_CHECKING:  # conversations are dialogue's: read and changed through its functions
    from annae.store.tables.service import Conversation, Message


def state_events(
    session: Session, conv: Conversation, extra: Sequence[Message] = ()
) -> list[Event]:
    """A state change for the customer's and the agents' channels, plus ``extra`` messages."""
    st = convs.state_event(session, conv)
    return [
        (f"conv:{conv.id}", st),
        ("agents", {**st, "queue_length": convs.queue_length(session)}),
        *convs.message_events(conv, extra, to_agents=True),
    ]


# --- which team ----------------------------------------------------------------------------


def _entry_ids(session: Session, conv: Conversation, decision) -> list[int]:
    """The bot's best candidates, best first; without a decision, the entries last answered."""
    ids: list[int] = []
    if decision is not None:
        if getattr(decision, "entry_id", None):
            ids.append(decision.entry_id)
        ids += [c.entry_id for c in getattr(decision, "candidates", []) or [] if c.entry_id]
    if not ids:
        ids = desk_queries.last_entry_ids(session, conv.id)
    return list(dict.fromkeys(ids))


def choose_team(session: Session, conv: Conversation, decision=None) -> Team | None:
    """The team for a hand-off: among teams serving the conversation's language, the first whose
    tags meet the tags of the bot's best candidate (then the next candidate …); else a team
    without tags (a general team); else None (the shared queue)."""
    all_teams = teams.list_teams(session)
    if not all_teams:
        return None
    lang = conv.language or getattr(decision, "language", None)
    fitting = [t for t in all_teams if not t.languages or lang is None or lang in t.languages]
    ids = _entry_ids(session, conv, decision)
    if ids:
        tags = entries.tags_of(session, ids)
        for eid in ids:
            entry_tags = set(tags.get(eid) or ())
            for team in fitting:
                if entry_tags & set(team.tags or ()):
                    return team
    general = [t for t in fitting if not t.tags]
    return general[0] if general else None


def team_id_of(session: Session, conv_id: str) -> int | None:
    return session.scalar(select(Routing.team_id).where(Routing.conversation_id == conv_id))


def team_name_of(session: Session, conv_id: str) -> str | None:
    return session.scalar(
        select(Team.name)
        .join(Routing, Routing.team_id == Team.id)
        .where(Routing.conversation_id == conv_id)
    )


def team_names(session: Session, conv_ids: list[str]) -> dict[str, str]:
    if not conv_ids:
        return {}
    stmt = (
        select(Routing.conversation_id, Team.name)
        .join(Team, Team.id == Routing.team_id)
        .where(Routing.conversation_id.in_(conv_ids))
    )
    return dict(session.execute(stmt).tuples().all())


def _upsert(insert_):
    stmt = insert_(Routing).values(
        conversation_id=bindparam("conv_id"),
        team_id=bindparam("team_id"),
        updated_at=bindparam("now"),
    )
    return stmt.on_conflict_do_update(
        index_elements=[Routing.conversation_id],
        set_={"team_id": stmt.excluded.team_id, "updated_at": stmt.excluded.updated_at},
    )


_UPSERT_ROUTING = {"postgresql": _upsert(pg_insert), "sqlite": _upsert(sqlite_insert)}


def set_team(session: Session, conv_id: str, team_id: int | None) -> None:
    """Record the conversation's team: one statement on PostgreSQL and SQLite (built once: this
    runs in every hand-off)."""
    params = {"conv_id": conv_id, "team_id": team_id, "now": utcnow()}
    session.execute(_UPSERT_ROUTING[session.get_bind().dialect.name], params)


# --- which agent ---------------------------------------------------------------------------


def _pick_statement(by_team: bool):
    """The locked pick of the least busy online agent under capacity (built once: statements made
    per call cost more Python time than the query)."""
    open_q = desk_queries.held_count_of(AgentStatus.user_id)
    stmt = (
        select(AgentStatus)
        .join(User, User.id == AgentStatus.user_id)
        .where(
            AgentStatus.presence == "online",
            User.active.is_(True),
            open_q < AgentStatus.capacity,
            AgentStatus.user_id.not_in(bindparam("skipped", expanding=True)),
        )
        .order_by(open_q, AgentStatus.last_assigned_at.asc().nulls_first(), AgentStatus.user_id)
        .limit(1)
        .with_for_update(skip_locked=True, of=AgentStatus)
    )
    if by_team:
        members = select(TeamMember.user_id).where(TeamMember.team_id == bindparam("team_id"))
        stmt = stmt.where(AgentStatus.user_id.in_(members))
    return stmt


_PICK_ANY, _PICK_IN_TEAM = _pick_statement(False), _pick_statement(True)


def pick_agent(session: Session, team_id: int | None) -> AgentStatus | None:
    """Lock and return the online agent (of ``team_id``; any team when None) with the fewest open
    conversations under their capacity, the longest since their last assignment among equals."""
    stmt = _PICK_ANY if team_id is None else _PICK_IN_TEAM
    params: dict = {} if team_id is None else {"team_id": team_id}
    skipped: list[int] = [-1]
    for _ in range(5):
        row = session.scalar(stmt, {**params, "skipped": skipped})
        if row is None:
            return None
        # the count in the query may predate a concurrent assignment committed before our lock
        if teams.open_count(session, row.user_id) < row.capacity:
            return row
        skipped.append(row.user_id)
    return None


def _give(session: Session, conv: Conversation, agent: AgentStatus, from_states) -> list[Event]:
    try:
        convs.transition(session, conv, "agent", from_states, assigned_agent_id=agent.user_id)
    except Conflict:
        return []  # another process took it first
    agent.last_assigned_at = utcnow()
    msg = convs.add_message(session, conv, "system", "system", "assigned", agent_id=agent.user_id)
    return state_events(session, conv, [msg])


def auto_assign(session: Session, conv: Conversation, team_id: int | None) -> list[Event]:
    """Assign a waiting conversation to the best online agent, if any (else it stays queued)."""
    if conv.state != "waiting":
        return []
    agent = pick_agent(session, team_id)
    return _give(session, conv, agent, ("waiting",)) if agent is not None else []


def fill(session: Session, user_id: int) -> list[Event]:
    """Give an online agent waiting conversations (of their teams, and of no team) up to their
    free capacity, oldest first; conversations another process holds are skipped."""
    agent = session.scalar(
        select(AgentStatus).where(AgentStatus.user_id == user_id).with_for_update()
    )
    if agent is None or agent.presence != "online":
        return []
    free = agent.capacity - teams.open_count(session, user_id)
    if free <= 0:
        return []
    team_ids = teams.team_ids_of(session, user_id)
    # the shared queue and the agent's teams': not the conversations routed to other teams
    others = select(Routing.conversation_id).where(Routing.team_id.is_not(None))
    if team_ids:
        others = others.where(Routing.team_id.not_in(team_ids))
    waiting = desk_queries.waiting(session, free, excluding=others, lock=True)
    events: list[Event] = []
    for conv in waiting:
        events += _give(session, conv, agent, ("waiting",))
    return events


# --- when a team's hours start --------------------------------------------------------------

OPENING_WINDOW = timedelta(minutes=10)


@dataclass
class Opening:
    """A team whose hours started lately, with the conversations that waited in its queue."""

    team_id: int
    team: str
    opened_at: datetime
    waiting: int  # in the team's queue at this sweep
    assigned: int  # of those, given to online members now
    events: list[Event] = field(default_factory=list)


def openings(session: Session, now: datetime | None = None) -> list[Opening]:
    """Teams whose hours started within :data:`OPENING_WINDOW` before ``now`` and have
    conversations waiting in their queue (handed off while closed): those go to the team's online
    members under capacity, oldest first; the rest stay queued. Safe to run again and from
    several processes (each assignment is one conditional update)."""
    now = now or utcnow()
    since = now - OPENING_WINDOW
    found: list[Opening] = []
    for team in session.scalars(select(Team).order_by(Team.id)):
        if not team.hours or hours.is_open(team, since) or not hours.is_open(team, now):
            continue
        opened = hours.next_open(team, since)
        if opened is None or opened > now:
            continue
        queue = select(Routing.conversation_id).where(Routing.team_id == team.id)
        waiting = desk_queries.waiting(session, None, among=queue, lock=True)
        if not waiting:
            continue
        opening = Opening(team.id, team.name, opened, len(waiting), 0)
        for conv in waiting:
            events = auto_assign(session, conv, team.id)
            if not events:
                break  # nobody free in the team: the rest stays in its queue
            opening.events += events
            opening.assigned += 1
        found.append(opening)
    return found


# --- the hand-off hook ---------------------------------------------------------------------


class Handoff:
    """Routes the hand-off of one customer turn.

    ``message`` is given to :func:`annae.dialogue.conversations.post_customer` for its hand-off:
    it picks the team and, outside the team's hours, says when people are back. ``finish`` runs
    after the turn is stored: it records the team and, in hours, marks the conversation for
    :func:`assign_after_turn` (``assign``), which gives it to an agent in a transaction of its
    own once the customer's reply is on its way, so the locked agent pick never holds up a turn.
    ``seconds``: the time both spent (the routing's share of the turn; None: no hand-off)."""

    def __init__(self, session: Session, conv: Conversation, decision=None) -> None:
        self.session, self.conv, self.decision = session, conv, decision
        self.used = False
        self.team: Team | None = None
        self.closed = False
        self.assign = False
        self.seconds: float | None = None

    def message(self, language: str | None) -> tuple[str, list | None]:
        """The hand-off message's text and options (``[{"closed": true, "back_at": …}]`` outside
        the team's hours, so that chat pages show the server's text)."""
        started = time.perf_counter()
        self.used = True
        self.team = choose_team(self.session, self.conv, self.decision)
        now = utcnow()
        if self.team is not None and not hours.is_open(self.team, now):
            self.closed = True
            back = hours.next_open(self.team, now)
            options = [{"closed": True, "back_at": back.isoformat() if back else None}]
            text = hours.closed_text(self.team, now, language)
        else:
            text, options = convs.text_for("handoff", language), None
        self.seconds = time.perf_counter() - started
        return text, options

    def finish(self, outcome: convs.Outcome) -> None:
        if not self.used or self.conv.state != "waiting":
            return
        started = time.perf_counter()
        team_id = self.team.id if self.team is not None else None
        set_team(self.session, self.conv.id, team_id)
        self.assign = not self.closed
        self.seconds = (self.seconds or 0.0) + time.perf_counter() - started


def assign_after_turn(session: Session, conv_id: str) -> list[Event]:
    """Give a conversation handed off in hours to an online agent of its team (the team
    :func:`set_team` recorded), if it still waits: the second step of :class:`Handoff`. Another
    process may take it first (the conditional update in :func:`_give`); with nobody free it
    stays queued and the next place that opens takes it (:func:`fill`)."""
    conv = convs.find(session, conv_id)
    if conv is None or conv.state != "waiting":
        return []
    return auto_assign(session, conv, team_id_of(session, conv_id))


# --- transfers -----------------------------------------------------------------------------


def transfer(
    session: Session,
    conv_id: str,
    by: Identity,
    *,
    to_agent: str | None = None,
    to_team: str | None = None,
    note: str | None = None,
) -> tuple[dict, list[Event]]:
    """Hand a conversation to another agent, or to a team's queue (then auto-assigned there),
    with an optional private note for the next person."""
    if (to_agent is None) == (to_team is None):
        raise Invalid("give exactly one of 'agent' or 'team'")
    conv = convs.get(session, conv_id)
    if conv.state not in ("waiting", "agent"):
        raise Conflict(f"conversation {conv.id} is {conv.state}; only open conversations move")
    events: list[Event] = []
    if to_agent is not None:
        user = session.scalar(select(User).where(User.username == to_agent, User.active.is_(True)))
        if user is None:
            raise NotFound(f"no active agent {to_agent!r}")
        if conv.state == "agent" and conv.assigned_agent_id == user.id:
            raise Conflict(f"conversation {conv.id} is already with {to_agent}")
        target = to_agent
    else:
        assert to_team is not None  # exactly one of the two (checked above)
        team = teams.get_team(session, to_team)
        target = team.name
    if note is not None and note.strip():
        _, note_events = notes.add_note(session, conv.id, by, f"→ {target}: {note.strip()}")
        events += note_events
    if to_agent is not None:
        assert user is not None  # found above
        teams.ensure_status(session, user.id)
        convs.transition(session, conv, "agent", ("waiting", "agent"), assigned_agent_id=user.id)
        noted_agent = user.id  # the "transferred" message names the new agent, else who moved it
    else:
        set_team(session, conv.id, team.id)
        convs.transition(
            session,
            conv,
            "waiting",
            ("waiting", "agent"),
            assigned_agent_id=None,
            handoff_reason=conv.handoff_reason or "transfer",
        )
        noted_agent = by.id
    msg = convs.add_message(session, conv, "system", "system", "transferred", agent_id=noted_agent)
    events += state_events(session, conv, [msg])
    if to_agent is None and hours.is_open(team, utcnow()):
        events += auto_assign(session, conv, team.id)
    return convs.summary_dict(session, conv), events
