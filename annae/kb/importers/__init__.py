"""Parse knowledge-base files (CSV, JSON, XLSX, Rasa) into :class:`KBData` and import them.

Everything is read and validated before anything is written: a bad file raises
:class:`KBImportError` listing every problem with its file, line and reason. One module per
format (``tables``: CSV/TSV/XLSX, ``jsonfmt``, ``rasa``), ``builder`` for what they share,
``parse`` to pick the format, ``write`` for the validation against the KB and the one write."""

from annae.kb.importers.builder import MAX_QUESTION_CHARS, KBImportError, slugify
from annae.kb.importers.parse import FORMATS, detect_format, parse_file
from annae.kb.importers.tables import QA_COLUMNS
from annae.kb.importers.write import ImportResult, RevertError, import_kb
from annae.nlu.text import detect_language

__all__ = [
    "FORMATS", "MAX_QUESTION_CHARS", "QA_COLUMNS", "ImportResult", "KBImportError", "RevertError",
    "detect_format", "detect_language", "import_kb", "parse_file", "slugify",
]  # fmt: skip
