"""Rights of the data subject: export and erasure, retention, and explanations of bot replies.

A customer is the ``customer_id`` the shop gives a conversation (and its recommendation
customer id). What Annae holds about one:

* conversations and their messages (``annae.dialogue.conversations``),
* consent events (``annae.privacy.consent``),
* the recommendation customer row and interactions (``annae.recommend``),
* knowledge-base examples derived from their conversations: by convention an example's
  ``source`` is ``conversation:<conversation id>`` (optionally followed by ``/...``),
* models trained on those examples (answer engine manifests list ``example_ids``) or on
  their interactions (recommenders keep ``user_ids_``).

Erasure deletes the rows in one transaction, then marks affected models stale, retrains
the live ones without the data and deletes the stale model files. The audit log keeps
only a pseudonymous ``privacy.erase`` event with counts.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from annae import errors
from annae.privacy import audit, consent, erasures
from annae.store.db import iso, session_scope, utcnow
from annae.store.tables.kb import KBExample
from annae.store.tables.recommend import RecCustomer, RecInteraction
from annae.store.tables.service import Conversation, Message

CONVERSATION_SOURCE = "conversation:"
STALE = "STALE.json"


class RightsError(errors.AnnaeError, ValueError):
    """A request about a data subject that cannot be carried out as asked."""

    status, code = 422, "bad_request"


class UnknownCustomer(RightsError, errors.NotFound):
    """Nothing is held about this customer (and no erasure of them is on record)."""

    status, code = 404, "not_found"


class AlreadyErased(RightsError, errors.Conflict):
    """The customer was erased before and nothing new is held about them."""

    status, code = 409, "conflict"


def _check_id(customer_id: object) -> str:
    if not isinstance(customer_id, str) or not customer_id.strip() or len(customer_id) > 200:
        raise RightsError(
            f"customer id must be a non-empty string of at most 200 characters, got {customer_id!r}"
        )
    return customer_id.strip()


def _conversation_ids(session: Session, customer_id: str) -> list[str]:
    stmt = (
        select(Conversation.id)
        .where(Conversation.customer_id == customer_id)
        .order_by(Conversation.created_at)
    )
    return list(session.scalars(stmt))


def conversation_of(source: str) -> str | None:
    """The conversation id an example ``source`` points at, if any."""
    if not source.startswith(CONVERSATION_SOURCE):
        return None
    return source[len(CONVERSATION_SOURCE) :].split("/", 1)[0] or None


def _derived_examples(session: Session, conv_ids: list[str]) -> list[KBExample]:
    if not conv_ids:
        return []
    wanted = set(conv_ids)
    rows = session.scalars(
        select(KBExample).where(KBExample.source.startswith(CONVERSATION_SOURCE))
    )
    return [ex for ex in rows if conversation_of(ex.source) in wanted]


def _nlu_versions_with(models_dir: Path, example_ids: set[int]) -> list[str]:
    from annae.nlu.registry import ModelRegistry

    if not example_ids:
        return []
    reg = ModelRegistry(models_dir)
    hit = []
    for version in reg.versions():
        ids = reg.manifest(version).get("data", {}).get("example_ids") or []
        if example_ids & set(ids):
            hit.append(version)
    return hit


def _rec_versions_with(models_dir: Path, customer_id: str) -> list[str]:
    import joblib

    root = models_dir / "recommend"
    if not root.exists():
        return []
    hit = []
    for path in sorted(root.glob("v*")):
        model_file = path / "model.joblib"
        if not model_file.exists():
            continue
        model = joblib.load(model_file)
        if customer_id in {str(u) for u in getattr(model, "user_ids_", [])}:
            hit.append(path.name)
    return hit


def _settings(settings):
    if settings is None:
        from annae.settings import get_settings

        settings = get_settings()
    return settings


# --- export -----------------------------------------------------------------------------------


def export_customer(session: Session, customer_id: str, *, settings=None) -> dict:
    """Everything held about ``customer_id`` as a JSON-ready dict (``found`` is False if nothing)."""
    from annae.dialogue import conversations

    customer_id = _check_id(customer_id)
    settings = _settings(settings)
    conv_ids = _conversation_ids(session, customer_id)
    convs = []
    for conv_id in conv_ids:
        conv = conversations.get(session, conv_id)
        convs.append(
            {
                **conversations.summary_dict(session, conv),
                "messages": conversations.messages(session, conv_id, with_decision=True),
            }
        )
    derived = _derived_examples(session, conv_ids)
    examples = [
        {
            "id": ex.id,
            "entry_id": ex.entry_id,
            "text": ex.text,
            "language": ex.language,
            "source": ex.source,
        }
        for ex in derived
    ]
    rec = session.get(RecCustomer, customer_id)
    interactions = [
        {
            "product_id": r.product_id,
            "at": iso(r.at),
            "quantity": r.quantity,
            "kind": r.kind,
            "source": r.source,
        }
        for r in session.scalars(
            select(RecInteraction)
            .where(RecInteraction.customer_id == customer_id)
            .order_by(RecInteraction.at)
        )
    ]
    consents = [consent.to_dict(ev) for ev in consent.history(session, customer_id)]
    ref = audit.customer_ref(customer_id, settings.home)
    trail = [audit.to_dict(ev) for ev in audit.query(session, target=ref, limit=10_000)]
    found = bool(convs or examples or rec or interactions or consents)
    return {
        "customer_id": customer_id,
        "found": found,
        "exported_at": utcnow().isoformat(),
        "conversations": convs,
        "consents": consents,
        "consent_now": consent.status(session, customer_id),
        "recommendation_profile": (
            {"name": rec.name, "country": rec.country, "created_at": iso(rec.created_at)}
            if rec
            else None
        ),
        "interactions": interactions,
        "derived_examples": examples,
        "models": {
            "answer_engine": _nlu_versions_with(settings.models_dir, {ex.id for ex in derived}),
            "recommender": _rec_versions_with(settings.models_dir, customer_id),
        },
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
    from annae.nlu.registry import ModelRegistry
    from annae.recommend.registry import registry_for

    say = progress or (lambda _msg: None)
    customer_id = _check_id(customer_id)
    settings = _settings(settings)
    ref = audit.customer_ref(customer_id, settings.home)
    report = ErasureReport(customer_ref=ref)
    say("finding the customer's data")
    with session_scope(db) as session:
        conv_ids = _conversation_ids(session, customer_id)
        derived = _derived_examples(session, conv_ids)
        example_ids = {ex.id for ex in derived}
        n_interactions = session.scalar(
            select(func.count())
            .select_from(RecInteraction)
            .where(RecInteraction.customer_id == customer_id)
        )
        rec = session.get(RecCustomer, customer_id)
        n_consents = len(consent.history(session, customer_id))
        if not (conv_ids or derived or rec or n_interactions or n_consents):
            before = audit.query(session, action="privacy.erase", target=ref, limit=1)
            if before:
                raise AlreadyErased(
                    f"customer {customer_id!r} was erased at {audit.to_dict(before[0])['at']}; nothing new is held"
                )
            raise UnknownCustomer(f"nothing is held about customer {customer_id!r}")
        say("deleting rows")
        if conv_ids:
            report.messages = (
                session.execute(
                    delete(Message).where(Message.conversation_id.in_(conv_ids))
                ).rowcount
                or 0
            )
            report.conversations = (
                session.execute(delete(Conversation).where(Conversation.id.in_(conv_ids))).rowcount
                or 0
            )
        if derived:
            from annae.kb import entries

            for ex in derived:
                entries.delete_example(session, ex.id, author=f"privacy-erase:{actor}")
            report.examples = len(derived)
        report.interactions = (
            session.execute(
                delete(RecInteraction).where(RecInteraction.customer_id == customer_id)
            ).rowcount
            or 0
        )
        if rec is not None:
            session.delete(rec)
        report.consents = consent.erase(session, customer_id)
        audit.record(
            session,
            actor,
            "privacy.erase",
            ref,
            {
                "conversations": report.conversations,
                "messages": report.messages,
                "consents": report.consents,
                "interactions": report.interactions,
                "examples": report.examples,
            },
        )
    # outside the database, so that restoring an older backup cannot bring the customer back
    erasures.append(erasures.log_path(settings), ref, utcnow())

    say("checking models")
    nlu = ModelRegistry(settings.models_dir)
    report.stale_models = _nlu_versions_with(settings.models_dir, example_ids)
    for version in report.stale_models:
        _mark_stale(nlu.path(version), "trained on data of an erased customer")
    rec_reg = registry_for(settings.models_dir)
    report.stale_recommenders = _rec_versions_with(settings.models_dir, customer_id)
    for version in report.stale_recommenders:
        _mark_stale(rec_reg.root / version, "trained on data of an erased customer")

    if nlu.live_version() in report.stale_models:
        if retrain:
            from annae.kb.training import train_from_db

            say("retraining the answer engine without the erased data")
            report.retrained = train_from_db(
                nlu, db, settings=settings, author=f"privacy-erase:{actor}"
            ).version
        else:
            report.pending.append(f"answer engine {nlu.live_version()}")
    if rec_reg.live_version() in report.stale_recommenders:
        if retrain:
            from annae.recommend.data import ImportFileError, require_pandas
            from annae.recommend.store import RecommendError

            say("retraining the recommender without the erased data")
            try:
                require_pandas("retraining the recommender")
                from annae.recommend.train import train_from_db as train_rec

                report.retrained_recommender = train_rec(db, settings.models_dir).version
            except RecommendError:  # no interactions left: no recommender beats a stale one
                (rec_reg.root / "LIVE").unlink(missing_ok=True)
            except ImportFileError as exc:  # a serving-only install cannot retrain it here
                (rec_reg.root / "LIVE").unlink(missing_ok=True)
                report.pending.append(f"recommender: none is live until `annae rec train` ({exc})")
        else:
            report.pending.append(f"recommender {rec_reg.live_version()}")

    if retrain:
        for version in report.stale_models:
            if version != nlu.live_version():
                shutil.rmtree(nlu.path(version), ignore_errors=True)
                report.purged.append(version)
        for version in report.stale_recommenders:
            if version != rec_reg.live_version():
                shutil.rmtree(rec_reg.root / version, ignore_errors=True)
                report.purged.append(f"recommend/{version}")
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
        old = list(
            session.execute(
                select(
                    Conversation.id, Conversation.channel, Conversation.language, Conversation.state
                ).where(
                    Conversation.updated_at < cutoff, Conversation.state.in_(("bot", "resolved"))
                )
            )
        )
        ids = [row.id for row in old]
        stats: dict[str, dict[str, int]] = {"channel": {}, "language": {}, "state": {}}
        for row in old:
            for key in stats:
                value = getattr(row, key) or "unknown"
                stats[key][value] = stats[key].get(value, 0) + 1
        messages = 0
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            messages += (
                session.execute(delete(Message).where(Message.conversation_id.in_(chunk))).rowcount
                or 0
            )
            session.execute(delete(Conversation).where(Conversation.id.in_(chunk)))
        result = {
            "days": days,
            "cutoff": cutoff.isoformat(),
            "conversations": len(ids),
            "messages": messages,
        }
        audit.record(
            session,
            actor,
            "privacy.retain",
            f"older-than:{days}d",
            {
                "conversations": len(ids),
                "messages": messages,
                **dict(
                    list({f"{k}:{v}": n for k, c in stats.items() for v, n in c.items()}.items())[
                        :40
                    ]
                ),
            },
        )
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
    msg = session.get(Message, message_id) if isinstance(message_id, int) else None
    if msg is None:
        raise RightsError(f"no message with id {message_id!r}")
    if msg.sender != "customer":
        question = session.scalar(
            select(Message)
            .where(
                Message.conversation_id == msg.conversation_id,
                Message.id < msg.id,
                Message.sender == "customer",
            )
            .order_by(Message.id.desc())
            .limit(1)
        )
        if question is None:
            raise RightsError(f"message {message_id} answers no customer message")
        reply, msg = msg, question
    else:
        reply = session.scalar(
            select(Message)
            .where(
                Message.conversation_id == msg.conversation_id,
                Message.id > msg.id,
                Message.sender == "bot",
            )
            .order_by(Message.id)
            .limit(1)
        )
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
        return f"answered with entry {decision.get('entry_id')} at {conf_s} ≥ threshold {thr_s}{trained}"
    if kind == "clarify":
        keys = ", ".join(str(c.get("entry_id")) for c in decision.get("candidates") or [])
        return f"asked to choose between entries {keys}: best {conf_s} < threshold {thr_s}{trained}"
    reason = decision.get("reason") or "low_confidence"
    return f"handed off to a person ({reason}): best {conf_s}, threshold {thr_s}{trained}"
