"""PII redaction: replace personal data in free text by typed placeholders.

``redact(text)`` finds e-mail addresses, phone numbers (Korean and international),
Luhn-valid payment cards, Korean resident registration numbers (주민등록번호),
bank accounts in context (and IBANs), IPv4/IPv6 addresses and Korean/English
street addresses, and returns the text with ``[EMAIL]``, ``[PHONE]``, ... in their
place plus the spans found on the original text.

Every pattern is precompiled, anchored by look-behinds and uses bounded repetition
only, so the cost is linear in the input length (no catastrophic backtracking).
Rules and measured quality: ``docs/privacy.md``.
"""

from __future__ import annotations

import calendar
import ipaddress
import logging
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import NamedTuple

import phonenumbers
from phonenumbers import Leniency, PhoneNumberMatcher

TYPES: tuple[str, ...] = ("EMAIL", "PHONE", "CARD", "RRN", "ACCOUNT", "IP", "ADDRESS")
EMAIL, PHONE, CARD, RRN, ACCOUNT, IP, ADDRESS = TYPES
ALL: frozenset[str] = frozenset(TYPES)
# When two detections overlap, the one whose type comes first here wins (then the longer one).
PRIORITY = {t: i for i, t in enumerate((EMAIL, IP, RRN, CARD, PHONE, ACCOUNT, ADDRESS))}


class Span(NamedTuple):
    """A detection on the original text: ``text[start:end]`` is personal data of ``type``."""

    type: str
    start: int
    end: int


@dataclass(frozen=True)
class Redaction:
    """The redacted text, the spans replaced (on the original text) and counts per type."""

    text: str
    spans: list[Span] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.text


# --- shared pieces ----------------------------------------------------------------------------

DASH = "\\-\u2010\u2011\u2013\u2014\uff0d"  # - ‐ ‑ – — －
_D = f"[{DASH}]"
# A number must not continue a token: no digit/letter right before, nor "1-", "1." or "ORD-"
# ("Tel.02-123-4567" and "M.010-..." are fine).
_L = rf"(?<![\dA-Za-z_])(?<!\d[{DASH}.])(?<![A-Za-z][{DASH}])"
_R = rf"(?![\dA-Za-z_])(?![{DASH}.]\d)"
# Order, tracking, invoice ... numbers named right before a digit group are never PII.
_NOT_PII_BEFORE = re.compile(
    r"(?:주문|송장|운송장|택배|배송|접수|예약|반품|교환|상품|모델|제품|쿠폰|사업자|"
    r"바코드|barcode|EAN|ISBN|UPC|JAN|"
    r"order|tracking|invoice|ref(?:erence)?|ticket|case|sku|model|serial|coupon|item)"
    r"\s*(?:번호|no\.?|number|id|code|#)?\s*(?:는|은|가|이|:|：|=|#)?\s*$",
    re.I,
)


def _digits(s: str) -> str:
    return "".join(str(int(c)) for c in s if c.isdecimal())


def _context_before(text: str, start: int, width: int = 25) -> str:
    return text[max(0, start - width) : start]


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# --- e-mail -----------------------------------------------------------------------------------

_EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]{1,64}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)


def _find_email(text: str) -> Iterator[tuple[int, int]]:
    for m in _EMAIL_RE.finditer(text):
        s, e = m.span()
        while s < e and text[s] == ".":  # "...name@x.com" from a sentence
            s += 1
        yield s, e


# --- IP addresses -----------------------------------------------------------------------------

_OCT = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(rf"(?<![0-9A-Za-z_.]){_OCT}(?:\.{_OCT}){{3}}(?![0-9A-Za-z_])(?!\.[0-9])")
_VERSION_BEFORE = re.compile(
    r"(?:\bv|\bver\.?|version|버전|릴리스|release|build|빌드|firmware|펌웨어|compatible\s+with|호환|"
    r"(?:update|updated|updating|upgrade|upgraded|upgrading)\s+to)"
    r"\s*:?\s*$",
    re.I,
)
_IPV6_RUN = re.compile(r"(?<![0-9A-Za-z_:.])(?=[0-9A-Za-z_.]*:[0-9A-Za-z_.]*:)[0-9A-Za-z_:.]{3,60}")


