"""Normalisation, language detection and the hand-off rules."""

import pytest

from annae.nlu.policy import (
    Candidate,
    PolicyConfig,
    decide,
    is_frustrated,
    pre_check,
    wants_human,
)
from annae.nlu.text import detect_language, normalize


def test_normalize_nfkc_case_spacing_and_repeats():
    assert normalize("  Ｈｅｌｌｏ\u3000WORLD \n\t!!!!!! ") == "hello world !!!"
    assert normalize("배송\u00a0\u00a0언제   와요??") == "배송 언제 와요??"
    # emoticon runs are stripped for matching; text that is nothing else keeps them (squeezed)
    assert normalize("ㅠㅠㅠㅠㅠㅠ soooooo slow") == "sooo slow"
    assert normalize("ㅠㅠㅠㅠㅠㅠ") == normalize("ㅠㅠㅠ") != ""
    assert normalize("") == ""


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("배송은 얼마나 걸려요?", "ko"),
        ("How long is shipping?", "en"),
        ("iPhone 케이스 환불", "ko"),
        ("refund for my order 주문", "en"),
        ("12345", "en"),
        ("🎁🎁", "en"),
    ],
)
def test_detect_language(text, lang):
    assert detect_language(text) == lang


@pytest.mark.parametrize(
    "text",
    [
        "상담원 연결해 주세요",
        "상담사랑 얘기하고 싶어요",
        "사람이랑 통화하고 싶어요",
        "직원 바꿔주세요",
        "I want to talk to a human",
        "can I speak with a real person?",
        "get me an agent",
        "representative please",
        "live agent",
    ],
)
def test_explicit_requests_for_a_person(text):
    assert wants_human(text)
    assert pre_check(text) == "human_requested"


@pytest.mark.parametrize(
    "text",
    [
        "How long does delivery take?",
        "배송비는 얼마예요?",
        "Can I change my address?",
        "talk about gift wrapping",
        "상품 연결 부품이 있나요?",
    ],
)
def test_ordinary_questions_are_not_hand_offs(text):
    assert not wants_human(text)
    assert not is_frustrated(text)
    assert pre_check(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "this is ridiculous, third time I ask",
        "WHERE IS MY ORDER I PAID TWO WEEKS AGO",
        "아 진짜 짜증나네요",
        "몇 번을 말해야 돼요",
        "useless bot",
        "what???!!!!",
        "최악이에요 환불해줘요",
    ],
)
def test_frustration(text):
    assert is_frustrated(text)


def test_empty_and_oversized_questions():
    assert pre_check("") == "empty"
    assert pre_check("   \n ") == "empty"
    assert pre_check("a" * 100_000) == "too_long"


def _cands(*confs):
    return [
        Candidate(key=f"e{i}", entry_id=i, question=f"q{i}", answer=f"a{i}", confidence=c)
        for i, c in enumerate(confs)
    ]


def test_decide_answer_clarify_handoff():
    cfg = PolicyConfig(threshold=0.8, clarify_threshold=0.9)
    d = decide(_cands(0.85, 0.1, 0.05), cfg, language="en", model_version="v1")
    assert (d.type, d.entry_key, d.answer, d.reason) == ("answer", "e0", "a0", None)
    d = decide(_cands(0.5, 0.45, 0.01), cfg, language="en")
    assert d.type == "clarify" and [c.key for c in d.candidates] == ["e0", "e1"]
    d = decide(_cands(0.4, 0.3, 0.25), cfg, language="en")
    assert d.type == "clarify" and len(d.candidates) == 3
    d = decide(_cands(0.3, 0.2, 0.1), cfg, language="en")
    assert (d.type, d.reason) == ("handoff", "low_confidence")
    # a request for a person wins over a confident answer, and keeps the guesses for the agent
    d = decide(_cands(0.99, 0.01), cfg, language="ko", reason="human_requested")
    assert (d.type, d.reason, d.candidates[0].key) == ("handoff", "human_requested", "e0")
    assert d.to_dict()["candidates"][0]["confidence"] == 0.99


def test_confidently_out_of_scope_gets_its_own_decision_not_a_hand_off():
    from annae.nlu.policy import Candidate, PolicyConfig, decide

    cands = [Candidate("a", 1, "A?", "a", 0.30), Candidate("b", 2, "B?", "b", 0.25)]
    config = PolicyConfig(threshold=0.8, clarify_threshold=0.9, oos_threshold=0.6)
    d = decide(cands, config, language="en", oos_score=0.7)
    assert d.type == "out_of_scope" and d.reason == "out_of_scope" and d.oos_score == 0.7
    # unsure but not confidently out of scope: a hand-off as before
    assert decide(cands, config, language="en", oos_score=0.5).type == "handoff"
    # no threshold configured, or no score: never out of scope
    off = PolicyConfig(threshold=0.8, clarify_threshold=0.9)
    assert decide(cands, off, language="en", oos_score=0.99).type == "handoff"
    assert decide(cands, config, language="en").type == "handoff"
    # a confident answer wins; a request for a person always hands off
    sure = [Candidate("a", 1, "A?", "a", 0.95)]
    assert decide(sure, config, language="en", oos_score=0.9).type == "answer"
    d = decide(cands, config, language="en", oos_score=0.9, reason="human_requested")
    assert d.type == "handoff"
