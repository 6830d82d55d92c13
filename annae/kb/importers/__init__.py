"""Parse knowledge-base files (CSV, JSON, XLSX, Rasa) into :class:`KBData`.

Everything is read and validated before anything is written: a bad file raises
:class:`KBImportError` listing every problem with its file, line and reason.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json import decoder as json_decoder
from json import scanner as json_scanner
from pathlib import Path

import yaml

from annae.kb.entries import OOS, EntryData, KBData

FORMATS = ("csv", "json", "xlsx", "rasa")
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_QUESTION_CHARS = 1000  # a question, example question or out-of-scope example
MAX_ANSWER_CHARS = 20_000
MAX_KEY_CHARS = 200
MAX_TAG_CHARS = 100
SHOWN_PROBLEMS = 20

OOS_LABELS = {OOS, "out_of_scope", "nlu_fallback"}
QA_COLUMNS = (
    "question",
    "answer",
    "tags",
    "language",
    "key",
    "examples",
    "active",
    "updated_at",
)
LABEL_COLUMNS = ("text", "label", "answer")
ANSWER_COLUMNS = ("label", "answer", "question", "language", "tags")
ALIASES = {
    "id": "key",
    "q": "question",
    "a": "answer",
    "tag": "tags",
    "lang": "language",
    "category": "label",
    "intent": "label",
    "example": "examples",
}
_LANGUAGES = {
    "ko": "ko", "kr": "ko", "kor": "ko", "korean": "ko", "한국어": "ko", "ko-kr": "ko", "ko_kr": "ko",
    "en": "en", "eng": "en", "english": "en", "영어": "en", "en-us": "en", "en_us": "en", "en-gb": "en",
}  # fmt: skip
_TRUE = {"", "1", "true", "yes", "y", "t", "on", "active"}
_FALSE = {"0", "false", "no", "n", "f", "off", "inactive"}
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN = re.compile(r"[A-Za-z]")
_RASA_ENTITY = re.compile(r"\[([^\]\n]*)\](?:\([^)\n]*\)|\{[^}\n]*\})")
_EXAMPLE_SPLIT = re.compile(r"(?<!\\)\|")

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


# --------------------------------------------------------------------------- helpers


def detect_language(text: str) -> str:
    """``"ko"`` when Hangul makes up at least a fifth of the letters, else ``"en"``."""
    hangul = len(_HANGUL.findall(text))
    return "ko" if hangul and hangul >= 0.2 * (hangul + len(_LATIN.findall(text))) else "en"


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
        if isinstance(value, list):
            items = value
        else:
            items = re.split(r"[;,]", _cell(value))
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
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
        self.problem(where, f"active must be true or false, not {raw!r}")
        return True

    def key(self, value: object, where: str) -> str | None:
        key = self.text(value, "key", where, MAX_KEY_CHARS)
        if key is not None and key.lower() in OOS_LABELS:
            return OOS
        return key

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
        seen: set[str] = set()
        keep = [i for i, t in enumerate(draft.entry.examples) if not (t in seen or seen.add(t))]
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


def _unique_key(base: str, taken: set[str]) -> str:
    key, n = base, 2
    while key in taken or key == OOS:
        key, n = f"{base}_{n}", n + 1
    taken.add(key)
    return key


# --------------------------------------------------------------------------- reading files


def _read_text(path: Path, b: _Builder) -> str | None:
    """The file's text as UTF-8 (a BOM is allowed; UTF-16 with a BOM too)."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            b.problem(b.loc(None), f"not valid UTF-16 ({e.reason})")
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


def _canonical_header(
    raw: list[str], allowed: tuple[str, ...], b: _Builder, path: Path
) -> list[str] | None:
    names = []
    for cell in raw:
        name = re.sub(r"\s+", "_", _cell(cell).strip().lstrip("\ufeff").lower())
        names.append(ALIASES.get(name, name))
    ok = True
    for name in names:
        if not name:
            continue
        if name not in allowed:
            b.problem(b.loc(1, path), f"unknown column {name!r} (expected {', '.join(allowed)})")
            ok = False
        elif names.count(name) > 1:
            b.problem(b.loc(1, path), f"column {name!r} appears twice")
            ok = False
    return names if ok else None


Table = tuple[list[str], list[tuple[int, list[str]]]]


