"""Write ``pii_corpus.jsonl``: our own chat-style sentences with the personal data annotated.

Every sentence is a hand-written template; slots such as ``{MOBILE}`` are filled with
synthetic values (seeded, so the file is reproducible) and the exact span and type of
each value is recorded while the sentence is assembled -- the annotation never comes
from the redactor it is used to measure. Near-miss slots (order numbers, dates, prices,
Luhn-invalid card numbers ...) are filled the same way but carry no span.

Run ``python tests/pii_corpus_generator.py`` to regenerate the file. A development tool, kept with
the tests (which check that the committed file is its output), not in the installed package.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections.abc import Callable
from pathlib import Path

import phonenumbers

OUT = Path(__file__).resolve().parents[1] / "annae" / "privacy" / "corpus" / "pii_corpus.jsonl"
rng = random.Random(20261126)


def digits(n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def luhn_complete(prefix: str, length: int) -> str:
    """``prefix`` padded with random digits to ``length`` with a valid Luhn check digit."""
    body = prefix + digits(length - len(prefix) - 1)
    for check in string.digits:
        cand = body + check
        total = 0
        for i, ch in enumerate(reversed(cand)):
            d = int(ch)
            if i % 2:
                d = d * 2 - 9 if d > 4 else d * 2
            total += d
        if total % 10 == 0:
            return cand
    raise AssertionError("unreachable")


def group(number: str, sizes: tuple[int, ...], sep: str) -> str:
    parts, pos = [], 0
    for size in sizes:
        parts.append(number[pos : pos + size])
        pos += size
    return sep.join(parts)


# --- PII generators: each returns the surface text ---------------------------------------------

GIVEN = ["minji", "jihoon", "seoyeon", "doyun", "hayoon", "eunwoo", "sujin", "taeho", "yerin", "junseo",
         "alex", "sam", "jordan", "casey", "robin", "morgan", "taylor", "jamie"]  # fmt: skip
FAMILY = [
    "kim",
    "lee",
    "park",
    "choi",
    "jung",
    "kang",
    "cho",
    "yoon",
    "jang",
    "lim",
    "smith",
    "brown",
]
DOMAINS = ["example.com", "example.co.kr", "example.net", "example.org", "mail.example.kr",
           "shop-example.co.kr", "test.example.io"]  # fmt: skip


def email() -> str:
    g, f = rng.choice(GIVEN), rng.choice(FAMILY)
    local = rng.choice([f"{g}.{f}", f"{g}{f}{rng.randint(1, 99)}", f"{f}_{g}", f"{g[0]}{f}",
                        f"{g}+order", f"{g}.{f}.{rng.randint(80, 99)}"])  # fmt: skip
    return f"{local}@{rng.choice(DOMAINS)}"


def mobile() -> str:
    p, a, b = rng.choice(["010", "010", "010", "011", "016"]), digits(4), digits(4)
    return rng.choice([f"{p}-{a}-{b}", f"{p}{a}{b}", f"{p} {a} {b}", f"{p}.{a}.{b}",
                       f"+82 {p[1:]}-{a}-{b}", f"+82-{p[1:]}-{a}-{b}", f"+82{p[1:]}{a}{b}",
                       f"({p}){a}-{b}", f"{p}-{a}-{b}"])  # fmt: skip


def landline() -> str:
    area = rng.choice(["02", "031", "032", "051", "053", "042", "062", "064", "070", "0505"])
    mid = digits(rng.choice([3, 4])) if area != "070" else digits(4)
    mid = str(rng.randint(2, 9)) + mid[1:]
    end = digits(4)
    forms = [
        f"{area}-{mid}-{end}",
        f"{area}){mid}-{end}",
        f"({area}) {mid}-{end}",
        f"{area} {mid} {end}",
    ]
    if area in ("02", "031", "051"):
        forms.append(f"+82 {area[1:]}-{mid}-{end}")
    return rng.choice(forms)


def business() -> str:
    return f"{rng.choice(['1588', '1577', '1544', '1566', '1600', '1644', '1661', '1899', '1800'])}-{digits(4)}"


def _valid_intl(candidates: Callable[[], str]) -> str:
    for _ in range(200):
        cand = candidates()
        if phonenumbers.is_valid_number(phonenumbers.parse(cand, "US")):
            return cand
    raise AssertionError("no valid number generated")


def intl() -> str:
    return _valid_intl(lambda: rng.choice([
        f"+1 212-555-01{digits(2)}", f"+1 (646) 555-01{digits(2)}", f"+44 20 7946 0{digits(3)}",
        f"+44 7911 {rng.randint(100000, 999999)}", f"+81 3-{digits(4)}-{digits(4)}",
        f"+81 90-{digits(4)}-{digits(4)}", f"+86 138 {digits(4)} {digits(4)}",
        f"+65 6{digits(3)} {digits(4)}", f"+33 1 {digits(2)} {digits(2)} {digits(2)} {digits(2)}",
        f"+49 30 {digits(8)}", f"+61 2 {rng.randint(8000, 9999)} {digits(4)}",
    ]))  # fmt: skip


def us_phone() -> str:
    for _ in range(200):
        area = rng.choice(["212", "415", "646", "202", "312", "617", "206"])
        cand = rng.choice([f"({area}) 555-01{digits(2)}", f"{area}-555-01{digits(2)}",
                           f"{area}.555.01{digits(2)}", f"1-{area}-555-01{digits(2)}"])  # fmt: skip
        if phonenumbers.is_valid_number(phonenumbers.parse(cand, "US")):
            return cand
    raise AssertionError("no valid US number")


def uk_phone() -> str:
    for _ in range(200):
        cand = rng.choice(
            [
                f"020 7946 0{digits(3)}",
                f"0161 496 0{digits(3)}",
                f"07911 {rng.randint(100000, 999999)}",
            ]
        )
        if phonenumbers.is_valid_number(phonenumbers.parse(cand, "GB")):
            return cand
    raise AssertionError("no valid UK number")


CARD_BRANDS = [("4", 16), ("51", 16), ("53", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16),
               ("35", 16), ("62", 16), ("62", 19), ("9410", 16), ("36", 14), ("4", 13)]  # fmt: skip


def card() -> str:
    prefix, length = rng.choice(CARD_BRANDS)
    number = luhn_complete(prefix, length)
    return _format_card(number)


def _format_card(number: str) -> str:
    n, sep = len(number), rng.choice([" ", "-", ""])
    if n == 15:
        return group(number, (4, 6, 5), sep)
    if n == 14:
        return group(number, (4, 6, 4), sep)
    if n == 16:
        return group(number, (4, 4, 4, 4), sep)
    if n == 19:
        return group(number, (4, 4, 4, 4, 3), sep)
    return number


def bad_card() -> str:
    """A 16-digit number whose Luhn check fails (near-miss)."""
    good = luhn_complete(rng.choice(["4", "5", "9"]), 16)
    bad = good[:-1] + str((int(good[-1]) + rng.randint(1, 9)) % 10)
    return _format_card(bad)


RRN_W = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def _rrn_digits(checksum_ok: bool, years: tuple[int, int] = (1950, 2019)) -> str:
    year = rng.randint(*years)
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    gender = rng.choice("12") if year < 2000 else rng.choice("34")
    body = f"{year % 100:02d}{month:02d}{day:02d}{gender}{digits(5)}"
    check = (11 - sum(int(d) * w for d, w in zip(body, RRN_W, strict=True)) % 11) % 10
    if not checksum_ok:
        check = (check + rng.randint(1, 9)) % 10
    return body + str(check)


def rrn() -> str:
    d = _rrn_digits(True)
    return rng.choice(
        [f"{d[:6]}-{d[6:]}", f"{d[:6]}-{d[6:]}", d, f"{d[:6]} - {d[6:]}", f"{d[:6]} {d[6:]}"]
    )


def rrn_new() -> str:
    """An RRN issued after Oct 2020: valid date and gender digit, check digit not kept."""
    d = _rrn_digits(False, (2020, 2024))
    return f"{d[:6]}-{d[6:]}"


def rrn_masked() -> str:
    d = _rrn_digits(True)
    return f"{d[:6]}-{d[6]}******"


def bad_rrn() -> str:
    """13 digits in the RRN layout with an impossible date (near-miss)."""
    return f"{rng.randint(0, 99):02d}{rng.randint(13, 19)}{rng.randint(10, 28)}-{rng.choice('12')}{digits(6)}"


ACCOUNT_FORMATS = [("국민", (6, 2, 6)), ("신한", (3, 3, 6)), ("우리", (4, 3, 6)), ("하나", (3, 6, 5)),
                   ("농협", (3, 4, 4, 2)), ("기업", (3, 6, 2, 3)), ("카카오뱅크", (4, 2, 7)),
                   ("토스뱅크", (4, 4, 4)), ("새마을금고", (4, 2, 6, 1)), ("우체국", (6, 2, 6))]  # fmt: skip


def account_number(bank: str) -> str:
    sizes = dict(ACCOUNT_FORMATS)[bank]
    number = digits(sum(sizes))
    number = str(rng.randint(1, 9)) + number[1:]
    return group(number, sizes, "-") if rng.random() < 0.85 else number


def iban() -> str:
    country, bban = rng.choice(
        [("DE", digits(18)), ("GB", "NWBK" + digits(14)), ("FR", digits(23))]
    )
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(c, 36)) for c in moved)) % 97
    raw = f"{country}{check:02d}{bban}"
    return " ".join(raw[i : i + 4] for i in range(0, len(raw), 4)) if rng.random() < 0.7 else raw


def ipv4() -> str:
    return rng.choice([f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                       f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                       f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"])  # fmt: skip


def ipv6() -> str:
    h = lambda: f"{rng.randint(0, 0xFFFF):x}"  # noqa: E731
    return rng.choice([f"2001:db8::{h()}", f"fe80::{h()}:{h()}:{h()}:{h()}",
                       f"2001:db8:{h()}:{h()}:{h()}:{h()}:{h()}:{h()}", f"2001:db8:{h()}::{h()}:{h()}"])  # fmt: skip


SIDO = [
    "서울특별시",
    "서울",
    "서울시",
    "부산광역시",
    "경기도",
    "경기",
    "인천광역시",
    "대전",
    "제주특별자치도",
]
ROADS = {"서울특별시": [("강남구", "테헤란로"), ("마포구", "월드컵북로"), ("종로구", "세종대로"), ("송파구", "올림픽로35길")],
         "부산광역시": [("해운대구", "센텀중앙로"), ("부산진구", "중앙대로")],
         "경기도": [("성남시 분당구", "판교역로"), ("수원시 영통구", "광교중앙로"), ("고양시 일산동구", "중앙로 1275번길")],
         "인천광역시": [("연수구", "컨벤시아대로")], "대전": [("유성구", "대학로")],
         "제주특별자치도": [("제주시", "첨단로")]}  # fmt: skip
DONGS = [("서울", "강남구", "역삼동"), ("부산", "해운대구", "우동"), ("서울특별시", "관악구", "신림동"),
         ("경기", "용인시 수지구", "풍덕천동")]  # fmt: skip


def address_ko() -> str:
    detail = rng.choice(["", "", f", {rng.randint(1, 20)}층", f" {rng.randint(101, 120)}동 {rng.randint(101, 1504)}호",
                         f" {rng.randint(101, 1204)}호"])  # fmt: skip
    if rng.random() < 0.25:
        sido, gu, dong = rng.choice(DONGS)
        return f"{sido} {gu} {dong} {rng.randint(1, 999)}-{rng.randint(1, 99)}{detail}"
    sido = rng.choice(list(ROADS))
    gu, road = rng.choice(ROADS[sido])
    short = {
        "서울특별시": rng.choice(["서울특별시", "서울", "서울시"]),
        "경기도": rng.choice(["경기도", "경기"]),
    }.get(sido, sido)
    lead = "" if rng.random() < 0.2 else f"{short} "
    return f"{lead}{gu} {road} {rng.randint(1, 500)}{detail}"


def address_en() -> str:
    return rng.choice([
        f"{rng.randint(10, 9999)} {rng.choice(['Maple', 'Oak', 'Cedar Hill', 'Elm', 'Harbor View'])} "
        f"{rng.choice(['Street', 'St', 'Avenue', 'Ave', 'Road', 'Drive', 'Lane'])}",
        f"{rng.randint(10, 999)} {rng.choice(['Maple', 'Pine'])} St, Apt {rng.randint(1, 30)}{rng.choice('AB')}, "
        f"Springfield, IL {digits(5)}",
        f"{rng.randint(1, 500)} Teheran-ro, Gangnam-gu, Seoul",
        f"{rng.randint(1, 300)} Pangyoyeok-ro, Bundang-gu, Seongnam-si, Gyeonggi-do",
    ])  # fmt: skip


# --- near-miss generators (no span) ------------------------------------------------------------


def order_no() -> str:
    return rng.choice([f"2024{rng.randint(10, 12)}{rng.randint(10, 28)}-{digits(6)}", f"ORD-2024-{digits(4)}",
                       f"A{digits(13)}", f"20241126{digits(7)}", f"#{digits(8)}"])  # fmt: skip


def date_str() -> str:
    m, d = rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice([f"2024-{m:02d}-{d:02d}", f"2024.{m:02d}.{d:02d}", f"2024/{m}/{d}", f"{m}월 {d}일",
                       f"{m:02d}/{d:02d}/2024", f"2024년 {m}월 {d}일"])  # fmt: skip


def time_str() -> str:
    return rng.choice([f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}", f"오후 {rng.randint(1, 11)}시 {rng.randint(1, 59)}분",
                       f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
                       f"{rng.randint(1, 12)}:{rng.randint(10, 59)} pm"])  # fmt: skip


def price() -> str:
    return rng.choice([f"₩{rng.randint(1, 999)},{rng.randint(0, 9)}00", f"{rng.randint(1, 99)},{rng.randint(0, 9)}00원",
                       f"${rng.randint(1, 999)}.{rng.randint(0, 99):02d}", f"{rng.randint(1, 9)},{digits(3)},000원",
                       f"{rng.randint(1, 50)}만 원", f"KRW 1,{digits(3)},{digits(3)}"])  # fmt: skip


def tracking() -> str:
    return rng.choice([f"{digits(4)}-{digits(4)}-{digits(4)}", f"1Z{digits(3)}AA1{digits(10)}",
                       f"{rng.randint(5, 6)}{digits(11)}", f"KR{digits(9)}KR"])  # fmt: skip


def product() -> str:
    return rng.choice([f"SKU-{digits(5)}-BLK", f"AB-{digits(4)}-{digits(3)}", f"model A{digits(4)}",
                       f"{digits(3)}-{digits(2)}-{digits(5)}", f"P{digits(10)}"])  # fmt: skip


def version() -> str:
    return rng.choice([f"v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}",
                       f"{rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 999)}",
                       f"{rng.randint(1, 9)}.{rng.randint(0, 20)}"])  # fmt: skip


def quantity() -> str:
    return rng.choice([f"{rng.randint(1, 20)}개", f"{rng.randint(2, 12)} boxes", f"{rng.randint(1, 5)}kg",
                       f"{rng.randint(100, 999)}ml", f"{rng.randint(1, 99)}%"])  # fmt: skip


SLOTS: dict[str, tuple[Callable[[], str], str | None]] = {
    "EMAIL": (email, "EMAIL"), "MOBILE": (mobile, "PHONE"), "LAND": (landline, "PHONE"),
    "BIZ": (business, "PHONE"), "INTL": (intl, "PHONE"), "USPHONE": (us_phone, "PHONE"),
    "UKPHONE": (uk_phone, "PHONE"), "CARD": (card, "CARD"), "RRN": (rrn, "RRN"),
    "RRN_NEW": (rrn_new, "RRN"), "RRN_MASKED": (rrn_masked, "RRN"), "IBAN": (iban, "ACCOUNT"),
    "IP4": (ipv4, "IP"), "IP6": (ipv6, "IP"), "ADDR": (address_ko, "ADDRESS"), "ADDR_EN": (address_en, "ADDRESS"),
    "BAD_CARD": (bad_card, None), "BAD_RRN": (bad_rrn, None), "ORDER": (order_no, None),
    "DATE": (date_str, None), "TIME": (time_str, None), "PRICE": (price, None), "TRACK": (tracking, None),
    "PRODUCT": (product, None), "VERSION": (version, None), "QTY": (quantity, None),
}  # fmt: skip
for _bank, _ in ACCOUNT_FORMATS:
    SLOTS[f"ACC_{_bank}"] = ((lambda b=_bank: account_number(b)), "ACCOUNT")
SLOTS["ACC"] = ((lambda: account_number(rng.choice(ACCOUNT_FORMATS)[0])), "ACCOUNT")

_SLOT_RE = re.compile(r"\{([A-Z_0-9가-힣]+)\}")


def fill(template: str) -> tuple[str, list[dict]]:
    """Fill the slots of ``template``; returns the text and the spans of the PII slots."""
    out, spans, pos = [], [], 0
    length = 0
    for m in _SLOT_RE.finditer(template):
        literal = template[pos : m.start()]
        out.append(literal)
        length += len(literal)
        make, kind = SLOTS[m.group(1)]
        value = make()
        if kind:
            spans.append({"type": kind, "start": length, "end": length + len(value)})
        out.append(value)
        length += len(value)
        pos = m.end()
    out.append(template[pos:])
    return "".join(out), spans


# --- the sentences -----------------------------------------------------------------------------

KO_PII = """\
제 번호는 {MOBILE}이에요. 배송 전에 연락 부탁드립니다.
연락처 {MOBILE} 로 문자 주세요
휴대폰 바뀌었어요 {MOBILE} 으로 변경해 주세요
남편 번호 {MOBILE}, 제 번호 {MOBILE} 둘 다 적어둘게요
사무실 전화는 {LAND} 입니다. 평일 9시~6시에 받아요.
가게 번호가 {LAND}인데 왜 등록이 안 되죠?
대표번호 {BIZ}로 몇 번을 걸어도 연결이 안 돼요
해외에 있어서 {INTL} 로 연락 주시면 됩니다
메일 주소는 {EMAIL} 입니다
영수증은 {EMAIL}로 보내주세요!
아이디가 {EMAIL}인데 비밀번호를 잊어버렸어요
이메일 {EMAIL} / 전화 {MOBILE} 로 회신 부탁해요
카드번호 {CARD} 결제가 두 번 됐어요
{CARD} 이 카드로 결제했는데 취소해 주세요
등록된 카드 {CARD}를 삭제하고 싶어요
법인카드 {CARD} 로 세금계산서 발행 가능할까요?
주민등록번호 {RRN} 입력했는데 본인인증이 실패해요
본인확인용 주민번호: {RRN}
아이 주민번호는 {RRN_NEW} 예요 (작년에 태어났어요)
주민등록번호 {RRN_NEW}로 가입하려는데 오류가 납니다
주민번호 앞자리만 드리면 {RRN_MASKED} 입니다
{RRN} 이걸로 조회 좀 해주세요
환불은 국민은행 {ACC_국민} 으로 부탁드려요
신한 {ACC_신한} 예금주 김민지로 입금해 주세요
우리은행 계좌 {ACC_우리} 로 환불 받을 수 있나요?
하나은행 {ACC_하나}에 아직 입금이 안 됐어요
농협 {ACC_농협} 으로 보내주세요
기업은행 계좌번호는 {ACC_기업} 입니다
카카오뱅크 {ACC_카카오뱅크} 로 송금했어요
토스뱅크 {ACC_토스뱅크} 계좌로 환불 요청합니다
새마을금고 {ACC_새마을금고}로 이체 부탁드립니다
우체국 {ACC_우체국} 예금주 박서연
계좌번호 {ACC} 로 환불해주세요
환불 계좌: {ACC}
해외 계좌 IBAN {IBAN} 로 송금 가능한가요?
접속 IP가 {IP4} 로 나오는데 차단된 건가요?
관리자 페이지에 {IP4} 에서 로그인 기록이 있어요
공유기 주소 {IP4}로 접속하면 설정 화면이 떠요
IPv6 주소 {IP6} 에서 접속이 안 됩니다
배송지는 {ADDR} 입니다
주소 변경해 주세요: {ADDR}
{ADDR}로 보내주세요. 경비실에 맡겨 주셔도 돼요.
회사 주소 {ADDR} 로 세금계산서 보내주세요
반품 회수는 {ADDR}에서 해 주세요
주문번호 {ORDER} 건, 연락처 {MOBILE} 로 주세요
{DATE} 주문했고 카드 {CARD}로 결제했어요
{PRICE} 결제했는데 {CARD} 카드 명세서에 두 번 찍혔어요
{DATE} {TIME}에 {IP4}에서 로그인 알림이 왔어요
운송장 {TRACK} 이고 받는 분 번호는 {MOBILE} 이에요
{QTY} 주문했어요. 주소는 {ADDR}, 연락처 {LAND}
제 메일 {EMAIL}로 견적서 부탁드려요. 수량은 {QTY}입니다.
문의: {EMAIL}, {BIZ}
연락처는 {MOBILE}입니다.감사합니다
번호{MOBILE}로 연락주세요
아빠 폰 {MOBILE} 이고 엄마 폰은 {MOBILE}
잘못 입력했어요 {MOBILE} 아니고 {MOBILE} 이에요
{LAND} 로 전화 주시면 제가 받을게요
결제 카드 {CARD}, 유효기간은 잘 기억이 안 나요
{EMAIL} 계정 탈퇴 요청합니다
외국인등록번호 {RRN_NEW} 로는 가입이 안 되나요?
"""

EN_PII = """\
My number is {MOBILE}, please text before delivery.
You can reach me at {USPHONE} after 6pm.
Call me on {UKPHONE} if the courier can't find the door.
I'm abroad right now, my phone is {INTL}
Office line: {LAND}
Please call our support line {BIZ} for the warranty.
My email is {EMAIL}
Send the invoice to {EMAIL} please.
I can't log in with {EMAIL}, can you reset it?
Reply to {EMAIL} or call {USPHONE}.
My card {CARD} was charged twice.
Please remove the card ending in ... actually the full number is {CARD}
I paid with {CARD} on {DATE} and got no receipt.
Refund the order to card {CARD} instead of points.
My resident registration number is {RRN}
The verification failed for RRN {RRN}
My baby's resident registration number is {RRN_NEW}
Please refund to my account {ACC} at Shinhan.
Bank account: {ACC}
Wire it to IBAN {IBAN}
My IBAN is {IBAN}, the bank is in Germany.
I'm logging in from {IP4} and it says blocked.
Our server IP is {IP4}, please whitelist it.
The admin login came from {IP6}
Please ship to {ADDR_EN}.
My address is {ADDR_EN}
Change my delivery address to {ADDR_EN} please
Deliver to {ADDR} (I'm in Korea)
Order {ORDER}: please call {USPHONE} before delivery.
I ordered {QTY} on {DATE}, my phone is {MOBILE}
Tracking {TRACK} shows delivered but I'm at {ADDR_EN} and nothing arrived.
For the refund use {ACC} (KB Kookmin bank) thanks
Hi, it's me again, {EMAIL}, still waiting.
The charge of {PRICE} on {CARD} is wrong.
Email me at {EMAIL} or ring {UKPHONE}
Contact: {INTL}
Contact: {MOBILE} / {EMAIL}
"""

KO_NEG = """\
주문번호 {ORDER} 배송 언제 와요?
{ORDER} 주문 취소해 주세요
{DATE}에 주문했는데 아직 안 왔어요
{DATE} {TIME}에 결제했어요
{TIME}까지 주문하면 오늘 출발하나요?
{PRICE} 결제했는데 쿠폰이 적용이 안 됐어요
배송비 {PRICE} 맞나요?
{QTY} 주문하면 할인되나요?
운송장 번호 {TRACK} 조회가 안 돼요
송장번호 {TRACK} 인데 택배사가 어디예요?
상품코드 {PRODUCT} 재입고 언제 돼요?
모델번호 {PRODUCT} 호환되나요?
앱 버전 {VERSION} 에서 로그인이 안 돼요
버전 {VERSION} 업데이트 후에 결제창이 안 떠요
카드번호를 {BAD_CARD} 로 넣었는데 틀렸대요
{BAD_CARD} 이 번호가 맞나요? 오류가 나요
이 번호 {BAD_RRN} 로 조회하면 안 나와요
강남구 매장 몇 시까지 해요?
서울 강남구에 매장이 몇 곳 있나요?
강남구 테헤란로점 주차 되나요?
역삼동 2개 매장 중 어디가 더 커요?
2호선 강남역 5번 출구에서 얼마나 걸려요?
환불은 {DATE}까지 된다고 들었어요
계좌로 {PRICE} 입금했는데 확인 부탁드려요
입금 금액 {PRICE} 맞죠?
{DATE} 입금 확인 부탁드립니다
무통장 입금 기한이 {DATE} {TIME}까지인가요?
고객센터 운영시간이 {TIME}부터인가요?
쿠폰번호 {ORDER} 등록이 안 돼요
사업자등록번호 {PRODUCT} 로 세금계산서 되나요?
바코드 880{RRN_BAR}인데 정품 맞나요?
내선 {EXT}번으로 연결해 주세요
사이즈 {SIZE} 재고 있나요?
{DATE}부터 {DATE}까지 휴무인가요?
적립금 {PRICE} 언제 들어와요?
1+1 행사 상품 {QTY} 샀어요
예약번호 {ORDER} 변경하고 싶어요
교환 접수번호 {ORDER} 진행상황 알려주세요
택배 {TRACK} 배송 조회 해주세요
할부 {MONTHS}개월로 바꿀 수 있나요?
비밀번호 {PIN}자리 설정이 안 돼요
1800-1900년대 빈티지 제품도 취급하나요?
우편번호 {ZIP} 도서산간 배송비 있나요?
포인트 {POINTS}점 사용 가능한가요?
{ORDER}번 주문 {QTY} 중 하나가 파손됐어요
"""

EN_NEG = """\
Where is order {ORDER}?
I ordered on {DATE} at {TIME} and nothing yet.
Is {PRICE} the final price including tax?
Can I get {QTY} for the bulk discount?
Tracking number {TRACK} isn't updating.
Is product {PRODUCT} back in stock?
The app version {VERSION} crashes on login.
After updating to {VERSION} checkout is broken.
I typed {BAD_CARD} and it said invalid card.
Order {ORDER} arrived damaged, {QTY} broken.
The store on Teheran-ro opens at {TIME}?
Your office hours are {TIME} to {TIME}, right?
I paid {PRICE} by bank transfer on {DATE}.
Refund of {PRICE} to my account, when?
My account was charged {PRICE} twice.
Ticket {ORDER} still unresolved after {QTY}.
Is model {PRODUCT} compatible with {VERSION}?
Sale ends {DATE}?
Coupon {ORDER} doesn't apply.
I need {QTY} by {DATE}.
Zip code {ZIP}, is shipping free?
Can I pay in {MONTHS} installments?
Please hold my order until {DATE} {TIME}.
The total was {PRICE} for {QTY}.
Item {PRODUCT} size {SIZE} please.
"""

EXTRA = {
    "RRN_BAR": (lambda: digits(10), None),
    "EXT": (lambda: digits(4), None),
    "SIZE": (lambda: rng.choice(["230", "M", "XL", "270mm", "32"]), None),
    "MONTHS": (lambda: str(rng.choice([2, 3, 6, 12])), None),
    "PIN": (lambda: str(rng.choice([4, 6])), None),
    "ZIP": (lambda: rng.choice([digits(5), f"0{digits(4)}"]), None),
    "POINTS": (lambda: f"{rng.randint(1, 99)},{digits(3)}", None),
}
SLOTS.update(EXTRA)


# Hand-written sentences with inline annotations: [[TYPE|value]] marks personal data.
FIXED = """\
ko|pii|[[PHONE|010-2345-6789]]로 전화 주세요. 안 받으면 [[EMAIL|sora.han@example.co.kr]]로 메일 주세요
ko|pii|연락처:[[PHONE|010-9876-5432]] / 이메일:[[EMAIL|yj_oh@example.com]]
ko|pii|번호 바꿨어요!! 예전 번호 [[PHONE|011-234-5678]] 말고 [[PHONE|010-3456-7890]]
ko|pii|[[PHONE|02-3456-7890]](대표) 또는 [[PHONE|1644-0000]] 로 문의하세요
ko|pii|가게 주소 [[ADDRESS|서울 마포구 월드컵북로 396]] 이고 전화 [[PHONE|02-336-1234]] 입니다
ko|pii|도로명 주소 [[ADDRESS|경기도 수원시 영통구 광교중앙로 145, 12층]] 으로 부탁드려요
ko|pii|[[ADDRESS|부산광역시 해운대구 센텀중앙로 79]] 센텀사이언스파크 택배 보관함에 넣어주세요
ko|pii|아파트 [[ADDRESS|서울시 송파구 올림픽로35길 104 12동 1203호]] 이에요
ko|pii|[[ADDRESS|제주시 첨단로 242]]로 보내주세요
ko|pii|카드번호 [[CARD|4217-8311-2233-4450]] 결제 취소 부탁드립니다
ko|pii|AMEX [[CARD|3782 822463 10005]] 로 결제했어요
ko|pii|주민번호 [[RRN|8501011234560]] 이고 이름은 홍길동입니다
ko|pii|신한은행 [[ACCOUNT|110-432-987654]] (예금주 이도윤) 로 환불해 주세요
ko|pii|[[ACCOUNT|3333-05-1234567]] 카카오뱅크 로 부탁해요
ko|pii|접속 로그에 [[IP|203.0.113.45]] 랑 [[IP|2001:db8:85a3::8a2e:370:7334]] 가 찍혀 있어요
ko|pii|IP [[IP|198.51.100.7]]:8080 으로 웹훅 보내주세요
ko|pii|국제전화 [[PHONE|+82 2 2345 6789]] 로 걸어주세요
ko|pii|[[PHONE|0505-123-4567]] 안심번호로 연락 주세요
ko|pii|인터넷전화 [[PHONE|070-8765-4321]] 입니다
ko|pii|명함에 Tel.[[PHONE|02-555-0123]] / M.[[PHONE|010-4455-6677]] 라고 적혀 있어요
ko|pii|연락처([[PHONE|010-2020-3030]]) 남겨요
ko|near-miss|상품코드 SKU-01012345678 재고 있나요?
en|pii|Ping me: [[EMAIL|dev.ops+alerts@example.io]] or [[PHONE|+1 415-555-0132]]
en|pii|Card [[CARD|5500 0000 0000 0004]] declined at checkout.
en|pii|Server [[IP|203.0.113.9]] is sending spam to our bot.
en|pii|Ship to [[ADDRESS|742 Evergreen Terrace]], thanks.
en|pii|IBAN: [[ACCOUNT|GB82 WEST 1234 5698 7654 32]]
en|pii|My acct no. is [[ACCOUNT|1002-345-678901]] at Woori.
ko|near-miss|2024-11-26T14:30:00+09:00 기준으로 처리됐어요
ko|near-miss|총 1,234,567,890원 결제 내역이 맞나요?
ko|near-miss|전화번호 끝자리 5678 인데 조회 되나요?
ko|near-miss|10:30-11:30 사이에 배송 가능할까요?
ko|near-miss|주문번호 20241126-000123 입니다
ko|near-miss|ORD-2024-1182 언제 도착해요?
ko|near-miss|2024.11.26 오후 3시에 주문했어요
ko|near-miss|₩39,000짜리 상품 두 개 샀어요
ko|near-miss|12,500원 환불 받았어요
ko|near-miss|4111 1111 1111 1112 카드가 안 돼요
ko|near-miss|강남구 테헤란로점 3층 매장 운영시간 알려주세요
ko|near-miss|서울 강남구 매장 2곳 중에 어디가 가까워요?
ko|near-miss|v1.2.3.4 업데이트 후 앱이 꺼져요
ko|near-miss|사업자등록번호 123-45-67890 확인 부탁드려요
ko|near-miss|1588번 버스 타고 가면 되나요?
ko|near-miss|우리 아이가 12개월인데 이 제품 써도 되나요?
ko|near-miss|하나 더 주문하고 싶어요 3개 주세요
ko|near-miss|계좌이체로 150,000원 보냈어요
ko|near-miss|입금자명 김철수, 입금액 45,000원 입니다
en|near-miss|Order #10482211 was placed at 09:41:07 UTC.
en|near-miss|My account balance shows 1,250.00 USD.
en|near-miss|Invoice INV-2024-000981 total 3,400,000 KRW.
en|near-miss|Firmware 10.2.0.15 broke the printer.
en|near-miss|Version 4.17.21 of the SDK is fine.
en|near-miss|The ratio is 16:9 and resolution 1920x1080.
en|near-miss|Call back between 2:30 and 4:45 please.
en|near-miss|Package weighs 2.5kg, 30x20x15 cm.
en|near-miss|ISBN 978-89-12345-67-8 is the Korean edition.
"""
# Written after the rules were frozen and scored once as-is (see docs/privacy.md): a small
# check on sentences the rules were not tuned on. Rows carry "split": "holdout".
HOLDOUT = """\
ko|pii|안녕하세요 [[PHONE|010 4821 9930]] 번호로 주문한 사람인데요
ko|pii|제 메일이 [[EMAIL|parkhy0712@example.kr]] 인데 인증메일이 안 와요ㅠㅠ
ko|pii|혹시 [[PHONE|031)987-6543]] 여기로 전화 주실 수 있나요
ko|pii|결제카드 [[CARD|9410-6123-4567-8905]] 부분취소 가능한가요
ko|pii|주민 [[RRN|920315-2123454]] 이건데 왜 안 되죠
ko|pii|환불계좌 국민 [[ACCOUNT|942102-00-123456]] 입니다
ko|pii|배송지 [[ADDRESS|인천광역시 연수구 컨벤시아대로 165]] 포스코타워 1층 안내데스크
ko|pii|[[ADDRESS|대전 유성구 대학로 99]] 로 보내 주세요~
ko|pii|서버가 [[IP|10.0.12.7]] 에서 응답이 없어요
ko|pii|택배기사님 번호 [[PHONE|010-5511-2290]] 로 연락했는데 안 받으세요
ko|pii|[[EMAIL|cs_team@shop-example.co.kr]] 로 보냈는데 답장이 없네요
ko|pii|+82 로 시작하는 [[PHONE|+82 10 7777 1234]] 이 번호로 주세요
ko|pii|토스 [[ACCOUNT|1000-2345-6789]] 로 환불 가능?
ko|pii|법인 계좌는 기업 [[ACCOUNT|032-112233-01-011]] 이에요
ko|pii|제 번호 [[PHONE|010-1111-2222]] 와 집 [[PHONE|02-555-6666]]
en|pii|hey it's [[EMAIL|kim.j@example.com]], my parcel never came
en|pii|phone: [[PHONE|(212) 555-0199]] ext 12
en|pii|my visa is [[CARD|4012888888881881]] can u check the charge
en|pii|The request came from [[IP|2001:db8:1::ab9:c0a8:102]] at noon.
en|pii|Send it to [[ADDRESS|55 Harbor View Road]] instead.
en|pii|Text me on [[PHONE|+44 7911 123456]] when it ships.
en|pii|RRN [[RRN|030512-4234563]] for my daughter's account.
ko|near-miss|주문하신 상품 3개 중 2개가 11/26에 출고됩니다
ko|near-miss|배송 예정일 2024.12.03 (화) 입니다
ko|near-miss|정가 59,900원에서 20% 할인된 47,920원이에요
ko|near-miss|CJ대한통운 운송장 6012-3456-7890 조회해 주세요
ko|near-miss|쿠폰 코드 WELCOME2024 적용이 안 돼요
ko|near-miss|앱 버전 3.12.0 에서만 그래요
ko|near-miss|회원번호 100234 로 적립 부탁드려요
ko|near-miss|오전 10시 30분부터 오후 6시까지 상담 가능하신가요
ko|near-miss|5번 출구 앞 2층 매장에 있어요
ko|near-miss|주문번호 2024112612345678 결제 오류요
en|near-miss|Order 2024-11-26-0042 shows 3 items but I got 2.
en|near-miss|It cost $1,299.99 and arrived on 11/26/2024.
en|near-miss|Reference number 7730-2291-0045 please.
en|near-miss|Room 1203, floor 12, building B — no street given.
en|near-miss|Between 9:00 and 17:30 KST works for me.
en|near-miss|SKU 88-2231-77 size 270 is out of stock.
"""
_MARK = re.compile(r"\[\[([A-Z]+)\|(.+?)\]\]")


def parse_fixed(line: str) -> tuple[str, list[dict]]:
    """``"text [[TYPE|value]] more"`` -> the plain text and the annotated spans."""
    out, spans, pos, length = [], [], 0, 0
    for m in _MARK.finditer(line):
        out.append(line[pos : m.start()])
        length += m.start() - pos
        spans.append({"type": m.group(1), "start": length, "end": length + len(m.group(2))})
        out.append(m.group(2))
        length += len(m.group(2))
        pos = m.end()
    out.append(line[pos:])
    return "".join(out), spans


def build() -> list[dict]:
    rows: list[dict] = []
    for line in FIXED.strip().splitlines():
        lang, kind, body = line.split("|", 2)
        text, spans = parse_fixed(body)
        rows.append({"id": len(rows) + 1, "lang": lang, "kind": kind, "text": text, "spans": spans})
    for line in HOLDOUT.strip().splitlines():
        lang, kind, body = line.split("|", 2)
        text, spans = parse_fixed(body)
        rows.append({"id": len(rows) + 1, "lang": lang, "kind": kind, "text": text, "spans": spans,
                     "split": "holdout"})  # fmt: skip
    groups = [("ko", "pii", KO_PII, 3), ("en", "pii", EN_PII, 3), ("ko", "near-miss", KO_NEG, 2),
              ("en", "near-miss", EN_NEG, 2)]  # fmt: skip
    for lang, kind, block, times in groups:
        for template in block.strip().splitlines():
            seen: set[str] = set()
            for _ in range(times):
                text, spans = fill(template)
                if text in seen:
                    continue
                seen.add(text)
                rows.append(
                    {"id": len(rows) + 1, "lang": lang, "kind": kind, "text": text, "spans": spans}
                )
    return rows


def main() -> None:
    rows = build()
    with OUT.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} sentences to {OUT}")


if __name__ == "__main__":
    main()