def _find_ip(text: str) -> Iterator[tuple[int, int]]:
    for m in _IPV4_RE.finditer(text):
        if not _VERSION_BEFORE.search(_context_before(text, m.start(), 12)):
            yield m.span()
    for m in _IPV6_RUN.finditer(text):
        run, s = m.group(), m.start()
        for _ in range(3):  # "IPv6:2001:db8::1" -> drop the "IPv6:" prefix
            cand = run.rstrip(".")
            if cand.endswith(":") and not cand.endswith("::"):
                cand = cand[:-1]
            if _valid_ipv6(cand):
                yield s, s + len(cand)
                break
            cut = run.find(":")
            if cut < 0:
                break
            run, s = run[cut + 1 :], s + cut + 1


def _valid_ipv6(cand: str) -> bool:
    if cand.count(":") < 2 or not any(c.isalnum() for c in cand):
        return False
    try:
        ipaddress.IPv6Address(cand)
    except ValueError:
        return False
    return True


# --- resident registration numbers (주민등록번호 / 외국인등록번호) -------------------------------

_RRN_RE = re.compile(
    rf"{_L}(\d{{2}})(\d{{2}})(\d{{2}})[ ]?{_D}?[ ]?([0-9])(\d{{6}}|[*xX•●]{{6}}){_R}"
)
_RRN_CONTEXT = re.compile(
    r"주민|외국인\s*등록|resident|registration\s*(?:no|number)|\bRRN\b|\bARC\b", re.I
)
_RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
_CENTURY = {"1": 1900, "2": 1900, "5": 1900, "6": 1900, "3": 2000, "4": 2000, "7": 2000,
            "8": 2000, "9": 1800, "0": 1800}  # fmt: skip


def rrn_checksum_ok(digits: str) -> bool:
    """The pre-2020 check digit of a 13-digit 주민등록번호."""
    total = sum(int(d) * w for d, w in zip(digits[:12], _RRN_WEIGHTS, strict=True))
    return (11 - total % 11) % 10 == int(digits[12])


def _rrn_date_ok(yy: str, mm: str, dd: str, gender: str) -> bool:
    year, month, day = _CENTURY[gender] + int(_digits(yy)), int(_digits(mm)), int(_digits(dd))
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return False
    return date(year, month, day) <= date.today()  # nobody is born in the future


def _find_rrn(text: str) -> Iterator[tuple[int, int]]:
    for m in _RRN_RE.finditer(text):
        yy, mm, dd, gender, tail = m.groups()
        if _NOT_PII_BEFORE.search(_context_before(text, m.start())):
            continue
        if not _rrn_date_ok(yy, mm, dd, gender):
            continue
        if not tail.isdecimal():  # masked: 900101-1******
            yield m.span()
            continue
        digits = _digits(yy + mm + dd + gender + tail)
        if gender in "1234" and rrn_checksum_ok(digits):
            yield m.span()
        elif gender in "12345678" and _RRN_CONTEXT.search(_context_before(text, m.start(), 30)):
            # Numbers issued since Oct 2020 (and foreigners') need not satisfy the check digit.
            yield m.span()


# --- payment cards ----------------------------------------------------------------------------

_CARD_RE = re.compile(
    rf"{_L}(?:\d{{13,19}}"
    rf"|\d{{4}}(?P<s>[ {DASH}])\d{{4}}(?P=s)\d{{4}}(?P=s)\d{{1,4}}(?:(?P=s)\d{{1,3}})?"
    rf"|\d{{4}}(?P<t>[ {DASH}])\d{{6}}(?P=t)\d{{4,5}}){_R}"
)


_CARD_WORDS = re.compile(r"카드|card|visa|master|amex|결제|credit|debit|체크", re.I)
_IBAN_HEAD = re.compile(r"[A-Z]{2}\d{2}[ ]?$")


