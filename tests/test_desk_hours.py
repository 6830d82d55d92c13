"""Business hours: weekly spans in a time zone, Korean holidays, when people are back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from annae.agents import hours
from annae.dialogue.conversations import Invalid

SEOUL = ZoneInfo("Asia/Seoul")
WEEKDAYS = {
    d: [["09:00", "12:00"], ["13:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")
}


@dataclass
class T:
    hours: dict = field(default_factory=lambda: dict(WEEKDAYS))
    holidays: list = field(
        default_factory=lambda: hours.check_holidays(hours.korean_holidays(2026))
    )
    timezone: str = "Asia/Seoul"


def kst(y: int, m: int, d: int, hh: int, mm: int) -> datetime:
    """A Seoul wall-clock time as an aware UTC datetime."""
    return datetime(y, m, d, hh, mm, tzinfo=SEOUL).astimezone(UTC)


def test_open_in_hours_closed_at_lunch_nights_weekends_and_holidays():
    team = T()
    assert hours.is_open(team, kst(2026, 12, 7, 9, 0))  # Monday 09:00 KST
    assert hours.is_open(team, kst(2026, 12, 7, 17, 59))
    assert not hours.is_open(team, kst(2026, 12, 7, 12, 30))  # lunch
    assert not hours.is_open(team, kst(2026, 12, 7, 18, 0))  # end is exclusive
    assert not hours.is_open(team, kst(2026, 12, 5, 10, 0))  # Saturday
    assert not hours.is_open(team, kst(2026, 12, 25, 10, 0))  # 성탄절 (a Friday)
    assert not hours.is_open(team, kst(2026, 9, 24, 10, 0))  # 추석 연휴 (Thursday)
    # 09:00 KST is 00:00 UTC: the zone matters
    assert hours.is_open(team, datetime(2026, 12, 7, 0, 0, tzinfo=UTC))
    assert not hours.is_open(T(timezone="UTC"), datetime(2026, 12, 7, 0, 0, tzinfo=UTC))
    assert hours.is_open(T(hours={}), kst(2026, 12, 25, 3, 0))  # no hours: always open


def test_next_open_skips_lunch_weekend_and_holidays():
    team = T()
    seoul = SEOUL
    assert hours.next_open(team, kst(2026, 12, 7, 12, 30)) == datetime(
        2026, 12, 7, 13, 0, tzinfo=seoul
    )
    # Friday 24 Dec evening → Christmas (Fri 25) is a holiday → Monday 28 Dec
    assert hours.next_open(team, kst(2026, 12, 24, 19, 0)) == datetime(
        2026, 12, 28, 9, 0, tzinfo=seoul
    )
    # Wednesday 23 Sep evening → 추석 24-26 → Sunday → Monday 28 Sep
    assert hours.next_open(team, kst(2026, 9, 23, 18, 30)) == datetime(
        2026, 9, 28, 9, 0, tzinfo=seoul
    )
    at = kst(2026, 12, 7, 10, 0)
    assert hours.next_open(team, at) == at
    assert hours.next_open(T(hours={"mon": [["09:00", "10:00"]]}, holidays=[]), at, 0) is None


def test_closed_message_is_localized_with_the_time_people_are_back():
    team = T()
    at = kst(2026, 12, 24, 19, 0)
    ko = hours.closed_text(team, at, "ko")
    en = hours.closed_text(team, at, "en")
    assert "12월 28일 (월) 오전 9:00부터" in ko and "대기열" in ko
    assert "Mon, Dec 28, 9:00 AM KST" in en and "queued" in en
    assert hours.when_text(datetime(2026, 12, 28, 14, 5, tzinfo=UTC), "ko").endswith("오후 2:05")


@pytest.mark.parametrize(
    ("weekly", "words"),
    [
        ({"mon": [["09:00", "13:00"], ["12:00", "18:00"]]}, "overlapping business hours on mon"),
        ({"mon": [["09:00", "18:00"], ["09:00", "18:00"]]}, "overlapping"),
        ({"tue": [["18:00", "09:00"]]}, "ends before it starts"),
        ({"wed": [["9:00", "18:00"]]}, "is not HH:MM"),
        ({"wed": [["09:00", "25:00"]]}, "is not HH:MM"),
        ({"holiday": [["09:00", "18:00"]]}, "unknown day"),
        ({"thu": "09:00-18:00"}, "must be a list"),
        ({"fri": [["09:00"]]}, "pairs"),
    ],
)
def test_bad_hours_are_refused_with_the_reason(weekly, words):
    with pytest.raises(Invalid, match=words):
        hours.check_hours(weekly)


def test_korean_holidays_are_data_for_2026():
    days = {d["date"]: d["name"] for d in hours.korean_holidays(2026)}
    assert days["2026-02-17"] == "설날" and days["2026-09-25"] == "추석"
    assert "2026-10-05" in days  # 개천절 falls on a Saturday: substitute Monday
    assert len(days) == 20 and hours.korean_holidays(1999) == []
    assert hours.check_hours({"mon": [["13:00", "18:00"], ["09:00", "12:00"]], "sun": []}) == {
        "mon": [["09:00", "12:00"], ["13:00", "18:00"]]
    }
