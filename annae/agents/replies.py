"""Saved replies: canned answers with a ``/shortcut``, Korean and English texts and variables.

A reply belongs to everyone (``global``), a team, or one agent (``personal``). Variables
``{customer_name}``, ``{agent_name}`` and ``{order_id}`` are filled when the console inserts the
reply; an unknown one is left blank. CSV import validates every row before writing any.
"""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from annae import errors
from annae.agents import teams
from annae.agents.users import Identity
from annae.dialogue import conversations as convs
from annae.dialogue import desk_queries
from annae.dialogue.conversations import Conflict, ConversationError, Invalid, NotFound
from annae.store.db import utcnow
from annae.store.tables.desk import SavedReply, Team
from annae.store.tables.service import User

VARIABLES = ("customer_name", "agent_name", "order_id")
SCOPES = ("global", "team", "personal")
MAX_TEXT = 4000
CSV_COLUMNS = ("shortcut", "scope", "team", "owner", "text_ko", "text_en")


class Forbidden(errors.Forbidden, ConversationError):
    pass


_VAR = re.compile(r"\{([^{}]*)\}")
_SHORTCUT = re.compile(r"^[\w-]{1,64}$")
_ORDER = re.compile(
    r"(?:주문\s*번호|주문번호|order\s*(?:id|number|no\.?|#))\s*(?:는|은|:|#)?\s*([A-Za-z0-9-]{4,40})",
    re.IGNORECASE,
)


def check_text(text: str, what: str) -> str:
    if not isinstance(text, str):
        raise Invalid(f"{what} must be text")
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise Invalid(f"{what} has at most {MAX_TEXT} characters")
    for name in _VAR.findall(text):
        if name not in VARIABLES:
            raise Invalid(
                f"unknown variable {{{name}}} in {what}; use "
                + ", ".join("{" + v + "}" for v in VARIABLES)
            )
    return text


def _shortcut(value: str) -> str:
    value = (value or "").strip().lstrip("/") if isinstance(value, str) else ""
    if not _SHORTCUT.match(value):
        raise Invalid("shortcut must be 1-64 letters, digits, _ or - (typed as /shortcut)")
    return value


def _scope_ids(
    session: Session, user: Identity, scope: str, team: str | None
) -> tuple[int | None, int | None]:
    """(team_id, owner_id) for a new reply; 403-like 400s for scopes the user may not write."""
    if scope not in SCOPES:
        raise Invalid(f"scope must be one of {', '.join(SCOPES)}")
    if scope == "global":
        if not user.is_admin:
            raise Forbidden("only admins write replies for everyone")
        return None, None
    if scope == "team":
        if not team:
            raise Invalid("a team reply needs a team")
        t = teams.get_team(session, team)
        if not user.is_admin and t.id not in teams.team_ids_of(session, user.id):
            raise Forbidden(f"you are not a member of team {team!r}")
        return t.id, None
    return None, user.id


def _same(session: Session, shortcut: str, team_id: int | None, owner_id: int | None):
    return session.scalar(
        select(SavedReply).where(
            SavedReply.shortcut == shortcut,
            SavedReply.team_id.is_(None) if team_id is None else SavedReply.team_id == team_id,
            SavedReply.owner_id.is_(None) if owner_id is None else SavedReply.owner_id == owner_id,
        )
    )


def _add(
    session: Session,
    shortcut: str,
    team_id: int | None,
    owner_id: int | None,
    text_ko: str,
    text_en: str,
) -> SavedReply:
    row = SavedReply(
        shortcut=shortcut,
        team_id=team_id,
        owner_id=owner_id,
        text_ko=text_ko,
        text_en=text_en,
        created_at=utcnow(),
    )
    session.add(row)
    return row


def create(
    session: Session,
    user: Identity,
    shortcut: str,
    *,
    text_ko: str = "",
    text_en: str = "",
    scope: str = "personal",
    team: str | None = None,
) -> dict:
    shortcut = _shortcut(shortcut)
    text_ko, text_en = check_text(text_ko, "text_ko"), check_text(text_en, "text_en")
    if not text_ko and not text_en:
        raise Invalid("a saved reply needs a Korean or an English text")
    team_id, owner_id = _scope_ids(session, user, scope, team)
    if _same(session, shortcut, team_id, owner_id) is not None:
        raise Conflict(f"/{shortcut} already exists in this scope")
    row = _add(session, shortcut, team_id, owner_id, text_ko, text_en)
    session.flush()
    return reply_dict(row, team, user.username if owner_id else None)


def delete(session: Session, user: Identity, reply_id: int) -> None:
    row = session.get(SavedReply, reply_id)
    if row is None:
        raise NotFound(f"no saved reply {reply_id}")
    if not user.is_admin and row.owner_id != user.id:
        raise Forbidden("you may delete only your personal replies")
    session.delete(row)


def reply_dict(row: SavedReply, team: str | None, owner: str | None) -> dict:
    scope = "personal" if row.owner_id else "team" if row.team_id else "global"
    return {
        "id": row.id,
        "shortcut": row.shortcut,
        "scope": scope,
        "team": team,
        "owner": owner,
        "text_ko": row.text_ko,
        "text_en": row.text_en,
    }