def _read_csv(path: Path, b: _Builder) -> Table | None:
    """Header cells and ``(line, cells)`` rows of a CSV or TSV file; blank rows skipped."""
    text = _read_text(path, b)
    if text is None:
        return None
    first = text.split("\n", 1)[0]
    delimiter = "\t" if path.suffix.lower() == ".tsv" else max([",", "\t", ";"], key=first.count)
    if first.count(delimiter) == 0:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    start = 1
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                rows.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as e:
        b.problem(b.loc(start, path), f"cannot read this CSV row: {e}")
        return None
    if not rows:
        b.problem(b.loc(None, path), "the file is empty")
        return None
    return rows[0][1], rows[1:]


def _read_xlsx(path: Path, b: _Builder) -> Table | None:
    """Header cells and ``(row number, cells)`` rows of the first sheet of a workbook."""
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many kinds for a broken file
        b.problem(b.loc(None), f"not a readable .xlsx workbook ({type(e).__name__}: {e})")
        return None
    try:
        rows = [
            (n, [_cell(v) for v in values])
            for n, values in enumerate(wb.worksheets[0].iter_rows(values_only=True), start=1)
            if any(_cell(v).strip() for v in values)
        ]
    finally:
        wb.close()
    if not rows:
        b.problem(b.loc(None), "the first sheet is empty")
        return None
    return rows[0][1], rows[1:]


def _records(
    table: Table, header: list[str], b: _Builder, path: Path
) -> list[tuple[int, dict[str, str]]]:
    out = []
    for line, cells in table[1]:
        extra = [c for c in cells[len(header) :] if c.strip()]
        if extra:
            b.problem(
                b.loc(line, path),
                f"{len(cells)} values but the header has {len(header)} columns "
                "(quote values that contain the separator)",
            )
            continue
        padded = cells + [""] * (len(header) - len(cells))
        out.append((line, {h: v for h, v in zip(header, padded, strict=False) if h}))
    return out


# --------------------------------------------------------------------------- tables (CSV, XLSX)


def _from_table(table: Table, b: _Builder, answers: Path | None) -> None:
    raw = [_cell(c).strip().lstrip("\ufeff").lower() for c in table[0]]
    names = {ALIASES.get(n, n) for n in raw}
    if {"question", "answer"} <= names:
        header = _canonical_header(table[0], QA_COLUMNS, b, b.path)
        if header is not None:
            _qa_rows(_records(table, header, b, b.path), b)
    elif {"text", "label"} <= names:
        header = _canonical_header(table[0], LABEL_COLUMNS, b, b.path)
        if header is not None:
            _labelled_rows(_records(table, header, b, b.path), b, answers)
    else:
        missing = _missing_columns(names)
        b.problem(
            b.loc(1),
            f"missing column {missing}: the header has "
            f"{', '.join(repr(n) for n in raw if n) or 'no names'}; expected "
            "question,answer[,tags,language,key,examples,active,updated_at] or text,label "
            "(with --answers)",
        )


def _missing_columns(names: set[str]) -> str:
    """Name what is missing from the format the header comes closest to."""
    if names & {"text", "label"} and not names & {"question", "answer"}:
        need = [c for c in ("text", "label") if c not in names]
    else:
        need = [c for c in ("question", "answer") if c not in names]
    return " and ".join(repr(c) for c in need)


def _split_examples(value: str) -> list[str]:
    return [part.replace("\\|", "|") for part in _EXAMPLE_SPLIT.split(value or "")]


