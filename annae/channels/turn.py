"""One customer turn, the same for every channel (web chat, WebSocket, KakaoTalk, e-mail).

:func:`commit_turn` finds the conversation, stores the customer's message and the bot's reply
(``dialogue``), routes a hand-off to a team and an agent (``agents``), queues the outbound
calls (webhooks, the customer's channel, agent alerts: :mod:`annae.channels.hooks`) in the
same transaction, and publishes the live events after commit. Errors are the packages' own
(:mod:`annae.errors`); the web layer maps them to HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from annae.agents import routing
from annae.channels import hooks
from annae.dialogue import conversations as convs
from annae.kb.entries import answer_for_turn
from annae.store.db import session_scope
from annae.store.tables.service import Conversation

log = logging.getLogger("annae.turn")

if TYPE_CHECKING:
    from annae.nlu.policy import Decision
    from annae.settings import Settings


class Broker(Protocol):
    def publish_many(self, events: list[tuple[str, dict[str, Any]]]) -> None: ...


class TurnServices(Protocol):
    """What a turn needs from the process serving it (the web app's ``Services``)."""

    # read-only members: ``Services`` may hold a subtype (its broker is a ``LocalBroker``)
    @property
    def db(self) -> Engine: ...

    @property
    def settings(self) -> Settings: ...

    @property
    def broker(self) -> Broker: ...

    def decided(self, reply: dict[str, Any], routing_s: float | None = None) -> None:
        """Count the bot's reply and time the hand-off's routing (metrics); after commit."""


def _oos_replies(settings: Settings) -> dict[str, str]:
    """The configured out-of-scope replies (ANNAE_OOS_REPLY_EN / _KO), by language."""
    return {lang: text for lang in ("en", "ko") if (text := settings.oos_reply(lang))}


def commit_turn(
    svc: TurnServices,
    find: Callable[[Session], Conversation],
    *,
    text: str | None = None,
    choice: int | None = None,
    handoff: bool = False,
    decision: Decision | None = None,
    failure: str = "no_model",
    intent: Callable[[Session, Conversation], dict[str, Any]] | None = None,
    after: Callable[[Session, Conversation, convs.Outcome], Any] | None = None,
    later: Callable[[Callable[[], None]], None] | None = None,
) -> tuple[dict[str, Any], Any]:
    """One customer turn in one transaction for every channel: ``find`` the conversation, store
    the turn and the bot's reply, queue the outbound calls (webhooks, the customer's channel,
    alerts), run ``after`` in the same transaction; publish the events after commit.
    ``intent(session, conv)`` may replace ``text``/``choice``/``handoff`` (a channel's quick
    reply that is a clarify choice).

    A hand-off in hours is given to an agent in a second transaction (:func:`assign`):
    ``later(job)`` runs it once the reply is on its way (the web chat's turns); without
    ``later`` it runs here, after the commit."""
    extra = None
    with session_scope(svc.db) as session:
        conv = find(session)
        turn: dict[str, Any] = {"text": text, "choice": choice, "handoff": handoff}
        if intent is not None:  # what the message means may depend on the conversation
            turn.update(intent(session, conv))
        desk = routing.Handoff(session, conv, decision)  # the desk: team, hours, agent
        outcome = convs.post_customer(
            session,
            conv,
            **turn,
            entry_answer=answer_for_turn,
            decision=decision,
            no_decision=failure,
            replies=_oos_replies(svc.settings),
            handoff_message=desk.message,
        )
        desk.finish(outcome)
        conv_id = conv.id
        hooks.record(session, outcome.events)
        if after is not None:
            extra = after(session, conv, outcome)
    svc.broker.publish_many(outcome.events)
    svc.decided(outcome.reply, desk.seconds)
    if desk.assign:
        job = partial(assign, svc, conv_id)
        if later is None:
            job()
        else:
            later(job)
    return outcome.reply, extra


def assign(svc: TurnServices, conv_id: str) -> None:
    """The hand-off's assignment (:func:`annae.agents.routing.assign_after_turn`) in its own
    transaction, its events published after commit. A failure is logged: the conversation
    stays in its team's queue, where the next free place takes it."""
    try:
        with session_scope(svc.db) as session:
            events = routing.assign_after_turn(session, conv_id)
            hooks.record(session, events)
        svc.broker.publish_many(events)
    except Exception:
        log.exception("assigning conversation %s failed; it stays queued", conv_id)
