"""Tables: CSV/TSV and the first sheet of an XLSX workbook, as ``question,answer,...`` rows or
``text,label[,answer]`` rows with an answers file (CSV or JSON)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from annae.kb.entries import OOS, EntryData
from annae.kb.importers.builder import (
    MAX_ANSWER_CHARS,
    OOS_LABELS,
    _Builder,
    _cell,
    _norm,
    _read_text,
    _unique_key,
)
from annae.kb.importers.jsonfmt import _INVALID, _json
from annae.nlu.text import detect_language

QA_COLUMNS = ("question", "answer", "tags", "language", "key", "examples", "active", "updated_at")
LABEL_COLUMNS = ("text", "label", "answer")
ANSWER_COLUMNS = ("label", "answer", "question", "language", "tags")
ALIASES = {
    "id": "key", "q": "question", "a": "answer", "tag": "tags", "lang": "language",
    "category": "label", "intent": "label", "example": "examples",
}  # fmt: skip
_EXAMPLE_SPLIT = re.compile(r"(?<!\\)\|")


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
        key = key or _unique_key(question, taken)
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
    answers = _read_answers(answers_path, b) if answers_path is not None else {}
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
        data = _json(path, b)
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