def _qa_rows(rows: list[tuple[int, dict[str, str]]], b: _Builder) -> None:
    """Rows of ``question,answer[,tags,language,key,examples,active]``; key ``oos`` = out of scope."""
    taken = {k for _, r in rows if (k := r.get("key", "").strip()) and k.lower() not in OOS_LABELS}
    questions: dict[str, str] = {}
    for line, row in rows:
        where = b.loc(line)
        key = b.key(row["key"], where) if row.get("key", "").strip() else None
        extras = [t for part in _split_examples(row.get("examples", "")) if part.strip()
                  if (t := b.text(part, "example question", where)) is not None]  # fmt: skip
        question = b.text(row.get("question"), "question", where)
        if key == OOS:
            for text in [question, *extras]:
                if text:
                    b.add_oos(text, b.source(line), where)
            continue
        answer = b.text(row.get("answer"), "answer", where, MAX_ANSWER_CHARS)
        if question is None or answer is None:
            continue
        if (prev := questions.setdefault(_norm(question), where)) != where:
            b.problem(where, f"duplicate question {question[:60]!r} (also at {prev})")
            continue
        key = key or _unique_key(slugify(question), taken)
        entry = EntryData(
            key=key, question=question, answer=answer,
            language=b.language(row.get("language"), question + " " + answer, where),
            tags=b.tags(row.get("tags", ""), where), active=b.active(row.get("active", ""), where),
            examples=extras, sources=[b.source(line)] * len(extras),
            updated_at=b.stamp(row.get("updated_at"), where),
        )  # fmt: skip
        b.add_entry(entry, where, [where] * len(extras))


@dataclass
class _Answer:
    answer: str
    where: str
    question: str | None = None
    language: str | None = None
    tags: list[str] = field(default_factory=list)


def _labelled_rows(
    rows: list[tuple[int, dict[str, str]]], b: _Builder, answers_path: Path | None
) -> None:
    """Rows of ``text,label[,answer]``, one example question each, answered by label."""
    answers: dict[str, _Answer] = {}
    if answers_path is not None:
        answers = _read_answers(answers_path, b)
    groups: dict[str, list[tuple[str, int]]] = {}
    for line, row in rows:
        where = b.loc(line)
        text = b.text(row.get("text"), "text", where)
        label = b.key(row.get("label"), where)
        if text is None or label is None:
            continue
        if label == OOS:
            b.add_oos(text, b.source(line), where)
            continue
        groups.setdefault(label, []).append((text, line))
        if row.get("answer", "").strip():
            answer = b.text(row["answer"], "answer", where, MAX_ANSWER_CHARS)
            if answer is not None:
                _merge_answer(answers, label, _Answer(answer, where), b)
    for label, items in groups.items():
        first = b.loc(items[0][1])
        info = answers.get(label)
        if info is None:
            hint = (
                f"in {answers_path.name}"
                if answers_path
                else "(give an answers file with --answers)"
            )
            b.problem(first, f"label {label!r} has no answer {hint}")
            continue
        question = info.question or items[0][0]
        examples = [t for t, _ in items]
        entry = EntryData(
            key=label, question=question, answer=info.answer,
            language=info.language or detect_language(question + " " + info.answer),
            tags=list(info.tags), examples=examples,
            sources=[b.source(line) for _, line in items],
        )  # fmt: skip
        b.add_entry(entry, first, [b.loc(line) for _, line in items])


def _merge_answer(answers: dict[str, _Answer], label: str, new: _Answer, b: _Builder) -> None:
    old = answers.get(label)
    if old is None:
        answers[label] = new
    elif old.answer != new.answer:
        b.problem(new.where, f"conflicting answers for label {label!r} (another at {old.where})")


def _read_answers(path: Path, b: _Builder) -> dict[str, _Answer]:
    """An answers file: CSV ``label,answer[,question,language,tags]`` or JSON ``{label: answer}``."""
    answers: dict[str, _Answer] = {}
    if not path.is_file():
        b.problem(b.loc(None, path), "answers file not found")
        return answers
    if path.suffix.lower() == ".json":
        text = _read_text(path, b)
        if text is None:
            return answers
        data = _json(text, path, b)
        if data is _INVALID:
            return answers
        if not isinstance(data, dict):
            b.problem(b.loc(None, path), "expected a JSON object mapping each label to its answer")
            return answers
        for label, value in data.items():
            where = b.loc(getattr(data, "key_lines", {}).get(label), path)
            info = value if isinstance(value, dict) else {"answer": value}
            answer = b.text(info.get("answer"), "answer", where, MAX_ANSWER_CHARS)
            if answer is None:
                continue
            q = b.text(info["question"], "question", where) if info.get("question") else None
            lang = b.language(info["language"], "", where) if info.get("language") else None
            tags = b.tags(info.get("tags", []), where)
            _merge_answer(answers, label.strip(), _Answer(answer, where, q, lang, tags), b)
        return answers
    table = _read_csv(path, b)
    if table is None:
        return answers
    header = _canonical_header(table[0], ANSWER_COLUMNS, b, path)
    if header is None:
        return answers
    if not {"label", "answer"} <= set(header):
        b.problem(b.loc(1, path), "expected columns label,answer[,question,language,tags]")
        return answers
    for line, row in _records(table, header, b, path):
        where = b.loc(line, path)
        label = b.key(row.get("label"), where)
        answer = b.text(row.get("answer"), "answer", where, MAX_ANSWER_CHARS)
        if label is None or answer is None:
            continue
        q = b.text(row["question"], "question", where) if row.get("question", "").strip() else None
        lang = b.language(row["language"], "", where) if row.get("language", "").strip() else None
        _merge_answer(
            answers, label, _Answer(answer, where, q, lang, b.tags(row.get("tags", ""), where)), b
        )
    return answers


