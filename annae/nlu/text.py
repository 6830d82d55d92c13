"""Text normalisation and language detection for Korean and English."""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"\s+")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN = re.compile(r"[A-Za-z]")
# Repeated characters ("soooo", "ㅠㅠㅠㅠ", "!!!!") are squeezed to three.
_REPEAT = re.compile(r"(.)\1{3,}")

MAX_CHARS = 2000
"""Questions longer than this are cut before featurising (the policy hands them off)."""


def normalize(text: str) -> str:
    """NFKC, lower case, one space between words, long character runs squeezed."""
    text = unicodedata.normalize("NFKC", text or "")
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\n\t")
    text = _REPEAT.sub(r"\1\1\1", text.lower())
    return _SPACE.sub(" ", text).strip()


def detect_language(text: str) -> str:
    """``"ko"`` when Hangul makes up at least a fifth of the letters, else ``"en"``."""
    hangul = len(_HANGUL.findall(text))
    latin = len(_LATIN.findall(text))
    if hangul and hangul * 4 >= latin:
        return "ko"
    return "en"


def has_hangul(text: str) -> bool:
    return bool(_HANGUL.search(text))
