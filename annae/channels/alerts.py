"""Agent alerts: a hand-off while no agent has the console open notifies the on-duty people by
e-mail and/or a Slack-compatible incoming webhook, at most once per conversation per N minutes;
so does a team's opening hour when customers waited in its queue while it was closed (once).

Presence is counted per process (open agent WebSockets); with several workers a console open on
another worker is not seen here, so an alert may go out although someone watches (documented).
"""

from __future__ import annotations

import threading
from datetime import UTC, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from annae.channels import outbox
from annae.settings import get_settings
from annae.store.db import aware, utcnow
from annae.store.tables.channels import AgentAlert
from annae.store.tables.desk import Opening as DeskOpening

if TYPE_CHECKING:
    from annae.agents.routing import Opening
    from annae.store.tables.service import Conversation

_open = 0
_lock = threading.Lock()


def console_opened() -> None:
    global _open
    with _lock:
        _open += 1


def console_closed() -> None:
    global _open
    with _lock:
        _open = max(0, _open - 1)


def consoles_open() -> int:
    return _open


def _text(conv: Conversation, url: str) -> str:
    return (
        f"Annae: a customer on {conv.channel} waits for a person "
        f"(reason: {conv.handoff_reason or 'unknown'}). Open {url.rstrip('/')}/console"
    )


def on_handoff(session: Session, conv: Conversation) -> bool:
    """Queue the alerts for this hand-off if nobody watches and none went out lately."""
    settings = get_settings()
    if not (settings.alert_email or settings.alert_webhook_url) or consoles_open() > 0:
        return False
    now = utcnow()
    row = session.get(AgentAlert, conv.id, with_for_update=True)
    if row is not None:
        if now - aware(row.sent_at) < timedelta(minutes=settings.alert_every_minutes):
            return False
        row.sent_at = now
    else:
        session.add(AgentAlert(conversation_id=conv.id, sent_at=now))
    _send(session, settings, "a customer waits for a person", _text(conv, settings.public_url))
    return True


def on_hours_start(session: Session, opening: Opening) -> bool:
    """Alert once when a team's hours start with customers in its queue (handed off while it was
    closed): how many waited and how many went to online agents at once."""
    settings = get_settings()
    if not (settings.alert_email or settings.alert_webhook_url) or opening.waiting == 0:
        return False
    opened_at = opening.opened_at.astimezone(UTC)
    if session.get(DeskOpening, (opening.team_id, opened_at)) is not None:
        return False
    try:
        with session.begin_nested():  # another process may record the same opening first
            session.add(
                DeskOpening(
                    team_id=opening.team_id,
                    opened_at=opened_at,
                    waiting=opening.waiting,
                    assigned=opening.assigned,
                )
            )
    except IntegrityError:
        return False
    text = (
        f"Annae: team {opening.team} is open now; {opening.waiting} customer(s) waited while it "
        f"was closed ({opening.assigned} assigned to online agents). "
        f"Open {settings.public_url.rstrip('/')}/console"
    )
    _send(session, settings, f"team {opening.team} opens with customers waiting", text)
    return True


def _send(session: Session, settings, subject: str, text: str) -> None:
    """One alert: an outbox item for the webhook and one for the mail, as configured."""
    if settings.alert_webhook_url:
        outbox.enqueue(
            session, "slack", "alert", {"url": settings.alert_webhook_url, "body": {"text": text}}
        )
    if settings.alert_email:
        to = [a.strip() for a in settings.alert_email.split(",") if a.strip()]
        msg = EmailMessage()
        msg["From"] = settings.mail_from
        msg["To"] = ", ".join(to)
        msg["Subject"] = f"[Annae] {subject}"
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or "annae")
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(text)
        outbox.enqueue(session, "email", "alert", {"mime": msg.as_string(), "to": to})
