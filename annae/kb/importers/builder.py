"""What every reader shares: the limits, :class:`KBImportError`, and :class:`_Builder`, which
collects entries and problems while a file is read and raises only once all of it is read."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from annae.kb.entries import OOS, EntryData, KBData
from annae.nlu.text import detect_language

MAX_QUESTION_CHARS = 1000  # a question, example question or out-of-scope example
MAX_ANSWER_CHARS = 20_000
MAX_KEY_CHARS = 200
MAX_TAG_CHARS = 100
SHOWN_PROBLEMS = 20

OOS_LABELS = {OOS, "out_of_scope", "nlu_fallback"}
_LANGUAGES = {
    "ko": "ko", "kr": "ko", "kor": "ko", "korean": "ko", "한국어": "ko", "ko-kr": "ko", "ko_kr": "ko",
    "en": "en", "eng": "en", "english": "en", "영어": "en", "en-us": "en", "en_us": "en", "en-gb": "en",
}  # fmt: skip
_TRUE = {"", "1", "true", "yes", "y", "t", "on", "active"}
_FALSE = {"0", "false", "no", "n", "f", "off", "inactive"}

Problem = tuple[str | None, str]


class KBImportError(ValueError):
    """A file that cannot be imported; ``problems`` lists ``(location, reason)`` pairs."""

    def __init__(self, path: Path | str, problems: Iterable[Problem]):
        self.path = Path(path)
        self.problems: list[Problem] = list(problems)
        n = len(self.problems)
        lines = [f"{self.path.name}: {n} problem{'s' if n != 1 else ''}, nothing was imported"]
        for where, reason in self.problems[:SHOWN_PROBLEMS]:
            lines.append(f"  {where or self.path.name}: {reason}")
        if n > SHOWN_PROBLEMS:
            lines.append(f"  ... and {n - SHOWN_PROBLEMS} more")
        super().__init__("\n".join(lines))


def slugify(text: str, max_len: int = 60) -> str:
    """A key from a question: lower-case words (Hangul kept) joined by ``_``."""
    slug = re.sub(r"[^\w]+", "_", unicodedata.normalize("NFC", text).lower()).strip("_")
    return slug[:max_len].rstrip("_") or "entry"


def _norm(text: str) -> str:
    """How texts are compared for duplicates: case-folded, single spaces."""
    return " ".join(text.casefold().split())


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class _Draft:
    entry: EntryData
    where: str
    locs: list[str] = field(default_factory=list)


class _Builder:
    """Collects entries, out-of-scope examples and problems while a file is read."""

    def __init__(self, path: Path):
        self.path = path
        self.problems: list[Problem] = []
        self.drafts: dict[str, _Draft] = {}
        self.oos: list[str] = []
        self.oos_sources: list[str] = []
        self.oos_locs: list[str] = []
        self.exported_at: str | None = None

    # locations and provenance
    def loc(self, line: int | None, path: Path | None = None) -> str:
        name = (path or self.path).name
        return f"{name}:{line}" if line else name

    def source(self, line: int | None, path: Path | None = None) -> str:
        return f"import:{(path or self.path).name}:{line or 0}"

    def stamp(self, value: object, where: str) -> str | None:
        """An ``updated_at``/``exported_at`` cell: ISO 8601 (UTC when no zone), or empty."""
        text = _cell(value).strip() if value is not None else ""
        if not text:
            return None
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.problem(where, f"updated_at {text[:40]!r} is not a date and time (ISO 8601)")
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.isoformat()

    def problem(self, where: str | None, reason: str) -> None:
        self.problems.append((where, reason))

    # validation of single values
    def text(
        self, value: object, what: str, where: str, limit: int = MAX_QUESTION_CHARS
    ) -> str | None:
        """A cleaned text (NFC, stripped), or ``None`` after recording why it is not usable."""
        if value is not None and not isinstance(value, str | int | float):
            self.problem(where, f"{what} must be text, not {type(value).__name__}")
            return None
        text = unicodedata.normalize("NFC", _cell(value)).strip()
        if not text:
            self.problem(where, f"empty {what}")
            return None
        if "\x00" in text:
            self.problem(where, f"{what} contains a NUL character")
            return None
        if len(text) > limit:
            self.problem(where, f"{what} is {len(text):,} characters long (at most {limit:,})")
            return None
        return text

    def language(self, value: object, fallback_text: str, where: str) -> str:
        raw = _cell(value).strip().lower()
        if not raw:
            return detect_language(fallback_text)
        if raw not in _LANGUAGES:
            self.problem(where, f"unknown language {raw!r} (use 'ko' or 'en')")
            return "en"
        return _LANGUAGES[raw]

    def tags(self, value: object, where: str) -> list[str]:
        items = value if isinstance(value, list) else re.split(r"[;,]", _cell(value))
        out: list[str] = []
        for item in items:
            tag = unicodedata.normalize("NFC", _cell(item)).strip()
            if len(tag) > MAX_TAG_CHARS:
                self.problem(
                    where, f"tag {tag[:30]!r}... is longer than {MAX_TAG_CHARS} characters"
                )
            elif tag and tag not in out:
                out.append(tag)
        return out

    def active(self, value: object, where: str) -> bool:
        if isinstance(value, bool):
            return value
        raw = _cell(value).strip().lower()
        if raw in _TRUE | _FALSE:
            return raw in _TRUE
        self.problem(where, f"active must be true or false, not {raw!r}")
        return True

    def key(self, value: object, where: str) -> str | None:
        key = self.text(value, "key", where, MAX_KEY_CHARS)
        return OOS if key is not None and key.lower() in OOS_LABELS else key

    # building
    def add_entry(
        self, entry: EntryData, where: str, locs: list[str], source: str | None = None
    ) -> None:
        """Add an entry; its question becomes its first example if it is not one already."""
        if entry.key in self.drafts:
            other = self.drafts[entry.key].where
            self.problem(where, f"duplicate key {entry.key!r} (also at {other})")
            return
        if entry.question not in entry.examples:
            entry.examples.insert(0, entry.question)
            entry.sources.insert(0, source or self.source(_line_of(where)))
            locs.insert(0, where)
        self.drafts[entry.key] = _Draft(entry, where, locs)
        self.dedupe(self.drafts[entry.key])

    @staticmethod
    def dedupe(draft: _Draft) -> None:
        first: dict[str, int] = {}  # each text's first position
        for i, t in enumerate(draft.entry.examples):
            first.setdefault(t, i)
        keep = list(first.values())
        e = draft.entry
        e.examples = [e.examples[i] for i in keep]
        e.sources = [e.sources[i] for i in keep]
        draft.locs = [draft.locs[i] for i in keep]

    def add_oos(self, text: str, source: str, where: str) -> None:
        if text not in self.oos:
            self.oos.append(text)
            self.oos_sources.append(source)
            self.oos_locs.append(where)

    def check_conflicts(self) -> None:
        """The same question under two entries (or an entry and ``oos``) is a problem."""
        owner: dict[str, tuple[str, str]] = {}
        pairs = [
            (d.entry.key, t, w)
            for d in self.drafts.values()
            for t, w in zip(d.entry.examples, d.locs, strict=True)
        ]
        pairs += [(OOS, t, w) for t, w in zip(self.oos, self.oos_locs, strict=True)]
        for label, text, where in pairs:
            seen = owner.setdefault(_norm(text), (label, where))
            if seen[0] != label:
                self.problem(
                    where,
                    f"{text[:60]!r} is an example of both {seen[0]!r} ({seen[1]}) and {label!r}",
                )

    def result(self) -> KBData:
        self.check_conflicts()
        if not self.problems and not self.drafts and not self.oos:
            self.problem(self.loc(None), "no entries found")
        if self.problems:
            raise KBImportError(self.path, self.problems)
        return KBData(
            entries=[d.entry for d in self.drafts.values()],
            oos_examples=list(self.oos),
            oos_sources=list(self.oos_sources),
            exported_at=self.exported_at,
        )


def _line_of(where: str) -> int | None:
    tail = where.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _unique_key(question: str, taken: set[str]) -> str:
    """The question's slug, numbered if ``taken`` (or ``oos``) has it already; then taken."""
    base = slugify(question)
    key, n = base, 2
    while key in taken or key == OOS:
        key, n = f"{base}_{n}", n + 1
    taken.add(key)
    return key


def _read_text(path: Path, b: _Builder) -> str | None:
    """The file's text as UTF-8 (a BOM is allowed; UTF-16 with a BOM too)."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            b.problem(b.loc(None, path), f"not valid UTF-16 ({e.reason})")
            return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        hint = "save the file as UTF-8"
        try:
            data.decode("cp949")
            hint = "it looks like CP949/EUC-KR (Korean Excel); save it as 'CSV UTF-8'"
        except UnicodeDecodeError:
            pass
        b.problem(b.loc(line, path), f"not valid UTF-8 at byte {e.start} (column {col}): {hint}")
        return None
    if not text.strip():
        b.problem(b.loc(None, path), "the file is empty")
        return None
    return text
