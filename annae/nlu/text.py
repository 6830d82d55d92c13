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


# ---- Korean as customers type it (applied to text with Hangul only; measured on ko-delivery,
# docs/engine.md). The stored transcript keeps the text as typed: this is for matching only.
# Emoticon and reaction runs: ㅋㅋ ㅎㅎ ㅠㅠ ㅜㅜ ㅡㅡ ;; ^^ and the chat intensifiers ㄹㅇ ㄷㄷ.
# NFKC (run first) turns these compatibility jamo into conjoining jamo (ㅋ U+314B -> U+110F), so
# the patterns are written as typed and compiled in NFKC form.


def _nfkc_re(pattern: str) -> re.Pattern[str]:
    # character by character: NFKC of "ㅎㅠ" as one string would compose the syllable 휴
    return re.compile("".join(unicodedata.normalize("NFKC", ch) for ch in pattern))


_EMOTICON = _nfkc_re(r"[ㅋㅎㅠㅜㅡ]+|;{2,}|\^{2,}|ㄹㅇ|ㄷㄷ+")
_JAMO_WORDS = (
    (_nfkc_re(r"(?<![가-힣ㄱ-ㅎ])ㅇㅇ(?![가-힣ㄱ-ㅎ])"), "응"),
    (_nfkc_re(r"(?<![가-힣ㄱ-ㅎ])ㄴㄴ(?![가-힣ㄱ-ㅎ])"), "아니"),
)
# Common chat spellings and 받침 typos, and how an FAQ editor writes them.
CHAT_SPELLINGS = {
    "됬": "됐",
    "됫": "됐",
    "업서": "없어",
    "업써": "없어",
    "없써": "없어",
    "결재": "결제",
    "쿠퐁": "쿠폰",
    "몇일": "며칠",
    "어케": "어떻게",
    "어캐": "어떻게",
    "암것도": "아무것도",
    "담주": "다음주",
    "왜케": "왜 이렇게",
    "눌럿": "눌렀",
    "햇는데": "했는데",
    "잇나": "있나",
    "잇어": "있어",
    "안되요": "안돼요",
    "되요": "돼요",
    "할께요": "할게요",
    "넹": "네",
    "넵": "네",
}
# Loanwords customers type in Latin letters or Hangul, as Korean FAQs write them.
LOANWORDS = {
    "캔슬": "취소",
    "cancel": "취소",
    "refund": "환불",
    "리펀드": "환불",
    "coupon": "쿠폰",
    "login": "로그인",
    "log in": "로그인",
    "password": "비밀번호",
    "pw": "비밀번호",
    "비번": "비밀번호",
    "어플": "앱",
    "app": "앱",
    "push": "푸시 알림",
    "email": "이메일",
    "e-mail": "이메일",
    "id": "아이디",
    "wifi": "와이파이",
    "wi-fi": "와이파이",
    "takeout": "포장",
    "take out": "포장",
    "review": "리뷰",
    "point": "포인트",
    "receipt": "영수증",
    "delivery": "배달",
    "order": "주문",
    "payment": "결제",
    "card": "카드",
    "sms": "문자",
}


def _alternation(words) -> str:
    return "|".join(sorted(map(re.escape, words), key=len, reverse=True))


_CHAT = re.compile(_alternation(CHAT_SPELLINGS))
_LOAN = re.compile(r"(?<![a-z])(" + _alternation(LOANWORDS) + r")(?![a-z])")


def strip_emoticons(text: str) -> str:
    """ㅋㅋ, ㅠㅠ, ㅡㅡ, ;; and the like removed; ``ㅇㅇ``/``ㄴㄴ`` read as yes/no. Text that
    is nothing but emoticons is kept as it is (the policy decides what to do with it)."""
    out = _EMOTICON.sub(" ", text)
    for pattern, word in _JAMO_WORDS:
        out = pattern.sub(word, out)
    out = _SPACE.sub(" ", out).strip()
    return out or text


def korean_chat(text: str) -> str:
    """Chat spellings, 받침 typos and loanwords rewritten as a Korean FAQ writes them."""
    text = _CHAT.sub(lambda m: CHAT_SPELLINGS[m.group(0)], text)
    return _LOAN.sub(lambda m: LOANWORDS[m.group(1)], text)


def normalize(text: str) -> str:
    """NFKC, lower case, one space between words, long character runs squeezed; for text with
    Hangul also emoticon runs stripped and chat spellings and loanwords rewritten."""
    text = unicodedata.normalize("NFKC", text or "")
    text = text.replace("\u200b", " ")  # a zero-width space stands between words
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\n\t")
    text = _REPEAT.sub(r"\1\1\1", text.lower())
    text = _SPACE.sub(" ", text).strip()
    if has_hangul(text):
        text = _SPACE.sub(" ", korean_chat(strip_emoticons(text))).strip()
    return text


_SENTENCE_END = re.compile(r"(?<=[.!?。？！])\s+|\n+")


def sentences(text: str) -> list[str]:
    """``text`` cut after sentence-final punctuation and at line breaks (empty parts dropped)."""
    return [s for s in (part.strip() for part in _SENTENCE_END.split(text or "")) if s]


def detect_language(text: str) -> str:
    """``"ko"`` when Hangul makes up at least a fifth of the letters, else ``"en"``."""
    hangul = len(_HANGUL.findall(text))
    latin = len(_LATIN.findall(text))
    return "ko" if hangul and hangul * 4 >= latin else "en"


def has_hangul(text: str) -> bool:
    return bool(_HANGUL.search(text))


# "A 말고 B", "A 아니라/아니고 B", "A 대신 B", "A 빼고": a Korean contrast names two things and
# refuses one; a bag of words sees both alike
_CONTRAST = re.compile(r"말고|아니라|아니고|아닌데|대신|빼고")


def has_contrast(text: str) -> bool:
    """Whether a Korean text turns on a contrast ("환불 말고 교환으로 할게요": not a refund, an
    exchange), which lexical features cannot read (the Korean fast path leaves it to e5)."""
    return bool(_CONTRAST.search(text))
