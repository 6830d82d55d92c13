"""Rights of the data subject: export and erasure, retention, and explanations of bot replies.

A customer is the ``customer_id`` the shop gives a conversation (and its recommendation
customer id). What Annae holds about one, each exported and erased by the package that owns it:

* conversations and their messages (``annae.dialogue.customers``),
* consent events (``annae.privacy.consent``),
* the recommendation customer row and interactions (``annae.recommend.erase``),
* knowledge-base examples derived from their conversations: by convention an example's
  ``source`` is ``conversation:<conversation id>`` (optionally followed by ``/...``;
  ``annae.kb.entries.derived_examples``),
* models trained on those examples (answer engine manifests list ``example_ids``) or on
  their interactions (recommenders keep ``user_ids_``).

The packages above privacy are not imported here: each module of :data:`HOLDERS` registers a
:class:`Holder` when imported, and export and erasure import the ones not imported yet by name.

Erasure deletes the rows in one transaction, then marks affected models stale, retrains
the live ones without the data and deletes the stale model files. The audit log keeps
only a pseudonymous ``privacy.erase`` event with counts.
"""

from __future__ import annotations

import importlib
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from annae import errors
from annae.kb import entries
from annae.privacy import audit, consent, erasures
from annae.store.db import session_scope, utcnow
from annae.store.tables.privacy import ConsentEvent

if TYPE_CHECKING:
    from annae.store.tables.service import Message

STALE = "STALE.json"

HOLDERS = ("annae.dialogue.customers", "annae.privacy.consent", "annae.recommend.erase")
"""Every module that holds data about customers, in export order; each must register."""


class RightsError(errors.AnnaeError, ValueError):
    """A request about a data subject that cannot be carried out as asked."""

    status, code = 422, "bad_request"


class UnknownCustomer(errors.NotFound, RightsError):
    """Nothing is held about this customer (and no erasure of them is on record)."""


class AlreadyErased(errors.Conflict, RightsError):
    """The customer was erased before and nothing new is held about them."""


class UnknownMessage(errors.NotFound, RightsError):
    """No message to explain: none with that id, or a bot reply that answers no customer message."""


@dataclass
class Models:
    """The versions of one kind of model that learnt from a customer, and how to replace them."""

    name: str  # "answer engine", "recommender"
    prefix: str  # how the report names its versions: "" (v3), "recommend/" (recommend/v3)
    root: Path  # the folder of its versions
    versions: list[str]
    live: Callable[[], str | None]  # the live version now
    retrain: Callable[[Engine, str], tuple[str | None, str | None]]  # (db, actor) → (live, pending)

    @property
    def key(self) -> str:  # in an export
        return self.name.replace(" ", "_")


@dataclass(frozen=True)
class Holder:
    """What a package holds about customers, for export and erasure (each call gets a session)."""

    holds: Callable[[Session, str], bool]  # anything about the customer?
    export: Callable[[Session, str], dict]  # its part of the export, JSON-ready
    erase: Callable[[Session, str], dict[str, int]]  # deletes it: {ErasureReport count: n}
    customers: Callable[[Session], Iterable[str]]  # every customer id it holds anything about
    conversations: Callable[[Session, str], list[str]] | None = None  # their derived examples go
    models: Callable[[Path, str], Models] | None = None  # (models folder, customer id)
    # retention: deletes transcripts older than a cutoff → (conversations, messages, stats)
    expire: Callable[[Session, datetime], tuple[int, int, dict[str, dict[str, int]]]] | None = None
    # explanations: (customer message, bot reply) from either one's id
    exchange: Callable[[Session, int], tuple[Message | None, Message | None]] | None = None


_REGISTERED: dict[str, Holder] = {}


def register(module: str, holder: Holder) -> None:
    """What each module of :data:`HOLDERS` calls on import: ``register(__name__, Holder(...))``."""
    _REGISTERED[module] = holder


def holders() -> list[Holder]:
    """The holder of every module in :data:`HOLDERS` (imported by name if it is not yet)."""
    for module in HOLDERS:
        if module not in _REGISTERED:
            importlib.import_module(module)
        if module not in _REGISTERED:
            raise RuntimeError(f"{module} did not register with annae.privacy.rights")
    return [_REGISTERED[module] for module in HOLDERS]


register(
    "annae.privacy.consent",
    Holder(
        holds=lambda session, customer_id: bool(consent.history(session, customer_id)),
        export=lambda session, customer_id: {
            "consents": [consent.to_dict(ev) for ev in consent.history(session, customer_id)],
            "consent_now": consent.status(session, customer_id),
        },
        erase=lambda session, customer_id: {"consents": consent.erase(session, customer_id)},
        customers=lambda session: session.scalars(select(ConsentEvent.customer_id).distinct()),
    ),
)


def _check_id(customer_id: object) -> str:
    if not isinstance(customer_id, str) or not customer_id.strip() or len(customer_id) > 200:
        raise RightsError(
            f"customer id must be a non-empty string of at most 200 characters, got {customer_id!r}"
        )
    return customer_id.strip()


def _conversations(session: Session, customer_id: str, held: list[Holder]) -> list[str]:
    return [c for h in held if h.conversations for c in h.conversations(session, customer_id)]


