"""The answer / clarify / hand-off decision for one customer question.

The classifier gives calibrated confidences for the top entries; this module adds
the rules a contact center needs on top: explicit requests for a person,
strong frustration, empty or oversized input, and close calls that deserve a
clarifying question rather than a guess.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

DecisionType = Literal["answer", "clarify", "handoff", "out_of_scope"]

# Explicit requests for a person, Korean and English.
_HUMAN = re.compile(
    r"(상담\s*(원|사|직원)|사람\s*(이랑|하고|과|와)?\s*(연결|통화|대화|얘기|이야기)|직원\s*(연결|바꿔|불러)|"
    r"상담\s*(연결|받고|하고\s*싶)|연결\s*해\s*(줘|주세요|주십시오)|매니저|담당자\s*(연결|바꿔|불러)|"
    r"\b(talk|speak|chat)\s+(to|with)\s+(a\s+|an\s+|the\s+|some\s*one|somebody|real\s+)?"
    r"(human|person|agent|representative|rep|operator|someone|somebody|real\s+person|people|manager|staff)|"
    r"\b(human|live|real)\s+(agent|person|support|operator)\b|\bcustomer\s+service\s+(rep|agent|representative)\b|"
    r"\boperator\b|\brepresentative\b|\bget\s+me\s+(a|an)\s+(human|person|agent))",
    re.IGNORECASE,
)
# Strong frustration: swearing, threats to leave or complain, repeated failure.
_FRUSTRATION = re.compile(
    r"(\b(wtf|f+u+c+k+\w*|shit+y?|damn|useless|ridiculous|unacceptable|terrible|worst|scam|furious|"
    r"sick\s+of|fed\s+up|waste\s+of\s+time|not\s+helpful|doesn'?t\s+help|stupid\s+bot|"
    r"(lawyer|sue|chargeback|report\s+you))\b|"
    r"짜증|화나|화가\s*나|열받|빡치|어이\s*없|어이없|장난\s*해|장난하|미치겠|최악|사기|환장|답답해|답답하|"
    r"씨발|시발|ㅅㅂ|개같|엿같|소비자\s*원|신고\s*할|고소|말이\s*돼|몇\s*번\s*(을|이나|째)|"
    r"도움이\s*안|쓸모\s*없|멍청)",
    re.IGNORECASE,
)

MAX_QUESTION_CHARS = 2000
CLARIFY_MAX = 3
"""At most this many entries offered when asking to clarify."""
CLARIFY_MIN_CONFIDENCE = 0.05
"""A third option below this confidence adds next to nothing and is left out."""


@dataclass
class Candidate:
    """One knowledge-base entry the classifier considered."""

    key: str
    entry_id: int | None
    question: str
    answer: str
    confidence: float


@dataclass
class Decision:
    """What the bot does with one question, with everything needed to explain it later."""

    type: DecisionType
    reason: str | None = None
    entry_key: str | None = None
    entry_id: int | None = None
    answer: str | None = None
    confidence: float = 0.0
    candidates: list[Candidate] = field(default_factory=list)
    language: str = "en"
    threshold: float | None = None
    clarify_threshold: float | None = None
    oos_score: float | None = None
    """Calibrated probability that the question is out of scope (None: the model has none)."""
    oos_threshold: float | None = None
    model_version: str | None = None
    scorer: str | None = None
    """``"lexical"``: scored by the model's Korean fast path (lexical features alone, e5 not run:
    :meth:`annae.nlu.engine.Engine.candidates`); None: by the whole model."""

    @property
    def confidently_out_of_scope(self) -> bool:
        """The model is sure enough (its target precision) that no entry covers this."""
        return (
            self.oos_score is not None
            and self.oos_threshold is not None
            and self.oos_score >= self.oos_threshold
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PolicyConfig:
    """Thresholds of the policy; ``threshold`` comes from the trained model."""

    threshold: float
    clarify_threshold: float
    clarify_max: int = CLARIFY_MAX
    oos_threshold: float = 1.01
    """``Decision.oos_score`` from here up: confidently out of scope, so the bot gives the
    out-of-scope reply (with a button to reach a person) instead of handing off (> 1: never)."""


def wants_human(text: str) -> bool:
    """True when the customer asks for a person ("상담원 연결해 주세요", "talk to a human")."""
    return bool(_HUMAN.search(text))


def is_frustrated(text: str) -> bool:
    """True on strong frustration (swearing, complaints, "몇 번을 말해요")."""
    if _FRUSTRATION.search(text):
        return True
    letters = [c for c in text if c.isalpha() and c.isascii()]
    shouting = len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.8
    return shouting or text.count("!") >= 4 or text.count("?!") >= 2


def pre_check(text: str) -> str | None:
    """A hand-off reason decided before any model runs, or None."""
    if not text or not text.strip():
        return "empty"
    if len(text) > MAX_QUESTION_CHARS:
        return "too_long"
    if wants_human(text):
        return "human_requested"
    if is_frustrated(text):
        return "frustration"
    return None


def decide(
    candidates: list[Candidate],
    config: PolicyConfig,
    *,
    language: str,
    model_version: str | None = None,
    reason: str | None = None,
    oos_score: float | None = None,
    scorer: str | None = None,
) -> Decision:
    """Turn ranked, calibrated candidates into a decision.

    - ``answer`` when the top confidence reaches the model's threshold;
    - ``out_of_scope`` when it does not and ``oos_score`` (the model's calibrated probability
      that the question is none of the KB's business) reaches ``config.oos_threshold``:
      confidently out of scope, not just unsure;
    - ``clarify`` when it does not, but the options offered (the two or three best,
      :func:`clarify_options`) together reach ``clarify_threshold``, which the model
      keeps at or below the answer threshold (the customer picks one of them);
    - ``handoff`` otherwise (reason ``low_confidence``), or when ``reason`` is given.

    ``oos_score`` (the model's calibrated probability that the question is out of
    scope) is carried on the decision with ``config.oos_threshold``; at or above it the
    question is confidently out of scope (``Decision.confidently_out_of_scope``).
    """
    top = candidates[0] if candidates else None
    base: dict[str, Any] = dict(
        candidates=candidates,
        language=language,
        threshold=config.threshold,
        clarify_threshold=config.clarify_threshold,
        model_version=model_version,
        scorer=scorer,
        confidence=top.confidence if top else 0.0,
        oos_score=oos_score,
        oos_threshold=config.oos_threshold if oos_score is not None else None,
    )
    if reason is not None or top is None:
        return Decision(type="handoff", reason=reason or "low_confidence", **base)
    if top.confidence >= config.threshold:
        return Decision(
            type="answer", entry_key=top.key, entry_id=top.entry_id, answer=top.answer, **base
        )
    if oos_score is not None and oos_score >= config.oos_threshold:
        return Decision(type="out_of_scope", reason="out_of_scope", **base)
    options = clarify_options(candidates, config.clarify_max)
    if len(options) >= 2 and sum(c.confidence for c in options) >= config.clarify_threshold:
        return Decision(type="clarify", reason="ambiguous", **{**base, "candidates": options})
    return Decision(type="handoff", reason="low_confidence", **base)


def clarify_options(candidates: list[Candidate], k: int = CLARIFY_MAX) -> list[Candidate]:
    """The entries a clarify question offers: the best ``k``, less any after the second
    that adds next to nothing (below :data:`CLARIFY_MIN_CONFIDENCE`)."""
    return [
        c for i, c in enumerate(candidates[:k]) if i < 2 or c.confidence >= CLARIFY_MIN_CONFIDENCE
    ]
