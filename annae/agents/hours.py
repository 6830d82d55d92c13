"""Business hours: a team's weekly hours in its time zone, minus its holidays.

``is_open(team, at)`` and ``next_open(team, at)`` are the functions other parts call (the
hand-off message, agent alerts). A team without weekly hours is always open.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from annae.dialogue.conversations import Invalid

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_TZ = "Asia/Seoul"
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
_HOLIDAYS = Path(__file__).parent / "data" / "kr_holidays.json"


class HoursLike(Protocol):
    timezone: str
    hours: dict
    holidays: list


@lru_cache(maxsize=1)
def _kr_data() -> dict:
    return json.loads(_HOLIDAYS.read_text(encoding="utf-8"))


def korean_holidays(year: int) -> list[dict]:
    """Korean public holidays of ``year`` as ``[{"date", "name"}]`` (empty if not in the data)."""
    return list(_kr_data().get(str(year), []))


def _minutes(value: str) -> int:
    if not isinstance(value, str) or not _HHMM.match(value):
        raise Invalid(f"time {value!r} is not HH:MM (00:00-24:00)")
    hh, mm = value.split(":")
    return int(hh) * 60 + int(mm)


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise Invalid(f"unknown time zone {name!r}") from exc
    return name


def check_hours(hours: dict) -> dict:
    """Validated weekly hours ``{"mon": [["09:00", "18:00"], ...]}`` sorted; 400 on overlaps."""
    if not isinstance(hours, dict):
        raise Invalid("hours must be an object of days")
    out: dict[str, list[list[str]]] = {}
    for day, spans in hours.items():
        if day not in DAYS:
            raise Invalid(f"unknown day {day!r}; use {', '.join(DAYS)}")
        if not isinstance(spans, list):
            raise Invalid(f"hours for {day} must be a list of [start, end]")
        parsed = []
        for span in spans:
            if not isinstance(span, list | tuple) or len(span) != 2:
                raise Invalid(f"hours for {day} must be [start, end] pairs")
            start, end = _minutes(span[0]), _minutes(span[1])
            if start >= end:
                raise Invalid(f"on {day} {span[0]}-{span[1]} ends before it starts")
            parsed.append((start, end, span))
        parsed.sort()
        for (_, end_a, a), (start_b, _, b) in zip(parsed, parsed[1:], strict=False):
            if start_b < end_a:
                raise Invalid(
                    f"overlapping business hours on {day}: {a[0]}-{a[1]} and {b[0]}-{b[1]}"
                )
        if parsed:
            out[day] = [list(p[2]) for p in parsed]
    return out


def check_holidays(holidays: list) -> list[str]:
    if not isinstance(holidays, list):
        raise Invalid("holidays must be a list of dates")
    out = []
    for item in holidays:
        value: Any = item.get("date") if isinstance(item, dict) else item  # checked just below
        try:
            out.append(date.fromisoformat(value).isoformat())
        except (TypeError, ValueError) as exc:
            raise Invalid(f"holiday {value!r} is not a YYYY-MM-DD date") from exc
    return sorted(set(out))


def _spans(team: HoursLike, day: date) -> list[tuple[int, int]]:
    if day.isoformat() in set(team.holidays or ()):
        return []
    return [(_minutes(a), _minutes(b)) for a, b in (team.hours or {}).get(DAYS[day.weekday()], [])]


def _local(team: HoursLike, at: datetime) -> datetime:
    return at.astimezone(ZoneInfo(team.timezone or DEFAULT_TZ))


def is_open(team: HoursLike, at: datetime) -> bool:
    """Whether people of ``team`` work at ``at`` (aware datetime)."""
    if not team.hours:
        return True
    local = _local(team, at)
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in _spans(team, local.date()))


def next_open(team: HoursLike, at: datetime, horizon_days: int = 60) -> datetime | None:
    """``at`` if the team is open then, else when it next opens (None: not within the horizon)."""
    if is_open(team, at):
        return at
    local = _local(team, at)
    tz = local.tzinfo
    minute = local.hour * 60 + local.minute
    for offset in range(horizon_days + 1):
        day = local.date() + timedelta(days=offset)
        for start, _end in sorted(_spans(team, day)):
            if offset == 0 and start <= minute:
                continue
            return datetime.combine(day, time(start // 60, start % 60), tzinfo=tz)
    return None


_WEEKDAYS_KO = "월화수목금토일"


def when_text(at: datetime, language: str | None) -> str:
    """``at`` (in the team's zone) as the customer reads it: ``12월 7일 (월) 오전 9:00`` or
    ``Mon, Dec 7, 9:00 AM KST``."""
    hour12 = at.hour % 12 or 12
    if language == "ko":
        half = "오전" if at.hour < 12 else "오후"
        return f"{at.month}월 {at.day}일 ({_WEEKDAYS_KO[at.weekday()]}) {half} {hour12}:{at.minute:02d}"
    half = "AM" if at.hour < 12 else "PM"
    return f"{at:%a, %b} {at.day}, {hour12}:{at.minute:02d} {half} {at.tzname()}"


CLOSED = {
    "en": "Our team is not available right now. People are back on {when}; your conversation is "
    "queued and a person will reply then.",
    "ko": "지금은 상담 시간이 아니에요. {when}부터 상담원이 답변드릴게요. 대화는 대기열에 "
    "남겨 두었어요.",
}
CLOSED_NO_DATE = {
    "en": "Our team is not available right now; your conversation is queued and a person will "
    "reply as soon as they are back.",
    "ko": "지금은 상담 시간이 아니에요. 대화는 대기열에 남겨 두었고, 상담원이 돌아오는 대로 답변드릴게요.",
}


def closed_text(team: HoursLike, at: datetime, language: str | None) -> str:
    """The hand-off message outside hours: when people are back, localized."""
    lang = language if language in CLOSED else "en"
    back = next_open(team, at)
    if back is None:
        return CLOSED_NO_DATE[lang]
    return CLOSED[lang].format(when=when_text(back, lang))