# --------------------------------------------------------------------------- JSON


class _LinedDict(dict):
    """A JSON object that remembers the line it starts on and the line of each key."""

    line: int = 0
    key_lines: dict


class _LinedList(list):
    """A JSON array that remembers the line of each item."""

    lines: list[int]


def _load_json(text: str):
    """``json.loads`` that records line numbers on objects and arrays."""
    starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(pos: int) -> int:
        return bisect_right(starts, pos)

    dec = json.JSONDecoder()

    def parse_object(s_and_end, strict, scan_once, object_hook, pairs_hook, memo=None):
        value_lines: list[int] = []

        def scan(s, idx):
            value_lines.append(line(idx))
            return scan_once(s, idx)

        pairs, new_end = json_decoder.JSONObject(s_and_end, strict, scan, None, list, memo)
        obj = _LinedDict(pairs)
        obj.line = line(s_and_end[1] - 1)
        obj.key_lines = {k: n for (k, _), n in zip(pairs, value_lines, strict=False)}
        return obj, new_end

    def parse_array(s_and_end, scan_once):
        lines: list[int] = []

        def scan(s, idx):
            lines.append(line(idx))
            return scan_once(s, idx)

        values, new_end = json_decoder.JSONArray(s_and_end, scan)
        arr = _LinedList(values)
        arr.lines = lines
        return arr, new_end

    dec.parse_object = parse_object
    dec.parse_array = parse_array
    dec.scan_once = json_scanner.py_make_scanner(dec)
    return dec.decode(text)


_INVALID = object()


def _json(text: str, path: Path, b: _Builder):
    """Parsed JSON with line numbers, or ``_INVALID`` after recording why it cannot be read."""
    try:
        return _load_json(text)
    except json.JSONDecodeError as e:
        b.problem(b.loc(e.lineno, path), f"invalid JSON: {e.msg} (column {e.colno})")
    except RecursionError:
        b.problem(b.loc(None, path), "invalid JSON: nested too deeply")
    return _INVALID


ENTRY_FIELDS = {
    "key",
    "id",
    "question",
    "answer",
    "language",
    "tags",
    "examples",
    "sources",
    "active",
    "updated_at",
}
TOP_FIELDS = {"format", "version", "exported_at", "entries", "oos", "oos_sources"}


def _parse_json(b: _Builder) -> None:
    """A list of entries, or ``{"entries": [...], "oos": [...]}`` as the JSON exporter writes."""
    text = _read_text(b.path, b)
    if text is None:
        return
    data = _json(text, b.path, b)
    if data is _INVALID:
        return
    oos: list = []
    oos_sources: list | None = None
    if isinstance(data, dict) and "entries" in data:
        for name in set(data) - TOP_FIELDS:
            b.problem(
                b.loc(data.key_lines.get(name)),
                f"unknown field {name!r} (expected {', '.join(sorted(TOP_FIELDS))})",
            )
        entries, oos = data["entries"], data.get("oos", [])
        oos_sources = data.get("oos_sources")
        b.exported_at = b.stamp(data.get("exported_at"), b.loc(data.key_lines.get("exported_at")))
    elif isinstance(data, list):
        entries = data
    else:
        b.problem(
            b.loc(1), 'expected a list of entries or an object {"entries": [...], "oos": [...]}'
        )
        return
    if not isinstance(entries, list) or not isinstance(oos, list):
        b.problem(b.loc(getattr(data, "line", 1)), "'entries' and 'oos' must be lists")
        return
    if oos_sources is not None and (
        not isinstance(oos_sources, list) or len(oos_sources) != len(oos)
    ):
        b.problem(
            b.loc(data.key_lines.get("oos_sources")),
            "'oos_sources' must be a list as long as 'oos'",
        )
        oos_sources = None
    for i, item in enumerate(oos):
        line = oos.lines[i]
        text = b.text(item, "out-of-scope example", b.loc(line))
        if text is not None:
            src = (
                oos_sources[i]
                if oos_sources and isinstance(oos_sources[i], str)
                else b.source(line)
            )
            b.add_oos(text, src, b.loc(line))
    taken = {
        str(e.get("key", e.get("id"))).strip()
        for e in entries
        if isinstance(e, dict) and (e.get("key") or e.get("id"))
    }
    for i, item in enumerate(entries):
        _json_entry(item, entries.lines[i], b, taken)


