"""One customer turn, the same for every channel (web chat, WebSocket, KakaoTalk, e-mail).

:func:`commit_turn` finds the conversation, stores the customer's message and the bot's reply
(``dialogue``), routes a hand-off to a team and an agent (``agents``), queues the outbound
calls (webhooks, the customer's channel, agent alerts: :mod:`annae.channels.hooks`) in the
same transaction, and publishes the live events after commit. Errors are the packages' own
(:mod:`annae.errors`); the web layer maps them to HTTP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from annae.agents import routing
from annae.channels import hooks
from annae.dialogue import conversations as convs
from annae.kb.entries import answer_for_turn
from annae.store.db import session_scope
from annae.store.tables.service import Conversation

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

    def decided(self, reply: dict[str, Any]) -> None:
        """Count the bot's reply (metrics); called after commit."""


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
) -> tuple[dict[str, Any], Any]:
    """One customer turn in one transaction for every channel: ``find`` the conversation, store
    the turn and the bot's reply, queue the outbound calls (webhooks, the customer's channel,
    alerts), run ``after`` in the same transaction; publish the events after commit.
    ``intent(session, conv)`` may replace ``text``/``choice``/``handoff`` (a channel's quick
    reply that is a clarify choice)."""
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
        hooks.record(session, outcome.events)
        if after is not None:
            extra = after(session, conv, outcome)
    svc.broker.publish_many(outcome.events)
    svc.decided(outcome.reply)
    return outcome.reply, extra
