"""Write a :class:`KBData` as CSV, JSON, XLSX or Rasa files that the importers read back."""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

import yaml

from annae.kb.entries import OOS, KBData
from annae.kb.importers import FORMATS, QA_COLUMNS, detect_format

CSV_COLUMNS = QA_COLUMNS  # what the importer reads back (updated_at included)
RASA_OOS_INTENT = "out_of_scope"
JSON_FIELDS = ("key", "language", "question", "answer", "tags", "active", "examples")


class KBExportError(ValueError):
    """The knowledge base cannot be written in the requested format or place."""


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, so a failure leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _rows(data: KBData) -> list[list[str]]:
    """One row per entry (extra examples ``|``-joined), then one ``oos`` row per example."""
    rows = []
    for e in data.entries:
        extras = [t.replace("|", "\\|") for t in e.examples if t != e.question]
        rows.append(
            [
                e.question,
                e.answer,
                ";".join(e.tags),
                e.language,
                e.key,
                "|".join(extras),
                "true" if e.active else "false",
                e.updated_at or "",
            ]
        )
    for text in data.oos_examples:
        rows.append([text, "", "", "", OOS, "", "", ""])
    return rows


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


def to_json(data: KBData, *, include_sources: bool = True) -> str:
    """The JSON document the importer reads back unchanged."""
    entries = []
    for e in data.entries:
        item = {name: getattr(e, name) for name in JSON_FIELDS}
        if e.updated_at:
            item["updated_at"] = e.updated_at
        if include_sources and e.sources:
            item["sources"] = list(e.sources)
        entries.append(item)
    doc: dict = {
        "format": "annae-kb",
        "version": 1,
        "exported_at": data.exported_at or _now(),
        "entries": entries,
        "oos": list(data.oos_examples),
    }
    if include_sources and data.oos_sources:
        doc["oos_sources"] = list(data.oos_sources)
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def to_csv(data: KBData) -> str:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_rows(data))
    return buf.getvalue()


def to_xlsx(data: KBData) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "knowledge base"
    for r, row in enumerate([list(CSV_COLUMNS), *_rows(data)], start=1):
        for c, value in enumerate(row, start=1):
            cell = ws.cell(row=r, column=c)
            cell.value = ILLEGAL_CHARACTERS_RE.sub(" ", value)
            cell.data_type = "s"  # never a formula, even when a text starts with '='
            if r == 1:
                cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    for letter, width in zip("ABCDEFGH", (50, 70, 20, 10, 30, 60, 8, 26), strict=True):
        ws.column_dimensions[letter].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks (``|``), as Rasa files are written by hand."""


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _yaml(doc: dict) -> bytes:
    return yaml.dump(
        doc, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=10_000
    ).encode()


def to_rasa(data: KBData) -> tuple[bytes, bytes]:
    """``(nlu.yml, domain.yml)``: one intent and one ``utter_<key>`` response per entry."""
    nlu, intents, responses = [], [], {}
    for e in data.entries:
        if e.key in {RASA_OOS_INTENT, "nlu_fallback"}:
            raise KBExportError(
                f"entry key {e.key!r} is Rasa's out-of-scope intent; rename the entry"
            )
        examples = "".join(f"- {' '.join(t.split())}\n" for t in e.examples)
        meta = {
            "question": e.question,
            "language": e.language,
            "tags": list(e.tags),
            "active": e.active,
        }
        nlu.append({"intent": e.key, "metadata": meta, "examples": examples})
        intents.append(e.key)
        responses[f"utter_{e.key}"] = [{"text": e.answer}]
    if data.oos_examples:
        examples = "".join(f"- {' '.join(t.split())}\n" for t in data.oos_examples)
        nlu.append({"intent": RASA_OOS_INTENT, "examples": examples})
        intents.append(RASA_OOS_INTENT)
    nlu_doc = {"version": "3.1", "nlu": nlu}
    domain_doc = {"version": "3.1", "intents": intents, "responses": responses}
    return _yaml(nlu_doc), _yaml(domain_doc)


def export_kb(
    data: KBData, path: Path | str, fmt: str | None = None, *, include_sources: bool = True
) -> list[Path]:
    """Write ``data`` to ``path`` in ``fmt`` (default: from the extension); returns the files written.

    For ``rasa`` the path is a folder (``nlu.yml`` and ``domain.yml`` inside) or the
    ``nlu.yml`` file itself, with ``domain.yml`` written beside it.
    """
    path = Path(path)
    kind = detect_format(path, fmt) if (fmt or path.suffix or path.is_dir()) else None
    if kind is None and not path.suffix and fmt is None:
        raise KBExportError(
            f"cannot tell the format of {path.name!r}; give --format ({', '.join(FORMATS)})"
        )
    if kind is None:
        raise KBExportError(
            f"unknown format {fmt or path.suffix!r}; use one of {', '.join(FORMATS)}"
        )
    if kind == "rasa":
        nlu_bytes, domain_bytes = to_rasa(data)
        if path.suffix.lower() in (".yml", ".yaml"):
            nlu_path, domain_path = path, path.with_name("domain.yml")
            if nlu_path == domain_path:
                raise KBExportError("name the NLU file something other than domain.yml")
        else:
            nlu_path, domain_path = path / "nlu.yml", path / "domain.yml"
        _write_atomic(nlu_path, nlu_bytes)
        _write_atomic(domain_path, domain_bytes)
        return [nlu_path, domain_path]
    if kind == "json":
        content = to_json(data, include_sources=include_sources).encode()
    elif kind == "csv":
        content = to_csv(data).encode("utf-8-sig")  # a BOM, so that Excel shows Korean correctly
    else:
        content = to_xlsx(data)
    _write_atomic(path, content)
    return [path]
