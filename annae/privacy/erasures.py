"""The erasure log: which customers were erased and when, kept outside the database.

A backup holds the database as it was; restoring it would bring back a customer erased after
the backup was taken. Every erasure therefore also appends one line to this log (a JSON object
with the time and the keyed pseudonym ``customer:<hmac>`` of :func:`annae.privacy.audit.customer_ref`,
never the id itself), and ``annae restore`` erases again every restored customer whose pseudonym
is in the log with a later time. Keep the log where a restore does not roll it back
(``ANNAE_ERASURE_LOG``, default ``ANNAE_HOME/erasures.jsonl``; backups carry a copy too).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from annae.privacy import audit


@dataclass(frozen=True)
class Erasure:
    at: datetime
    ref: str


def log_path(settings) -> Path:
    return Path(settings.erasure_log) if settings.erasure_log else settings.home / "erasures.jsonl"


def append(path: Path, ref: str, at: datetime) -> None:
    """Add one erasure (flushed and fsynced: it is the record that outlives restores)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"at": at.isoformat(), "ref": ref}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read(paths: Iterable[Path]) -> list[Erasure]:
    """The erasures in every existing log of ``paths`` (duplicates kept once), oldest first."""
    seen: set[tuple[str, str]] = set()
    out = []
    for path in paths:
        if not Path(path).is_file():
            continue
        for number, line in enumerate(Path(path).read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                item = Erasure(datetime.fromisoformat(row["at"]), str(row["ref"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not an erasure log line ({exc})") from exc
            if (row["at"], item.ref) not in seen:
                seen.add((row["at"], item.ref))
                out.append(item)
    return sorted(out, key=lambda e: e.at)


def customers_by_ref(session: Session, home: Path) -> dict[str, str]:
    """``{pseudonym: customer id}`` for every customer the database holds anything about."""
    from annae.privacy.rights import holders  # rights writes this log

    ids = {cid for holder in holders() for cid in holder.customers(session) if cid}
    return {audit.customer_ref(cid, home): cid for cid in ids}


__all__ = ["Erasure", "append", "customers_by_ref", "log_path", "read"]
