"""Service levels: first response, time in queue, time to resolve, CSAT and targets, per team and
agent (definitions in docs/metrics.md#service-levels).

Built on the analytics' conversation facts (:func:`annae.learning.analytics.facts`): the same
counted conversations, period and language filters, and the same first hand-off and first
agent reply.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from annae.agents import routing
from annae.agents.users import usernames
from annae.dialogue import desk_queries
from annae.learning import analytics
from annae.store.db import aware
from annae.store.tables.desk import Csat, Team

BOT = "bot"


@dataclass
class Served:
    """One handed-off conversation's times (seconds from its first hand-off)."""

    conversation_id: str
    team: str | None
    agent: str | None
    first_response_s: float | None
    queue_wait_s: float | None
    resolve_s: float | None


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least ``p`` % of values ≤ it."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 1)


def _stats(values: list[float]) -> dict:
    return {"p50": percentile(values, 50), "p90": percentile(values, 90), "n": len(values)}


def _secs(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return max(0.0, (later - earlier).total_seconds())


def served(session: Session, rows: list[analytics.ConvFacts]) -> list[Served]:
    """Times of every handed-off conversation among ``rows``."""
    handed = {f.id: f for f in rows if f.handed_off}
    if not handed:
        return []
    ids = list(handed)
    teams = routing.team_names(session, ids)
    names = usernames(session)
    assigned_to = desk_queries.assigned_agents(session, ids)
    assigned_at: dict[str, datetime] = {}
    resolved_at: dict[str, datetime] = {}
    responder: dict[str, int | None] = {}  # agent_id: NULL once the user is deleted
    for cid, sender, text, agent_id, created in desk_queries.staff_messages(session, ids):
        at = aware(created)
        start = handed[cid].handoff_at
        if start is None or at < start:
            continue
        if sender == "agent":
            responder.setdefault(cid, agent_id)
        elif text == "assigned":
            assigned_at.setdefault(cid, at)
        elif text == "resolved":
            resolved_at.setdefault(cid, at)
    out = []
    for cid, f in handed.items():
        first = f.first_agent_reply_at
        # in the queue until an agent was assigned or, taking it by replying, answered
        picked = min((t for t in (assigned_at.get(cid), first) if t is not None), default=None)
        agent_id = responder.get(cid, assigned_to.get(cid))
        out.append(
            Served(
                conversation_id=cid,
                team=teams.get(cid),
                agent=names.get(agent_id) if agent_id is not None else None,
                first_response_s=_secs(first, f.handoff_at),
                queue_wait_s=_secs(picked, f.handoff_at),
                resolve_s=_secs(resolved_at.get(cid), f.handoff_at),
            )
        )
    return out


def _group(items: list[Served], scores: list[int], resolutions: int) -> dict:
    return {
        "handoffs": len(items),
        "first_response": _stats(
            [i.first_response_s for i in items if i.first_response_s is not None]
        ),
        "queue_wait": _stats([i.queue_wait_s for i in items if i.queue_wait_s is not None]),
        "resolve": _stats([i.resolve_s for i in items if i.resolve_s is not None]),
        "csat": {
            "average": round(sum(scores) / len(scores), 2) if scores else None,
            "ratings": len(scores),
            "resolutions": resolutions,
            "response_rate": round(len(scores) / resolutions, 4) if resolutions else None,
        },
    }


def _met(values: list[float], target: int | None) -> float | None:
    if target is None or not values:
        return None
    return round(sum(v <= target for v in values) / len(values), 4)


def summary(session: Session, filters: analytics.Filters | None = None) -> dict:
    """Service levels overall, per team and per agent (and bot containment beside them)."""
    filters = filters or analytics.Filters()
    rows = analytics.facts(session, filters)
    ids = [f.id for f in rows]
    items = served(session, rows)
    names = usernames(session)
    team_names = {t.id: t for t in session.scalars(select(Team))}
    csat_rows = (
        list(session.scalars(select(Csat).where(Csat.conversation_id.in_(ids)))) if ids else []
    )
    # who resolved: the agent the conversation was with at each resolve (NULL → the bot)
    resolves = desk_queries.resolutions(session, ids)
    by_team: dict[str, list[Served]] = defaultdict(list)
    by_agent: dict[str, list[Served]] = defaultdict(list)
    for i in items:
        by_team[i.team or "—"].append(i)
        if i.agent:
            by_agent[i.agent].append(i)
    team_of_conv = {i.conversation_id: i.team or "—" for i in items}
    agent_of_conv = {i.conversation_id: i.agent for i in items}
    ratings_team: dict[str, list[int]] = defaultdict(list)
    ratings_agent: dict[str, list[int]] = defaultdict(list)
    for c in csat_rows:
        team = (
            team_names[c.team_id].name
            if c.team_id in team_names
            else team_of_conv.get(c.conversation_id, "—")
        )
        ratings_team[team].append(c.score)
        ratings_agent[names.get(c.agent_id, BOT) if c.agent_id is not None else BOT].append(c.score)
    resolved_team: dict[str, int] = defaultdict(int)
    resolved_agent: dict[str, int] = defaultdict(int)
    for cid, _ in resolves:
        resolved_team[team_of_conv.get(cid, "—")] += 1
        resolved_agent[agent_of_conv.get(cid) or BOT] += 1
    overall = _group(items, [c.score for c in csat_rows], len(resolves))
    teams_out = []
    for name in sorted(set(by_team) | {t.name for t in team_names.values()} | set(ratings_team)):
        group = by_team.get(name, [])
        entry = {
            "team": name,
            **_group(group, ratings_team.get(name, []), resolved_team.get(name, 0)),
        }
        team_row = next((t for t in team_names.values() if t.name == name), None)
        fr_target = team_row.first_response_target_s if team_row else None
        rs_target = team_row.resolve_target_s if team_row else None
        entry["targets"] = {
            "first_response_s": fr_target,
            "first_response_met": _met(
                [g.first_response_s for g in group if g.first_response_s is not None], fr_target
            ),
            "resolve_s": rs_target,
            "resolve_met": _met([g.resolve_s for g in group if g.resolve_s is not None], rs_target),
        }
        teams_out.append(entry)
    agents_out = [
        {
            "agent": name,
            **_group(
                by_agent.get(name, []), ratings_agent.get(name, []), resolved_agent.get(name, 0)
            ),
        }
        for name in sorted(set(by_agent) | set(ratings_agent))
    ]
    contained = analytics.summary(session, filters)
    return {
        "conversations": len(rows),
        "containment_rate": contained.get("containment_rate"),
        "overall": overall,
        "teams": teams_out,
        "agents": agents_out,
    }


CSV_TABLES = ("teams", "agents")


def _flat(row: dict) -> list:
    out = [row["handoffs"]]
    for key in ("first_response", "queue_wait", "resolve"):
        out += [row[key]["p50"], row[key]["p90"], row[key]["n"]]
    c = row["csat"]
    return out + [c["average"], c["ratings"], c["resolutions"], c["response_rate"]]


_HEAD = [
    "handoffs",
    "first_response_p50_s",
    "first_response_p90_s",
    "first_response_n",
    "queue_wait_p50_s",
    "queue_wait_p90_s",
    "queue_wait_n",
    "resolve_p50_s",
    "resolve_p90_s",
    "resolve_n",
    "csat_average",
    "csat_ratings",
    "resolutions",
    "csat_response_rate",
]


def to_csv(data: dict, table: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    if table == "teams":
        targets = (
            "first_response_target_s",
            "first_response_met",
            "resolve_target_s",
            "resolve_met",
        )
        w.writerow(["team", *_HEAD, *targets])
        for r in data["teams"]:
            t = r["targets"]
            met = (t["first_response_s"], t["first_response_met"], t["resolve_s"], t["resolve_met"])
            w.writerow([r["team"], *_flat(r), *met])
    elif table == "agents":
        w.writerow(["agent", *_HEAD])
        for r in data["agents"]:
            w.writerow([r["agent"], *_flat(r)])
    else:
        raise ValueError(f"table must be one of {', '.join(CSV_TABLES)}")
    return buf.getvalue()
