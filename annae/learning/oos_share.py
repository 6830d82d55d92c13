"""The share of traffic that is out of scope, estimated from labelled traffic.

Training data cannot say how many questions no entry answers; the answer threshold rests on that
share (``π``, ``ANNAE_OOS_SHARE``, 0.20 by default; docs/engine.md). Once the bot is live its
labels can: agents label handed-off and clarify questions ("not a FAQ question" is out of
scope), customers rate answers. A model trained while enough labels exist assumes the share
they show instead of the default:

    π = (answers · u_answer + hand-offs and clarify questions · u_other + out-of-scope replies)
        / all decisions

where ``u`` is the share out of scope among the labelled questions of that kind, taken at the
upper end of its 90 % Jeffreys interval (a small sample never makes the bot bolder than it
shows), an unhelpful answer counts as out of scope, and every out-of-scope reply counts as out
of scope (they are rarely labelled). The result is kept between :data:`MIN_SHARE` and
:data:`MAX_SHARE`. "New entry" labels count as in scope: the entry now answers them.

An ``ANNAE_OOS_SHARE`` set by the administrator always wins (:func:`resolve`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy.special import betaincinv
from sqlalchemy import select
from sqlalchemy.orm import Session

from annae.dialogue import history
from annae.settings import Settings
from annae.store.tables.learning import AnswerRating, ConversationLabel

MIN_LABELLED = 30
"""Labelled questions needed before traffic may set the share."""
MIN_PER_KIND = 10
"""Labelled questions needed of each kind (answers, other decisions) that is 5 % of traffic."""
MIN_SHARE, MAX_SHARE = 0.02, 0.90
UPPER = 0.90
"""The quantile of each kind's out-of-scope rate used (an upper bound)."""


@dataclass(frozen=True)
class OosShare:
    value: float | None  # None: too few labels (the setting's share is used)
    n_labelled: int
    source: str  # "traffic", "setting" or "default"
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()

    def pair(self) -> tuple[float, str]:
        """(share, source), as a training takes it (:func:`annae.kb.training.fit_examples`)."""
        if self.value is None:
            raise ValueError(f"no out-of-scope share: {self.reason}")
        return self.value, self.source


def _upper(k: int, n: int) -> float:
    """The :data:`UPPER` quantile of Beta(k + ½, n - k + ½) (scipy.special: scipy.stats alone
    takes half a second to import)."""
    return float(betaincinv(k + 0.5, n - k + 0.5, UPPER))


def estimate(
    counts: Mapping[str, int], answered_oos: Sequence[bool], other_oos: Sequence[bool]
) -> OosShare:
    """The out-of-scope share of traffic whose decisions are ``counts`` by type (``answer``,
    ``handoff``, ``clarify``, ``out_of_scope``), from labelled answers (``answered_oos``: each
    rated one unhelpful) and labelled other decisions (``other_oos``: each not a FAQ question)."""
    n_answer = counts.get("answer", 0)
    n_other = counts.get("handoff", 0) + counts.get("clarify", 0)
    n_oos = counts.get("out_of_scope", 0)
    total = n_answer + n_other + n_oos
    labelled = len(answered_oos) + len(other_oos)
    if labelled < MIN_LABELLED or not total:
        return OosShare(
            None, labelled, "traffic", f"{labelled} labelled questions; {MIN_LABELLED} needed"
        )
    share = n_oos / total
    for n_kind, labels, name in (
        (n_answer, answered_oos, "rated answers"),
        (n_other, other_oos, "labelled hand-offs"),
    ):
        if not n_kind:
            continue
        if len(labels) < MIN_PER_KIND:
            if n_kind / total >= 0.05:
                return OosShare(
                    None, labelled, "traffic", f"{len(labels)} {name}; {MIN_PER_KIND} needed"
                )
            share += n_kind / total  # a rare kind nobody labelled: all out of scope
            continue
        share += n_kind / total * _upper(sum(labels), len(labels))
    value = round(min(MAX_SHARE, max(MIN_SHARE, share)), 4)
    return OosShare(value, labelled, "traffic", "ok")


def from_traffic(session: Session) -> OosShare:
    """:func:`estimate` over every labelled question and every decision stored."""
    counts = {k: v for k, v in history.decision_counts(session, None).items() if k}
    labels = list(session.execute(select(ConversationLabel.message_id, ConversationLabel.kind)))
    kinds = history.decisions(session, {m for m, _ in labels if m is not None})
    other = [
        kind == "not_faq"
        for message_id, kind in labels
        if isinstance(d := kinds.get(message_id or -1), dict)
        and d.get("type") in ("handoff", "clarify")
    ]
    answered = [not helpful for helpful in session.scalars(select(AnswerRating.helpful))]
    return estimate(counts, answered, other)


def resolve(settings: Settings, session: Session) -> OosShare:
    """The share a model trained now assumes (its ``value`` is never None): ``ANNAE_OOS_SHARE``
    when the administrator set it, else labelled traffic's (:func:`from_traffic`), else the
    default."""
    if settings.oos_share_source == "setting":
        return OosShare(settings.oos_share, 0, "setting", "ANNAE_OOS_SHARE")
    est = from_traffic(session)
    if est.value is not None:
        return est
    return OosShare(settings.oos_share, est.n_labelled, "default", est.reason)


__all__ = ["MIN_LABELLED", "OosShare", "estimate", "from_traffic", "resolve"]
