"""The PII test corpus (``pii_corpus.jsonl``) and span-level scoring of the redactor.

Matching rules (per type, one-to-one):

* **exact**: a detection counts only if type, start and end all equal the annotation;
* **overlap**: a detection counts if it has the annotation's type and shares at least
  one character with it (each annotation and detection is used once);
* **protected**: an annotation whose every character ends up under *some* placeholder,
  whatever its type -- the share of personal data that never reaches storage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from annae.privacy.redact import TYPES, Span, detect

CORPUS = Path(__file__).with_name("pii_corpus.jsonl")
STRUCTURED = ("EMAIL", "PHONE", "CARD", "RRN", "IP")


def load_corpus(path: Path = CORPUS) -> list[dict]:
    """The annotated sentences: ``{"id", "lang", "kind", "text", "spans": [{type,start,end}]}``."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            row["gold"] = [Span(s["type"], s["start"], s["end"]) for s in row["spans"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: bad corpus line ({exc})") from exc
        rows.append(row)
    return rows


@dataclass
class TypeScore:
    """Counts for one PII type."""

    gold: int = 0
    predicted: int = 0
    exact: int = 0
    overlap: int = 0
    protected: int = 0

    @staticmethod
    def _ratio(a: int, b: int) -> float:
        return a / b if b else 1.0

    @property
    def recall(self) -> float:
        return self._ratio(self.exact, self.gold)

    @property
    def precision(self) -> float:
        return self._ratio(self.exact, self.predicted)

    @property
    def recall_overlap(self) -> float:
        return self._ratio(self.overlap, self.gold)

    @property
    def precision_overlap(self) -> float:
        return self._ratio(self.overlap, self.predicted)

    @property
    def protected_share(self) -> float:
        return self._ratio(self.protected, self.gold)


@dataclass
class Score:
    """Per-type scores plus the sentence-level errors, for reports and tests."""

    types: dict[str, TypeScore] = field(default_factory=lambda: {t: TypeScore() for t in TYPES})
    sentences: int = 0
    near_miss_sentences: int = 0
    near_miss_flagged: int = 0
    errors: list[dict] = field(default_factory=list)


def _overlap_matches(gold: list[Span], pred: list[Span]) -> int:
    used: set[int] = set()
    hits = 0
    for g in gold:
        for i, p in enumerate(pred):
            if i not in used and p.type == g.type and p.start < g.end and g.start < p.end:
                used.add(i)
                hits += 1
                break
    return hits


def score(rows: list[dict]) -> Score:
    """Run the redactor over ``rows`` and count matches per type."""
    result = Score()
    for row in rows:
        text, gold = row["text"], row["gold"]
        pred = detect(text)
        result.sentences += 1
        if row.get("kind") == "near-miss":
            result.near_miss_sentences += 1
            result.near_miss_flagged += bool(pred)
        covered: set[int] = set()
        for span in pred:
            covered.update(range(span.start, span.end))
        for kind in TYPES:
            g = [s for s in gold if s.type == kind]
            p = [s for s in pred if s.type == kind]
            ts = result.types[kind]
            ts.gold += len(g)
            ts.predicted += len(p)
            ts.exact += len(set(g) & set(p))
            ts.overlap += _overlap_matches(g, p)
            ts.protected += sum(all(i in covered for i in range(s.start, s.end)) for s in g)
        if set(gold) != set(pred):
            result.errors.append(
                {
                    "id": row["id"],
                    "text": text,
                    "missed": [(s.type, text[s.start : s.end]) for s in set(gold) - set(pred)],
                    "extra": [(s.type, text[s.start : s.end]) for s in set(pred) - set(gold)],
                }
            )
    return result