def _models(settings, customer_id: str, example_ids: set[int], held: list[Holder]) -> list[Models]:
    """The answer engine versions whose manifest lists one of ``example_ids``, then the holders'."""
    from annae.nlu.registry import ModelRegistry

    reg = ModelRegistry(settings.models_dir)
    hit = []
    for version in reg.versions() if example_ids else []:
        ids = reg.manifest(version).get("data", {}).get("example_ids") or []
        if example_ids & set(ids):
            hit.append(version)

    def retrain(db: Engine, actor: str) -> tuple[str | None, str | None]:
        from annae.kb.training import train_from_db

        author = f"privacy-erase:{actor}"
        return train_from_db(reg, db, settings=settings, author=author).version, None

    engine = Models("answer engine", "", reg.root, hit, reg.live_version, retrain)
    return [engine] + [h.models(settings.models_dir, customer_id) for h in held if h.models]


def _settings(settings):
    if settings is None:
        from annae.settings import get_settings

        settings = get_settings()
    return settings


# --- export -----------------------------------------------------------------------------------


def export_customer(session: Session, customer_id: str, *, settings=None) -> dict:
    """Everything held about ``customer_id`` as a JSON-ready dict (``found`` is False if nothing)."""
    customer_id = _check_id(customer_id)
    settings = _settings(settings)
    held = holders()
    parts: dict = {}
    for holder in held:
        parts.update(holder.export(session, customer_id))
    derived = entries.derived_examples(session, _conversations(session, customer_id, held))
    models = _models(settings, customer_id, {ex["id"] for ex in derived}, held)
    ref = audit.customer_ref(customer_id, settings.home)
    trail = [audit.to_dict(ev) for ev in audit.query(session, target=ref, limit=10_000)]
    return {
        "customer_id": customer_id,
        "found": any(holder.holds(session, customer_id) for holder in held),
        "exported_at": utcnow().isoformat(),
        **parts,
        "derived_examples": derived,
        "models": {m.key: m.versions for m in models},
        "audit": trail,
    }


# --- erasure ----------------------------------------------------------------------------------


@dataclass
class ErasureReport:
    """What an erasure removed and which models it touched (no content)."""

    customer_ref: str
    conversations: int = 0
    messages: int = 0
    consents: int = 0
    interactions: int = 0
    examples: int = 0
    stale_models: list[str] = field(default_factory=list)
    stale_recommenders: list[str] = field(default_factory=list)
    retrained: str | None = None
    retrained_recommender: str | None = None
    purged: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# the report's counts of deleted rows (the audit event keeps them)
_COUNTS = ("conversations", "messages", "consents", "interactions", "examples")
# the report's fields for each kind of model: its stale versions, its new live version
_REPORTED = {
    "answer_engine": ("stale_models", "retrained"),
    "recommender": ("stale_recommenders", "retrained_recommender"),
}


def _mark_stale(path: Path, reason: str) -> None:
    (path / STALE).write_text(
        json.dumps({"stale": True, "reason": reason, "at": utcnow().isoformat()})
    )