def _json_entry(item: object, line: int, b: _Builder, taken: set[str]) -> None:
    where = b.loc(line)
    if not isinstance(item, dict):
        b.problem(where, f"an entry must be an object, not {type(item).__name__}")
        return
    for name in set(item) - ENTRY_FIELDS:
        b.problem(
            b.loc(item.key_lines.get(name, line)),
            f"unknown field {name!r} (expected {', '.join(sorted(ENTRY_FIELDS - {'id'}))})",
        )
    question = b.text(item.get("question"), "question", where)
    raw_key = item.get("key", item.get("id"))
    key = b.key(raw_key, where) if raw_key not in (None, "") else None
    if key == OOS:
        b.problem(where, f'{OOS!r} is reserved: put out-of-scope examples in "oos"')
        return
    answer = b.text(item.get("answer"), "answer", where, MAX_ANSWER_CHARS)
    raw_examples = item.get("examples", [])
    raw_sources = item.get("sources")
    if not isinstance(raw_examples, list):
        b.problem(where, "'examples' must be a list of strings")
        raw_examples = []
    if raw_sources is not None and (
        not isinstance(raw_sources, list) or len(raw_sources) != len(raw_examples)
    ):
        b.problem(where, "'sources' must be a list as long as 'examples'")
        raw_sources = None
    examples, sources, locs = [], [], []
    for i, raw in enumerate(raw_examples):
        ex_line = raw_examples.lines[i] if isinstance(raw_examples, _LinedList) else line
        text = b.text(raw, "example question", b.loc(ex_line))
        if text is not None:
            examples.append(text)
            given = raw_sources[i] if raw_sources else None
            sources.append(
                given.strip()[:500]
                if isinstance(given, str) and given.strip()
                else b.source(ex_line)
            )
            locs.append(b.loc(ex_line))
    if question is None or answer is None:
        return
    entry = EntryData(
        key=key or _unique_key(slugify(question), taken), question=question, answer=answer,
        language=b.language(item.get("language"), question + " " + answer, where),
        tags=b.tags(item.get("tags", []), where), active=b.active(item.get("active", True), where),
        examples=examples, sources=sources, updated_at=b.stamp(item.get("updated_at"), where),
    )  # fmt: skip
    b.add_entry(entry, where, locs)


# --------------------------------------------------------------------------- Rasa


def _yaml(path: Path, b: _Builder):
    """``(data, node)`` of a YAML file, or ``(None, None)`` after recording the problem."""
    text = _read_text(path, b)
    if text is None:
        return None, None
    try:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
        node = yaml.compose(text, Loader=loader)
        return yaml.load(text, Loader=loader), node
    except RecursionError:
        b.problem(b.loc(None, path), "invalid YAML: nested too deeply")
        return None, None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        b.problem(
            b.loc(mark.line + 1 if mark else None, path),
            f"invalid YAML: {getattr(e, 'problem', e)}",
        )
        return None, None


