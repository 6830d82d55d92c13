"""JSON: a list of entries, or the object the JSON exporter writes; errors carry line numbers."""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable
from json import decoder as json_decoder
from json import scanner as json_scanner
from pathlib import Path
from typing import Any

from annae.kb.entries import OOS, EntryData
from annae.kb.importers.builder import MAX_ANSWER_CHARS, _Builder, _read_text, _unique_key


class _LinedDict(dict[str, Any]):
    """A JSON object that remembers the line it starts on and the line of each key."""

    line: int = 0
    key_lines: dict[str, int]


class _LinedList(list[Any]):
    """A JSON array that remembers the line of each item."""

    def __init__(self, values: Iterable[Any] = (), lines: list[int] | None = None) -> None:
        super().__init__(values)
        self.lines: list[int] = lines if lines is not None else []


_Scan = Callable[[str, int], tuple[Any, int]]  # (text, index) -> (value, end)


class _LinedDecoder(json.JSONDecoder):
    # set by JSONDecoder.__init__ and called by the pure-Python scanner; typeshed leaves these
    # undocumented members out
    parse_object: Callable[..., tuple[_LinedDict, int]]
    parse_array: Callable[[tuple[str, int], _Scan], tuple[_LinedList, int]]
    scan_once: _Scan


# undocumented helpers of the json package (the pure-Python scanner and its object and array
# parsers), which typeshed does not list
_JSONObject: Callable[..., tuple[list[tuple[str, Any]], int]] = json_decoder.JSONObject  # type: ignore[attr-defined]
_JSONArray: Callable[[tuple[str, int], _Scan], tuple[list[Any], int]] = json_decoder.JSONArray  # type: ignore[attr-defined]
_py_make_scanner: Callable[[json.JSONDecoder], _Scan] = json_scanner.py_make_scanner  # type: ignore[attr-defined]


def _load_json(text: str) -> Any:
    """``json.loads`` that records line numbers on objects and arrays."""
    starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def line(pos: int) -> int:
        return bisect_right(starts, pos)

    dec = _LinedDecoder()

    def parse_object(
        s_and_end: tuple[str, int],
        strict: bool,
        scan_once: _Scan,
        object_hook: object,
        pairs_hook: object,
        memo: dict[str, str] | None = None,
    ) -> tuple[_LinedDict, int]:
        value_lines: list[int] = []

        def scan(s: str, idx: int) -> tuple[Any, int]:
            value_lines.append(line(idx))
            return scan_once(s, idx)

        pairs, new_end = _JSONObject(s_and_end, strict, scan, None, list, memo)
        obj = _LinedDict(pairs)
        obj.line = line(s_and_end[1] - 1)
        obj.key_lines = {k: n for (k, _), n in zip(pairs, value_lines, strict=False)}
        return obj, new_end

    def parse_array(s_and_end: tuple[str, int], scan_once: _Scan) -> tuple[_LinedList, int]:
        lines: list[int] = []

        def scan(s: str, idx: int) -> tuple[Any, int]:
            lines.append(line(idx))
            return scan_once(s, idx)

        values, new_end = _JSONArray(s_and_end, scan)
        return _LinedList(values, lines), new_end

    dec.parse_object = parse_object
    dec.parse_array = parse_array
    dec.scan_once = _py_make_scanner(dec)
    return dec.decode(text)


_INVALID = object()


def _json(path: Path, b: _Builder) -> Any:
    """The file's JSON with line numbers, or ``_INVALID`` after recording why it cannot be read."""
    text = _read_text(path, b)
    if text is None:
        return _INVALID
    try:
        return _load_json(text)
    except json.JSONDecodeError as e:
        b.problem(b.loc(e.lineno, path), f"invalid JSON: {e.msg} (column {e.colno})")
    except RecursionError:
        b.problem(b.loc(None, path), "invalid JSON: nested too deeply")
    return _INVALID


ENTRY_FIELDS = {"key", "id", "question", "answer", "language", "tags", "examples", "sources",
                "active", "updated_at"}  # fmt: skip
TOP_FIELDS = {"format", "version", "exported_at", "entries", "oos", "oos_sources"}


def _parse_json(b: _Builder) -> None:
    """A list of entries, or ``{"entries": [...], "oos": [...]}`` as the JSON exporter writes."""
    data = _json(b.path, b)
    if data is _INVALID:
        return
    oos: object = _LinedList()
    oos_sources: Any = None  # JSON, checked below
    if isinstance(data, _LinedDict) and "entries" in data:
        for name in set(data) - TOP_FIELDS:
            b.problem(
                b.loc(data.key_lines.get(name)),
                f"unknown field {name!r} (expected {', '.join(sorted(TOP_FIELDS))})",
            )
        entries, oos = data["entries"], data.get("oos", _LinedList())
        oos_sources = data.get("oos_sources")
        b.exported_at = b.stamp(data.get("exported_at"), b.loc(data.key_lines.get("exported_at")))
    elif isinstance(data, _LinedList):
        entries = data
    else:
        b.problem(
            b.loc(1), 'expected a list of entries or an object {"entries": [...], "oos": [...]}'
        )
        return
    # every JSON array here is a _LinedList (every object a _LinedDict)
    if not isinstance(entries, _LinedList) or not isinstance(oos, _LinedList):
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
    if not isinstance(item, _LinedDict):
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
        key=key or _unique_key(question, taken), question=question, answer=answer,
        language=b.language(item.get("language"), question + " " + answer, where),
        tags=b.tags(item.get("tags", []), where), active=b.active(item.get("active", True), where),
        examples=examples, sources=sources, updated_at=b.stamp(item.get("updated_at"), where),
    )  # fmt: skip
    b.add_entry(entry, where, locs)