def _last_hit(regex: re.Pattern[str], text: str) -> int:
    pos = -1
    for m in regex.finditer(text):
        pos = m.end()
    return pos


def _find_card(text: str) -> Iterator[tuple[int, int]]:
    for m in _CARD_RE.finditer(text):
        digits = _digits(m.group())
        if not 13 <= len(digits) <= 19 or len(set(digits)) == 1 or not _luhn(digits):
            continue
        before = _context_before(text, m.start())
        if _NOT_PII_BEFORE.search(before) or _IBAN_HEAD.search(before):
            continue
        # "하나은행 12345678901234": a bank named nearer than any card word means an account.
        if _last_hit(_ACCOUNT_BEFORE, before) > _last_hit(_CARD_WORDS, before):
            continue
        yield m.span()


# --- phone numbers ----------------------------------------------------------------------------

_SEP = rf"[ .{DASH}]"
_KR_AREA = r"(?:1[016789]|2|3[1-3]|4[1-4]|5[1-5]|6[1-4]|70|50[2-8]|80)"
_KR_PHONE_RE = re.compile(
    rf"(?=[\d(+]){_L}(?<!\+)(?:"
    # (02) 123-4567, (031)1234-5678
    rf"\(0{_KR_AREA}\)[ ]?\d{{3,4}}{_SEP}?\d{{4}}"
    # +82 10-1234-5678, +82 (0)2 123 4567, 0082-10-..., 010-1234-5678, 02)123-4567, 01012345678
    rf"|(?:(?:\+|\b00)[ ]?82[ {DASH}]?(?:\(0\)[ ]?)?0?|0){_KR_AREA}(?:\)[ ]?|{_SEP})?\d{{3,4}}{_SEP}?\d{{4}}"
    # 1588-1234 style nation-wide business numbers (not years: "1800-1900년")
    rf"|1(?:5[4-9]|6[0-9]|8[0-9])\d{_SEP}\d{{4}}(?!\s?년)"
    rf"){_R}"
)
_INTL_RE = re.compile(rf"(?<![\dA-Za-z_+])\+[ ]?\d[\d ().{DASH}]{{5,20}}\d")
_NANP_RE = re.compile(
    rf"{_L}(?:\+?1[ .{DASH}]?)?(?:\(\d{{3}}\)[ ]?|\d{{3}}[ .{DASH}])\d{{3}}[ .{DASH}]\d{{4}}{_R}"
)
_UK_RE = re.compile(rf"{_L}0\d{{2,4}}[ ]\d{{3,4}}[ ]?\d{{3,4}}{_R}")