def erase_customer(
    db: Engine,
    customer_id: str,
    *,
    actor: str,
    settings=None,
    retrain: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ErasureReport:
    """Delete everything held about ``customer_id``; retrain models that learnt from it.

    The rows go in one transaction (with the audit event): on any error nothing is deleted.
    Models are handled after the commit: every version trained on the data gets a
    ``STALE.json``; with ``retrain`` the live answer engine / recommender is retrained without
    the data and every stale version is deleted from disk. Without ``retrain`` the stale live
    versions stay (listed in ``pending``) until the next retrain.
    """
    say = progress or (lambda _msg: None)
    customer_id = _check_id(customer_id)
    settings = _settings(settings)
    ref = audit.customer_ref(customer_id, settings.home)
    report = ErasureReport(customer_ref=ref)
    held = holders()
    say("finding the customer's data")
    with session_scope(db) as session:
        conv_ids = _conversations(session, customer_id, held)
        if not any(holder.holds(session, customer_id) for holder in held):
            before = audit.query(session, action="privacy.erase", target=ref, limit=1)
            if before:
                raise AlreadyErased(
                    f"customer {customer_id!r} was erased at {audit.to_dict(before[0])['at']}; nothing new is held"
                )
            raise UnknownCustomer(f"nothing is held about customer {customer_id!r}")
        say("deleting rows")
        for holder in held:
            for name, count in holder.erase(session, customer_id).items():
                setattr(report, name, getattr(report, name) + count)
        author = f"privacy-erase:{actor}"
        example_ids = entries.delete_derived_examples(session, conv_ids, author=author)
        report.examples = len(example_ids)
        counts = {name: getattr(report, name) for name in _COUNTS}
        audit.record(session, actor, "privacy.erase", ref, counts)
    # outside the database, so that restoring an older backup cannot bring the customer back
    erasures.append(erasures.log_path(settings), ref, utcnow())

    say("checking models")
    models = _models(settings, customer_id, set(example_ids), held)
    for m in models:
        setattr(report, _REPORTED[m.key][0], m.versions)
        for version in m.versions:
            _mark_stale(m.root / version, "trained on data of an erased customer")
    for m in models:
        if (live := m.live()) not in m.versions:
            continue
        if not retrain:
            report.pending.append(f"{m.name} {live}")
            continue
        say(f"retraining the {m.name} without the erased data")
        new_live, pending = m.retrain(db, actor)
        setattr(report, _REPORTED[m.key][1], new_live)
        report.pending += [pending] if pending else []
    if retrain:
        for m in models:
            for version in m.versions:
                if version != m.live():
                    shutil.rmtree(m.root / version, ignore_errors=True)
                    report.purged.append(m.prefix + version)
    return report


# --- retention --------------------------------------------------------------------------------


def retain(db: Engine, *, days: int, actor: str = "retention") -> dict:
    """Delete transcripts whose last activity is older than ``days``; keep anonymous counts.

    Conversations still waiting for or talking with an agent are kept whatever their age.
    Returns (and audits) the counts per channel, language and state, with no ids or text.
    """
    if not isinstance(days, int) or isinstance(days, bool) or days < 1:
        raise RightsError(f"days must be a positive integer, got {days!r}")
    cutoff = utcnow() - timedelta(days=days)
    with session_scope(db) as session:
        (expire,) = [h.expire for h in holders() if h.expire is not None]  # the transcripts'
        convs, messages, stats = expire(session, cutoff)
        result = {
            "days": days,
            "cutoff": cutoff.isoformat(),
            "conversations": convs,
            "messages": messages,
        }
        # the audit log takes at most 50 details: the totals and the first 40 per-value counts
        by_value = {f"{k}:{v}": n for k, c in stats.items() for v, n in c.items()}
        details = {
            "conversations": convs,
            "messages": messages,
            **dict(list(by_value.items())[:40]),
        }
        audit.record(session, actor, "privacy.retain", f"older-than:{days}d", details)
    return {**result, "stats": stats}


# --- explanations -----------------------------------------------------------------------------


def explain(session: Session, message_id: int, *, settings=None) -> dict:
    """How the bot handled a customer message (or the message a bot reply answered).

    Returns the stored decision, the model's training facts and a one-line summary such as
    "answered with entry 12 at 0.93 ≥ threshold 0.71, model v7 trained on KB revision 31 with
    2,304 examples".
    """
    from annae.nlu.registry import ModelRegistry

    settings = _settings(settings)
    (exchange,) = [h.exchange for h in holders() if h.exchange is not None]  # the transcripts'
    msg, reply = exchange(session, message_id)
    if msg is None:
        if reply is None:
            raise UnknownMessage(f"no message with id {message_id!r}")
        raise UnknownMessage(f"message {message_id} answers no customer message")
    decision = dict(msg.decision or {})
    version = decision.get("model_version")
    model: dict = {"version": version}
    if version:
        reg = ModelRegistry(settings.models_dir)
        try:
            manifest = reg.manifest(version)
        except (FileNotFoundError, ValueError):
            model["missing"] = True
        else:
            data = manifest.get("data", {})
            model.update(kb_revision=manifest.get("kb_revision"), n_examples=data.get("n_examples"),
                         data_hash=data.get("hash"), stale=(reg.path(version) / STALE).exists())  # fmt: skip
    return {
        "message_id": msg.id,
        "reply_id": reply.id if reply is not None else None,
        "conversation_id": msg.conversation_id,
        "decision": decision,
        "model": model,
        "summary": _summary(decision, model, msg),
    }


def _summary(decision: dict, model: dict, msg: Message) -> str:
    kind = decision.get("type")
    if msg.type == "choice":
        return f"the customer picked entry {msg.entry_id} from the clarify options"
    if decision.get("handoff_requested"):
        return "the customer asked for a person"
    if kind is None:
        return "no model was live: the conversation went to a person"
    conf, thr = float(decision.get("confidence") or 0.0), decision.get("threshold")
    digits = 2 if thr is None or f"{conf:.2f}" != f"{float(thr):.2f}" else 4  # 0.9994 < 1.0000
    conf_s = f"{conf:.{digits}f}"
    thr_s = f"{float(thr):.{digits}f}" if thr is not None else "?"
    trained = ""
    if model.get("version"):
        trained = f", model {model['version']}"
        if model.get("kb_revision") is not None:
            trained += f" trained on KB revision {model['kb_revision']}"
        if model.get("n_examples") is not None:
            trained += f" with {model['n_examples']:,} examples"
    if kind == "answer":
        by = " by the Korean fast path (lexical features alone, e5 not run)"
        by = by if decision.get("scorer") == "lexical" else ""
        return f"answered with entry {decision.get('entry_id')} at {conf_s} ≥ threshold {thr_s}{by}{trained}"
    if kind == "clarify":
        keys = ", ".join(str(c.get("entry_id")) for c in decision.get("candidates") or [])
        return f"asked to choose between entries {keys}: best {conf_s} < threshold {thr_s}{trained}"
    reason = decision.get("reason") or "low_confidence"
    return f"handed off to a person ({reason}): best {conf_s}, threshold {thr_s}{trained}"
