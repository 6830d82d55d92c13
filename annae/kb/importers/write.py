"""Writing: validate the parsed file against the stored knowledge base, then write it once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from annae.kb.entries import OOS, KBData
from annae.kb.importers.builder import KBImportError, Problem, _norm
from annae.kb.importers.parse import parse_file


@dataclass
class ImportResult:
    """What an import changed in the knowledge base: a real diff, entry by entry."""

    added: list[str]
    updated: list[str]  # entries that changed (see ``changed`` for the fields)
    removed: list[str]
    examples_before: int
    examples_after: int
    oos_before: int
    oos_after: int
    revision: int
    languages: dict[str, int]
    dry_run: bool = False
    changed: dict[str, list[str]] = field(default_factory=dict)  # key → changed fields
    unchanged: list[str] = field(default_factory=list)
    reverted: list[str] = field(default_factory=list)  # newer stored edits overwritten (forced)


FIELDS = ("question", "answer", "language", "tags", "active")


def diff_entries(stored: KBData, data: KBData) -> tuple[dict[str, list[str]], list[str]]:
    """For entries in both: key → the fields the file changes (``examples`` when it adds some),
    and the keys it leaves as they are."""
    have = {e.key: e for e in stored.entries}
    changed: dict[str, list[str]] = {}
    unchanged: list[str] = []
    for new in data.entries:
        old = have.get(new.key)
        if old is None:
            continue
        fields = [f for f in FIELDS if getattr(old, f) != getattr(new, f)]
        known = set(old.examples)
        if any(t not in known for t in new.examples if t != new.question):
            fields.append("examples")
        if fields:
            changed[new.key] = fields
        else:
            unchanged.append(new.key)
    return changed, unchanged


def would_revert(
    stored: KBData, data: KBData, changed: dict[str, list[str]]
) -> list[tuple[str, str, str]]:
    """Entries the file would change although they were edited after the file was written:
    ``(key, stored updated_at, file's time)``. The file's time is the entry's ``updated_at``
    in the file, else the export's ``exported_at``; files without either cannot be checked."""
    have = {e.key: e for e in stored.entries}
    out = []
    for new in data.entries:
        fields = [f for f in changed.get(new.key, []) if f != "examples"]
        old = have.get(new.key)
        stamp = new.updated_at or data.exported_at
        if not fields or old is None or not old.updated_at or not stamp:
            continue
        if datetime.fromisoformat(old.updated_at) > datetime.fromisoformat(stamp):
            out.append((new.key, old.updated_at, stamp))
    return out


class RevertError(KBImportError):
    """The file is older than edits it would overwrite; nothing was written."""


def _counts(data: KBData) -> tuple[set[str], int, int]:
    return (
        {e.key for e in data.entries},
        sum(len(e.examples) for e in data.entries),
        len(data.oos_examples),
    )


def _where(source: str, path: Path) -> str:
    return source.removeprefix("import:") if source.startswith("import:") else path.name


def conflicts_with_stored(stored: KBData, data: KBData, path: Path) -> list[Problem]:
    """Example questions in ``data`` that the stored KB already has under another entry."""
    owner: dict[str, str] = {}
    for e in stored.entries:
        for text in e.examples:
            owner.setdefault(_norm(text), e.key)
    for text in stored.oos_examples:
        owner.setdefault(_norm(text), OOS)
    incoming = [
        (e.key, t, s) for e in data.entries for t, s in zip(e.examples, e.sources, strict=False)
    ]
    incoming += [(OOS, t, s) for t, s in zip(data.oos_examples, data.oos_sources, strict=False)]
    return [
        (_where(source, path), f"{text[:60]!r} is already an example of the stored entry {other!r}")
        for key, text, source in incoming
        if (other := owner.get(_norm(text))) is not None and other != key
    ]


def import_kb(
    engine,
    path: Path | str,
    *,
    answers: Path | str | None = None,
    fmt: str | None = None,
    replace: bool = False,
    author: str = "import",
    dry_run: bool = False,
    overwrite_newer: bool = False,
) -> ImportResult:
    """Parse and validate ``path``, then write it in one transaction (all or nothing).

    With ``dry_run`` the changes are made, counted and rolled back.

    Without ``replace``, an example question that the stored KB already has under a
    different entry is a problem too (the classifier would learn it both ways).

    A file older than edits it would overwrite (an entry's ``updated_at`` in the knowledge base
    is later than the file's, see :func:`would_revert`) raises :class:`RevertError` before
    anything is written, unless ``overwrite_newer``.
    """
    from annae.kb.entries import dump_kb, load_kb
    from annae.store.db import session_scope

    path = Path(path)
    data = parse_file(path, answers=answers, fmt=fmt)
    with session_scope(engine) as session:
        stored = dump_kb(session)
        if not replace and (problems := conflicts_with_stored(stored, data, path)):
            raise KBImportError(path, problems)
        changed, unchanged = diff_entries(stored, data)
        stale = would_revert(stored, data, changed)
        if stale and not overwrite_newer:
            raise RevertError(
                path,
                [
                    (
                        key,
                        f"changed at {then} in the knowledge base, after this file ({stamp}): "
                        f"importing would revert {', '.join(changed[key])} "
                        "(export again, or import with --overwrite-newer)",
                    )
                    for key, then, stamp in stale
                ],
            )
        before_keys, ex_before, oos_before = _counts(stored)
        revision = load_kb(
            session, data, replace=replace, author=author, summary=f"import {path.name}"
        )
        session.flush()
        session.expire_all()
        _, ex_after, oos_after = _counts(dump_kb(session))
        if dry_run:
            session.rollback()
    keys = [e.key for e in data.entries]
    languages = dict(Counter(e.language for e in data.entries))
    return ImportResult(
        added=[k for k in keys if k not in before_keys],
        updated=[k for k in keys if k in changed],
        removed=sorted(before_keys - set(keys)) if replace else [],
        examples_before=ex_before, examples_after=ex_after,
        oos_before=oos_before, oos_after=oos_after,
        revision=revision, languages=languages, dry_run=dry_run,
        changed=changed, unchanged=unchanged, reverted=[k for k, _, _ in stale],
    )  # fmt: skip