def _find_phone(text: str) -> Iterator[tuple[int, int]]:
    for m in _KR_PHONE_RE.finditer(text):
        yield m.span()
    for m in _INTL_RE.finditer(text):
        for hit in PhoneNumberMatcher(m.group(), "KR", leniency=Leniency.VALID):
            yield m.start() + hit.start, m.start() + hit.end
    for regex, region in ((_NANP_RE, "US"), (_UK_RE, "GB")):
        for m in regex.finditer(text):
            try:
                number = phonenumbers.parse(m.group(), region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                yield m.span()


# --- bank accounts ----------------------------------------------------------------------------

_BANKS = (
    r"국민은행|KB국민|KB|국민|신한은행|신한|우리은행|우리|하나은행|하나|농협은행|농협|NH농협|NH|"
    r"기업은행|IBK|카카오뱅크|카뱅|카카오|토스뱅크|토스|케이뱅크|새마을금고|우체국|수협|"
    r"씨티은행|씨티|SC제일|제일은행|신협|산업은행|(?:부산|대구|경남|광주|전북|제주)은행"
)
_ACCOUNT_BEFORE = re.compile(
    rf"(?:계좌|입금|송금|이체|예금주|은행|뱅크|{_BANKS}|\bbank\b|\baccount\b|\bacct\b|\ba/c\b|"
    r"\bIBAN\b|routing|sort\s*code|deposit|transfer|wire)",
    re.I,
)
_ACCOUNT_AFTER = re.compile(rf"^\s?[(\[]?\s?(?:{_BANKS}|은행|계좌|bank)", re.I)
_ACCOUNT_RE = re.compile(rf"{_L}(?:\d{{2,6}}(?:[ {DASH}]\d{{1,8}}){{1,4}}|\d{{9,16}}){_R}")
_CURRENCY_AFTER = re.compile(r"^\s?(?:원|won|krw|₩|달러|usd|\$)", re.I)
_IBAN_RE = re.compile(
    r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)


def iban_ok(iban: str) -> bool:
    """ISO 13616 mod-97 check of an IBAN (spaces allowed)."""
    s = iban.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _find_account(text: str) -> Iterator[tuple[int, int]]:
    for m in _ACCOUNT_RE.finditer(text):
        s, e = m.span()
        if not 9 <= len(_digits(m.group())) <= 16:
            continue
        before = _context_before(text, s, 30)
        if _NOT_PII_BEFORE.search(before) or _CURRENCY_AFTER.search(text[e : e + 6]):
            continue
        if _ACCOUNT_BEFORE.search(before) or _ACCOUNT_AFTER.search(text[e : e + 12]):
            yield s, e
    for m in _IBAN_RE.finditer(text):
        if iban_ok(m.group()):
            yield m.span()


# --- street addresses -------------------------------------------------------------------------

_SIDO = (
    r"서울특별시|서울시|서울|부산광역시|부산시|부산|대구광역시|대구시|대구|인천광역시|인천시|인천|"
    r"광주광역시|광주시|광주|대전광역시|대전시|대전|울산광역시|울산시|울산|세종특별자치시|세종|"
    r"경기도|경기|강원특별자치도|강원도|강원|충청북도|충북|충청남도|충남|전북특별자치도|전라북도|전북|"
    r"전라남도|전남|경상북도|경북|경상남도|경남|제주특별자치도|제주도|제주"
)
_SGG = r"[가-힣]{1,5}(?:시|군|구)"
_ROAD = r"[가-힣]{1,10}(?:\d{1,4}번?)?(?:대로|로|길)(?:[ ]?\d{1,4}번?길)?"
_DONG = r"[가-힣]{1,8}\d{0,2}(?:동|읍|면|리|가)"
_NUM = r"(?:산[ ]?)?\d{1,5}(?:-\d{1,5})?(?:번지)?"
_DETAIL = r"(?:,?[ ]?\d{1,4}동)?(?:,?[ ]?\d{1,5}호)?(?:,?[ ]?(?:지하[ ]?|B)?\d{1,3}층)?"
# Not "3개", "2곳", "5번 출구": a count after a district is no address.
_ADDR_END = (
    r"(?![\d\-])(?![ ]?(?:개|곳|명|번|시|분|원|일|월|년|건|회|주|차|대|장|권|병|잔|km|kg|m\b|%))"
)
_KO_ADDRESS_RE = re.compile(
    rf"(?<![가-힣])(?=[가-힣])(?:(?:{_SIDO})[ ]{{1,2}})?(?:{_SGG}[ ]{{1,2}}){{1,2}}"
    rf"(?:{_ROAD}|{_DONG})[ ]?{_NUM}{_DETAIL}{_ADDR_END}"
    rf"|(?<![가-힣])(?=[가-힣])(?:{_SIDO})[ ]{{1,2}}(?:{_ROAD})[ ]?{_NUM}{_DETAIL}{_ADDR_END}"
)
_STREET = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
    r"Terrace|Parkway|Pkwy|Highway|Hwy"
)
_EN_ADDRESS_RE = re.compile(
    # 1600 Pennsylvania Ave, Apt 4B, Washington, DC 20500
    rf"(?<![\dA-Za-z])\d{{1,5}}[A-Za-z]?[ ](?:[A-Z][a-z]+[ ]){{1,3}}(?:{_STREET})\b\.?"
    rf"(?:,?[ ](?:Apt|Suite|Unit|Ste|#)\.?[ ]?[0-9A-Za-z]{{1,6}})?"
    rf"(?:,[ ][A-Z][a-z]+(?:[ ][A-Z][a-z]+)?,[ ][A-Z]{{2}}[ ]\d{{5}}(?:-\d{{4}})?)?"
    # 235 Pangyoyeok-ro, Bundang-gu, Seongnam-si, Gyeonggi-do
    rf"|(?<![\dA-Za-z])\d{{1,5}}(?:-\d{{1,5}})?,?[ ][A-Z][a-z]+(?:-[a-z]+)?-(?:daero|ro|gil)"
    rf"(?:[ ]\d{{1,3}}(?:beon)?-gil)?(?:,[ ][A-Z][a-z]+-(?:gu|si|gun|dong|eup|myeon|do)){{1,3}}"
    rf"(?:,[ ](?:Seoul|Busan|Incheon|Daegu|Daejeon|Gwangju|Ulsan|Sejong|Jeju))?"
)


