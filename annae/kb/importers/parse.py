"""Which format a file is in, and :func:`parse_file`, which reads it with that format's reader."""

from __future__ import annotations

from pathlib import Path

from annae.kb.entries import KBData
from annae.kb.importers.builder import _Builder
from annae.kb.importers.jsonfmt import _parse_json
from annae.kb.importers.rasa import _parse_rasa
from annae.kb.importers.tables import _from_table, _read_csv, _read_xlsx

FORMATS = ("csv", "json", "xlsx", "rasa")
MAX_FILE_BYTES = 50 * 1024 * 1024


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