def _child(node, name: str):
    """The value node of ``name`` in a YAML mapping node."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == name:
                return v
    return None


def _rasa_files(path: Path, answers: Path | None) -> tuple[Path, Path | None]:
    nlu = path
    if path.is_dir():
        nlu = next(
            (
                p
                for p in (
                    path / "data" / "nlu.yml",
                    path / "nlu.yml",
                    path / "data" / "nlu.yaml",
                    path / "nlu.yaml",
                )
                if p.is_file()
            ),
            path / "nlu.yml",
        )
    if answers is not None:
        return nlu, answers
    for folder in (nlu.parent, nlu.parent.parent, path if path.is_dir() else nlu.parent):
        for name in ("domain.yml", "domain.yaml"):
            if (folder / name).is_file() and (folder / name) != nlu:
                return nlu, folder / name
    return nlu, None


def _rasa_responses(path: Path, data, b: _Builder) -> dict[str, tuple[str, str]]:
    """``utter_x`` → (first text variant, location) from a Rasa file's ``responses``."""
    out: dict[str, tuple[str, str]] = {}
    data, node = data
    responses = data.get("responses") if isinstance(data, dict) else None
    if not isinstance(responses, dict):
        return out
    rnode = _child(node, "responses")
    for name, variants in responses.items():
        vnode = _child(rnode, name)
        where = b.loc(vnode.start_mark.line + 1 if vnode is not None else None, path)
        texts = [v.get("text") for v in variants or [] if isinstance(v, dict) and v.get("text")]
        if not texts:
            b.problem(where, f"response {name!r} has no text variant")
            continue
        answer = b.text(texts[0], "answer", where, MAX_ANSWER_CHARS)
        if answer is not None:
            out[str(name)] = (answer, where)
    return out


def _parse_rasa(b: _Builder, answers: Path | None) -> None:
    """Rasa ``nlu.yml`` intents with answers from ``utter_<intent>`` responses in ``domain.yml``."""
    nlu_path, domain_path = _rasa_files(b.path, answers)
    if not nlu_path.is_file():
        b.problem(b.loc(None, nlu_path), "Rasa NLU file not found")
        return
    data, node = _yaml(nlu_path, b)
    if data is None:
        return
    if not isinstance(data, dict) or not isinstance(data.get("nlu"), list):
        b.problem(b.loc(1, nlu_path), "not a Rasa NLU file: expected a top-level 'nlu:' list")
        return
    responses = _rasa_responses(nlu_path, (data, node), b)
    if domain_path is not None:
        if not domain_path.is_file():
            b.problem(b.loc(None, domain_path), "domain file not found")
        else:
            domain = _yaml(domain_path, b)
            if domain[0] is not None:
                responses |= _rasa_responses(domain_path, domain, b)
    nlu_node = _child(node, "nlu")
    groups: dict[str, list[tuple[str, int]]] = {}
    metas: dict[str, tuple[dict, int]] = {}
    for block, bnode in zip(data["nlu"], nlu_node.value, strict=True):
        if not isinstance(block, dict) or "intent" not in block:
            continue  # synonyms, regexes and lookup tables
        line = bnode.start_mark.line + 1
        intent = b.key(block["intent"], b.loc(line, nlu_path))
        if intent is None:
            continue
        meta = block.get("metadata")
        metas.setdefault(intent, (meta if isinstance(meta, dict) else {}, line))
        for text, ex_line in _rasa_examples(block.get("examples"), _child(bnode, "examples"), line):
            where = b.loc(ex_line, nlu_path)
            clean = b.text(_RASA_ENTITY.sub(r"\1", text), "example", where)
            if clean is None:
                continue
            if intent == OOS:
                b.add_oos(clean, b.source(ex_line, nlu_path), where)
            else:
                groups.setdefault(intent, []).append((clean, ex_line))
    for intent, items in groups.items():
        _rasa_entry(intent, items, metas[intent], responses, nlu_path, domain_path, b)


def _rasa_examples(value, node, line: int) -> list[tuple[str, int]]:
    """``(text, line)`` for each ``- text`` of a block, list or plain string of examples."""
    if isinstance(value, list):
        nodes = node.value if isinstance(node, yaml.SequenceNode) else [None] * len(value)
        return [
            (str(v), n.start_mark.line + 1 if n else line)
            for v, n in zip(value, nodes, strict=False)
        ]
    if not isinstance(value, str):
        return []
    first = node.start_mark.line + 2 if node is not None and node.style == "|" else None
    out = []
    for i, raw in enumerate(value.split("\n")):
        item = raw.strip()
        if item.startswith("- "):
            item = item[2:]
        elif item == "-":
            item = ""
        elif not item:
            continue
        out.append((item, first + i if first else (node.start_mark.line + 1 if node else line)))
    return out