def _find_address(text: str) -> Iterator[tuple[int, int]]:
    for regex in (_KO_ADDRESS_RE, _EN_ADDRESS_RE):
        for m in regex.finditer(text):
            s, e = m.span()
            while e > s and text[e - 1] in ", ":
                e -= 1
            yield s, e


_DETECTORS: dict[str, Callable[[str], Iterable[tuple[int, int]]]] = {
    EMAIL: _find_email,
    IP: _find_ip,
    RRN: _find_rrn,
    CARD: _find_card,
    PHONE: _find_phone,
    ACCOUNT: _find_account,
    ADDRESS: _find_address,
}


# --- public API -------------------------------------------------------------------------------


_HINT = re.compile(r"[\d@]|::")
# Full-width forms typed by Korean IMEs map one character to one, so offsets still hold.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}


def _check_types(types: Iterable[str]) -> frozenset[str]:
    if isinstance(types, str):
        types = [types]
    chosen = frozenset(t.upper() for t in types)
    unknown = chosen - ALL
    if unknown:
        raise ValueError(f"unknown PII type(s) {sorted(unknown)}; known: {', '.join(TYPES)}")
    return chosen


def detect(text: str, *, types: Iterable[str] = ALL) -> list[Span]:
    """The non-overlapping PII spans in ``text``, in text order."""
    if not isinstance(text, str):
        raise TypeError(f"redact() needs a str, got {type(text).__name__}")
    chosen = _check_types(types)
    text = text.translate(_FULLWIDTH)
    if not _HINT.search(text):  # every kind needs a digit, an '@' or (IPv6) a '::'
        return []
    candidates = [
        (PRIORITY[kind], -(e - s), s, e, kind)
        for kind in TYPES
        if kind in chosen
        for s, e in _DETECTORS[kind](text)
        if e > s
    ]
    candidates.sort()
    starts: list[int] = []
    ends: list[int] = []
    kinds: list[str] = []
    for _prio, _neg, s, e, kind in candidates:
        i = bisect_left(starts, s)
        if (i > 0 and ends[i - 1] > s) or (i < len(starts) and starts[i] < e):
            continue  # overlaps a stronger detection
        starts.insert(i, s)
        ends.insert(i, e)
        kinds.insert(i, kind)
    return [Span(k, s, e) for k, s, e in zip(kinds, starts, ends, strict=True)]


def redact(text: str, *, types: Iterable[str] = ALL) -> Redaction:
    """Replace the personal data in ``text`` by ``[TYPE]`` placeholders."""
    spans = detect(text, types=types)
    out: list[str] = []
    pos = 0
    for span in spans:
        out.append(text[pos : span.start])
        out.append(f"[{span.type}]")
        pos = span.end
    out.append(text[pos:])
    return Redaction("".join(out), spans, dict(Counter(span.type for span in spans)))


def redact_text(text: str, *, types: Iterable[str] = ALL) -> str:
    """``redact(text).text``: the text with personal data replaced by placeholders."""
    return redact(text, types=types).text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts personal data from every record it passes.

    ``logging.getLogger().addFilter(RedactingFilter())`` only covers records logged on the root
    logger itself; attach it to handlers (``handler.addFilter(...)``) to cover every logger.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return True
