"""Teams, their members, and agents' presence and capacity (the only code writing those tables)."""

from __future__ import annotations

import re

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from annae.agents import hours
from annae.agents.users import active_ids
from annae.dialogue import desk_queries
from annae.dialogue.conversations import Conflict, Invalid, NotFound
from annae.store.db import utcnow
from annae.store.tables.desk import AgentStatus, Routing, Team, TeamMember
from annae.store.tables.service import User

PRESENCE = ("online", "away", "offline")
MAX_CAPACITY = 100
DEFAULT_CAPACITY = 5
LANGUAGES = ("ko", "en")
_TEAM_NAME = re.compile(r"^[\w .&-]{1,100}$")


def get_team(session: Session, name: str) -> Team:
    team = session.scalar(select(Team).where(Team.name == name))
    if team is None:
        raise NotFound(f"no team {name!r}")
    return team


def _users(session: Session, names: list[str]) -> dict[str, int]:
    """Active users by name; 400 naming the unknown ones."""
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise Invalid("members must be a list of usernames")
    found = active_ids(session, names)
    unknown = sorted(set(names) - set(found))
    if unknown:
        raise Invalid(f"unknown or inactive user(s): {', '.join(unknown)}")
    return found


def _strings(value: list, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise Invalid(f"{what} must be a list of non-empty strings")
    return sorted({v.strip() for v in value})


def _target(value: int | None, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 30 * 86400:
        raise Invalid(f"{what} must be whole seconds between 1 and 2592000")
    return value


def create_team(
    session: Session,
    name: str,
    members: list[str],
    *,
    tags: list[str] | None = None,
    languages: list[str] | None = None,
    timezone: str = hours.DEFAULT_TZ,
    weekly: dict | None = None,
    holidays: list | None = None,
    first_response_target_s: int | None = None,
    resolve_target_s: int | None = None,
) -> Team:
    """A team with at least one member; holidays default to this year's Korean public holidays."""
    if not isinstance(name, str) or not _TEAM_NAME.match(name.strip() or "-"):
        raise Invalid("team name must be 1-100 letters, digits, spaces or . & -")
    name = name.strip()
    if session.scalar(select(Team.id).where(Team.name == name)) is not None:
        raise Conflict(f"team {name!r} already exists")
    if not members:
        raise Invalid("a team needs at least one member")
    ids = _users(session, members)
    langs = _strings(languages or [], "languages")
    bad = [lang for lang in langs if lang not in LANGUAGES]
    if bad:
        raise Invalid(f"unknown language(s) {', '.join(bad)}; use ko or en")
    if holidays is None:
        holidays = hours.korean_holidays(utcnow().year)
    team = Team(
        name=name,
        tags=_strings(tags or [], "tags"),
        languages=langs,
        timezone=hours.check_timezone(timezone),
        hours=hours.check_hours(weekly or {}),
        holidays=hours.check_holidays(holidays),
        first_response_target_s=_target(first_response_target_s, "first_response_target_s"),
        resolve_target_s=_target(resolve_target_s, "resolve_target_s"),
        created_at=utcnow(),
    )
    session.add(team)
    session.flush()
    session.add_all(TeamMember(team_id=team.id, user_id=uid) for uid in ids.values())
    for uid in ids.values():
        ensure_status(session, uid)
    session.flush()
    return team


def update_team(session: Session, name: str, **changes) -> Team:
    """Change a team's settings (every value validated before any is written)."""
    team = get_team(session, name)
    checked: dict = {}
    if "tags" in changes:
        checked["tags"] = _strings(changes["tags"], "tags")
    if "languages" in changes:
        checked["languages"] = _strings(changes["languages"], "languages")
        if set(checked["languages"]) - set(LANGUAGES):
            raise Invalid("languages must be ko and/or en")
    if "timezone" in changes:
        checked["timezone"] = hours.check_timezone(changes["timezone"])
    if "weekly" in changes:
        checked["hours"] = hours.check_hours(changes["weekly"])
    if "holidays" in changes:
        checked["holidays"] = hours.check_holidays(changes["holidays"])
    for key in ("first_response_target_s", "resolve_target_s"):
        if key in changes:
            checked[key] = _target(changes[key], key)
    members = None
    if "members" in changes:
        if not changes["members"]:
            raise Invalid("a team needs at least one member")
        members = _users(session, changes["members"])
    for key, value in checked.items():
        setattr(team, key, value)
    if members is not None:
        session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
        session.add_all(TeamMember(team_id=team.id, user_id=uid) for uid in members.values())
        for uid in members.values():
            ensure_status(session, uid)
    session.flush()
    return team


def delete_team(session: Session, name: str) -> None:
    """Delete a team; 409 while conversations wait in its queue or are open with its agents."""
    team = get_team(session, name)
    routed_here = select(Routing.conversation_id).where(Routing.team_id == team.id)
    open_count = desk_queries.open_count(session, routed_here)
    if open_count:
        raise Conflict(
            f"team {name!r} still has {open_count} open conversation(s); transfer or resolve them first"
        )
    session.delete(team)
    session.flush()


def team_dict(session: Session, team: Team) -> dict:
    members = list(
        session.scalars(
            select(User.username)
            .join(TeamMember, TeamMember.user_id == User.id)
            .where(TeamMember.team_id == team.id)
            .order_by(User.username)
        )
    )
    return {
        "id": team.id,
        "name": team.name,
        "members": members,
        "tags": team.tags or [],
        "languages": team.languages or [],
        "timezone": team.timezone,
        "weekly": team.hours or {},
        "holidays": team.holidays or [],
        "open_now": hours.is_open(team, utcnow()),
        "first_response_target_s": team.first_response_target_s,
        "resolve_target_s": team.resolve_target_s,
    }


def list_teams(session: Session) -> list[Team]:
    return list(session.scalars(select(Team).order_by(Team.name)))


def team_ids_of(session: Session, user_id: int) -> list[int]:
    return list(session.scalars(select(TeamMember.team_id).where(TeamMember.user_id == user_id)))


# --- presence and capacity -----------------------------------------------------------------


def ensure_status(session: Session, user_id: int) -> AgentStatus:
    row = session.get(AgentStatus, user_id)
    if row is None:
        row = AgentStatus(
            user_id=user_id, presence="offline", capacity=DEFAULT_CAPACITY, updated_at=utcnow()
        )
        session.add(row)
        session.flush()
    return row


def set_status(
    session: Session, user_id: int, *, presence: str | None = None, capacity: int | None = None
) -> AgentStatus:
    """Set presence and/or capacity (1-100: an agent at capacity 0 is ``away``, not online)."""
    if presence is not None and presence not in PRESENCE:
        raise Invalid(f"presence must be one of {', '.join(PRESENCE)}")
    if capacity is not None and (
        not isinstance(capacity, int)
        or isinstance(capacity, bool)
        or not 1 <= capacity <= MAX_CAPACITY
    ):
        raise Invalid(
            f"capacity must be 1-{MAX_CAPACITY} open conversations (set presence 'away' to take none)"
        )
    row = ensure_status(session, user_id)
    if presence is not None:
        row.presence = presence
    if capacity is not None:
        row.capacity = capacity
    row.updated_at = utcnow()
    session.flush()
    return row


def open_count(session: Session, user_id: int) -> int:
    """How many conversations the agent holds (also checked under routing's lock on the agent)."""
    return desk_queries.held_by(session, user_id)


def status_dict(session: Session, user_id: int) -> dict:
    row = ensure_status(session, user_id)
    teams = list(
        session.scalars(
            select(Team.name)
            .join(TeamMember, TeamMember.team_id == Team.id)
            .where(TeamMember.user_id == user_id)
            .order_by(Team.name)
        )
    )
    return {
        "presence": row.presence,
        "capacity": row.capacity,
        "open": open_count(session, user_id),
        "teams": teams,
    }


def agents_overview(session: Session) -> list[dict]:
    """Every agent with presence, capacity, open conversations and teams (for the console)."""
    open_by = desk_queries.held_by_agent(session)
    statuses = {s.user_id: s for s in session.scalars(select(AgentStatus))}
    teams: dict[int, list[str]] = {}
    for uid, tname in session.execute(
        select(TeamMember.user_id, Team.name).join(Team, Team.id == TeamMember.team_id)
    ):
        teams.setdefault(uid, []).append(tname)
    out = []
    for user in session.scalars(select(User).where(User.active.is_(True)).order_by(User.username)):
        st = statuses.get(user.id)
        out.append(
            {
                "username": user.username,
                "presence": st.presence if st else "offline",
                "capacity": st.capacity if st else DEFAULT_CAPACITY,
                "open": open_by.get(user.id, 0),
                "teams": sorted(teams.get(user.id, [])),
            }
        )
    return out