def _rows(session: Session, stmt) -> list[tuple[SavedReply, str | None, str | None]]:
    stmt = (
        stmt.add_columns(Team.name, User.username)
        .join(Team, Team.id == SavedReply.team_id, isouter=True)
        .join(User, User.id == SavedReply.owner_id, isouter=True)
        .order_by(SavedReply.shortcut, SavedReply.id)
    )
    return list(session.execute(stmt).tuples().all())


def visible(session: Session, user: Identity, prefix: str = "") -> list[tuple]:
    """Replies the user may use (everyone's, their teams', their own), shortcut starting ``prefix``."""
    team_ids = teams.team_ids_of(session, user.id)
    stmt = select(SavedReply).where(
        or_(
            SavedReply.owner_id == user.id,
            SavedReply.team_id.in_(team_ids) if team_ids else false(),
            (SavedReply.team_id.is_(None)) & (SavedReply.owner_id.is_(None)),
        )
    )
    prefix = (prefix or "").lstrip("/")
    if prefix:
        stmt = stmt.where(SavedReply.shortcut.startswith(prefix, autoescape=True))
    return _rows(session, stmt)


def variables(session: Session, user: Identity, conv_id: str | None) -> dict[str, str]:
    """The values known for a conversation: the agent's name always; an order number the customer
    wrote (``주문번호 12345``, ``order #A-991``); the customer's name is not stored (blank)."""
    values = {"agent_name": user.username, "customer_name": "", "order_id": ""}
    if conv_id:
        conv = convs.get(session, conv_id)
        for text in desk_queries.customer_texts(session, conv.id):
            found = _ORDER.search(text or "")
            if found:
                values["order_id"] = found.group(1)
                break
    return values


def render(text: str, values: dict[str, str]) -> str:
    return _VAR.sub(lambda m: values.get(m.group(1), ""), text)


def suggest(
    session: Session, user: Identity, prefix: str, conv_id: str | None, language: str | None
) -> list[dict]:
    """Replies for the reply box's ``/prefix``, with ``text`` filled in for the conversation's
    language (the other language when that one is empty)."""
    values = variables(session, user, conv_id)
    if language is None and conv_id:
        language = convs.get(session, conv_id).language
    out = []
    for row, team, owner in visible(session, user, prefix):
        item = reply_dict(row, team, owner)
        first, second = (
            (row.text_ko, row.text_en) if language == "ko" else (row.text_en, row.text_ko)
        )
        item["text"] = render(first or second, values)
        out.append(item)
    return out


# --- CSV ------------------------------------------------------------------------------------


def export_csv(session: Session) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for row, team, owner in _rows(session, select(SavedReply)):
        d = reply_dict(row, team, owner)
        writer.writerow(
            [d["shortcut"], d["scope"], team or "", owner or "", row.text_ko, row.text_en]
        )
    return buf.getvalue()


def import_csv(session: Session, data: str) -> dict:
    """Create or update replies from CSV (columns as exported); every row is checked first and
    nothing is written when any row is wrong (400 listing the lines)."""
    try:
        reader = csv.DictReader(io.StringIO(data), strict=True)
        header = reader.fieldnames or []
        rows = list(reader)
    except csv.Error as exc:
        raise Invalid(f"broken CSV: {exc}") from exc
    missing = [c for c in ("shortcut", "scope", "text_ko", "text_en") if c not in header]
    if missing:
        raise Invalid(f"CSV misses column(s): {', '.join(missing)}")
    if not rows:
        raise Invalid("the CSV has no rows")
    team_ids = {t.name: t.id for t in teams.list_teams(session)}
    user_ids = dict(session.execute(select(User.username, User.id)).tuples().all())
    errors, planned, seen = [], [], set()
    for line, raw in enumerate(rows, start=2):
        try:
            if None in raw:
                raise Invalid("more fields than columns")
            shortcut = _shortcut(raw.get("shortcut") or "")
            scope = (raw.get("scope") or "").strip()
            text_ko = check_text(raw.get("text_ko") or "", "text_ko")
            text_en = check_text(raw.get("text_en") or "", "text_en")
            if not text_ko and not text_en:
                raise Invalid("needs text_ko or text_en")
            team_id = owner_id = None
            if scope == "team":
                name = (raw.get("team") or "").strip()
                if name not in team_ids:
                    raise Invalid(f"unknown team {name!r}")
                team_id = team_ids[name]
            elif scope == "personal":
                name = (raw.get("owner") or "").strip()
                if name not in user_ids:
                    raise Invalid(f"unknown owner {name!r}")
                owner_id = user_ids[name]
            elif scope != "global":
                raise Invalid(f"scope must be one of {', '.join(SCOPES)}")
            key = (shortcut, team_id, owner_id)
            if key in seen:
                raise Invalid(f"/{shortcut} appears twice in this scope")
            seen.add(key)
            planned.append((shortcut, team_id, owner_id, text_ko, text_en))
        except Invalid as exc:
            errors.append(f"line {line}: {exc}")
    if errors:
        raise Invalid(
            "; ".join(errors[:20]) + (f" (and {len(errors) - 20} more)" if len(errors) > 20 else "")
        )
    created = updated = 0
    for shortcut, team_id, owner_id, text_ko, text_en in planned:
        row = _same(session, shortcut, team_id, owner_id)
        if row is None:
            _add(session, shortcut, team_id, owner_id, text_ko, text_en)
            created += 1
        else:
            row.text_ko, row.text_en = text_ko, text_en
            updated += 1
    session.flush()
    return {"created": created, "updated": updated}