def _rasa_entry(intent, items, meta_line, responses, nlu_path, domain_path, b: _Builder) -> None:
    meta, line = meta_line
    where = b.loc(line, nlu_path)
    response = responses.get(f"utter_{intent}")
    if response is None:
        place = (
            domain_path.name if domain_path else "a domain.yml (none found; pass it with --answers)"
        )
        b.problem(where, f"intent {intent!r} has no response 'utter_{intent}' in {place}")
        return
    answer = response[0]
    question = b.text(meta["question"], "question", where) if meta.get("question") else items[0][0]
    if question is None:
        return
    entry = EntryData(
        key=intent, question=question, answer=answer,
        language=b.language(meta.get("language"), question + " " + answer, where),
        tags=b.tags(meta.get("tags", []), where), active=b.active(meta.get("active", True), where),
        examples=[t for t, _ in items], sources=[b.source(n, nlu_path) for _, n in items],
    )  # fmt: skip
    b.add_entry(entry, where, [b.loc(n, nlu_path) for _, n in items], b.source(line, nlu_path))


# --------------------------------------------------------------------------- entry point


def detect_format(path: Path, fmt: str | None = None) -> str | None:
    """``csv``, ``json``, ``xlsx`` or ``rasa`` from ``fmt`` or the file name; ``None`` if unknown."""
    if fmt:
        name = fmt.strip().lower().lstrip(".")
        name = {"tsv": "csv", "yml": "rasa", "yaml": "rasa", "excel": "xlsx"}.get(name, name)
        return name if name in FORMATS else None
    if path.is_dir():
        return "rasa"
    suffix = path.suffix.lower()
    return {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".json": "json", ".xlsx": "xlsx",
            ".xlsm": "xlsx", ".yml": "rasa", ".yaml": "rasa"}.get(suffix)  # fmt: skip


def parse_file(
    path: Path | str, *, answers: Path | str | None = None, fmt: str | None = None
) -> KBData:
    """Read and validate a knowledge-base file; raises :class:`KBImportError` listing every problem."""
    path = Path(path)
    answers = Path(answers) if answers is not None else None
    b = _Builder(path)
    kind = detect_format(path, fmt)
    if not path.exists():
        b.problem(b.loc(None), "file not found")
    elif kind is None:
        what = f"format {fmt!r}" if fmt else f"file type {path.suffix or '(no extension)'!r}"
        if path.suffix.lower() == ".xls":
            what += " (old Excel): save it as .xlsx or CSV"
        b.problem(b.loc(None), f"unknown {what}; use one of {', '.join(FORMATS)}")
    elif path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
        b.problem(
            b.loc(None), f"file is {path.stat().st_size:,} bytes (at most {MAX_FILE_BYTES:,})"
        )
    elif path.is_dir() and kind != "rasa":
        b.problem(b.loc(None), "is a folder; only the rasa format reads a folder")
    elif kind == "json":
        _parse_json(b)
    elif kind == "rasa":
        _parse_rasa(b, answers)
    else:
        table = _read_csv(path, b) if kind == "csv" else _read_xlsx(path, b)
        if table is not None:
            _from_table(table, b, answers)
    return b.result()


# --------------------------------------------------------------------------- writing


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
    incoming += list(
        zip([OOS] * len(data.oos_examples), data.oos_examples, data.oos_sources, strict=False)
    )
    problems = []
    for key, text, source in incoming:
        other = owner.get(_norm(text))
        if other is not None and other != key:
            problems.append(
                (
                    _where(source, path),
                    f"{text[:60]!r} is already an example of the stored entry {other!r}",
                )
            )
    return problems


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
    languages: dict[str, int] = {}
    for e in data.entries:
        languages[e.language] = languages.get(e.language, 0) + 1
    return ImportResult(
        added=[k for k in keys if k not in before_keys],
        updated=[k for k in keys if k in changed],
        removed=sorted(before_keys - set(keys)) if replace else [],
        examples_before=ex_before, examples_after=ex_after,
        oos_before=oos_before, oos_after=oos_after,
        revision=revision, languages=languages, dry_run=dry_run,
        changed=changed, unchanged=unchanged, reverted=[k for k, _, _ in stale],
    )  # fmt: skip
