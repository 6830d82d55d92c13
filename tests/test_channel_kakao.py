"""The KakaoTalk skill: authentication, bad payloads, the skill response format 2.0, and a whole
day (question → answer → hand-off → agent reply on the callback → resolve → rating) through the
same conversation code as the web chat."""

from __future__ import annotations

import pytest
from channel_support import Receiver
from sqlalchemy import select

from annae.channels import registry
from annae.channels.kakao import example_request as payload
from annae.channels.outbox import Deliverer
from annae.kb.entries import get_entry_by_key
from annae.settings import get_settings
from annae.store.db import get_engine, session_scope
from annae.store.tables.channels import ChannelContact, OutboxItem
from annae.store.tables.learning import AnswerRating
from annae.store.tables.service import Conversation, Message

SKILL = "/channels/kakao/skill"


@pytest.fixture
def kakao(api, monkeypatch):
    monkeypatch.setenv("ANNAE_OUTBOX_WORKER", "false")  # the tests deliver by hand
    get_settings.cache_clear()
    with session_scope(get_engine(api.db_url)) as session:
        _, secret = registry.create(session, "kakao", "shop")
    yield api, {"X-Annae-Secret": secret}
    get_settings.cache_clear()


def test_secret_is_required_and_checked(kakao):
    api, headers = kakao
    r = api.client.post(SKILL, json=payload("배송은 얼마나 걸리나요?"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = api.client.post(SKILL, json=payload("hi"), headers={"X-Annae-Secret": "wrong"})
    assert r.status_code == 401
    r = api.client.post(SKILL, json={"nothing": 1}, headers={"X-Annae-Secret": "wrong"})
    assert r.status_code == 401  # no secret, no hint about the payload


def test_bad_payloads_get_clear_4xx_and_store_nothing(kakao):
    api, headers = kakao
    r = api.client.post(SKILL, json={"userRequest": {"utterance": "hi"}}, headers=headers)
    assert r.status_code == 400 and "userRequest.user" in r.json()["error"]["message"]
    r = api.client.post(SKILL, content=b"{not json", headers=headers)
    assert r.status_code == 400 and "JSON" in r.json()["error"]["message"]
    r = api.client.post(SKILL, json=payload("x" * 5000), headers=headers)
    assert r.status_code == 400 and "utterance" in r.json()["error"]["message"]
    r = api.client.post(SKILL, json=payload("x" * 1_000_000), headers=headers)
    assert r.status_code == 413
    r = api.client.post(SKILL, json=payload("   "), headers=headers)
    assert r.status_code == 400
    with session_scope(get_engine(api.db_url)) as session:
        assert session.scalar(select(Message.id).limit(1)) is None


def test_whole_day_through_kakao(kakao):
    api, headers = kakao
    callback = Receiver().start()
    try:
        # 1. a question the bot answers: simpleText + rating and hand-off quick replies
        r = api.client.post(SKILL, json=payload("배송은 얼마나 걸리나요?"), headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["version"] == "2.0"
        answer = body["template"]["outputs"][0]["simpleText"]["text"]
        with session_scope(get_engine(api.db_url)) as session:
            assert answer == get_entry_by_key(session, "shipping_time_ko").answer
        labels = [q["label"] for q in body["template"]["quickReplies"]]
        assert labels == ["👍 도움이 됐어요", "👎 도움이 안 됐어요", "상담원 연결"]
        assert all(q["action"] == "message" for q in body["template"]["quickReplies"])

        # 2. the user asks for a person; Kakao offers a callback: useCallback
        r = api.client.post(
            SKILL, json=payload("상담원 연결", callback=callback.url + "/cb/1"), headers=headers
        )
        assert r.json()["useCallback"] is True and "상담원" in r.json()["data"]["text"]
        agent = api.login("alice")
        queue = api.client.get("/api/v1/queue", headers=agent).json()["queue"]
        assert len(queue) == 1 and queue[0]["reason"] == "customer_request"
        assert queue[0]["channel"] == "kakao:shop"
        conv_id = queue[0]["id"]

        # 3. the agent replies in the console: it goes out on the callback
        r = api.client.post(
            f"/api/v1/conversations/{conv_id}/replies",
            json={"text": "내일 도착 예정입니다."},
            headers=agent,
        )
        assert r.status_code == 201
        Deliverer(get_engine(api.db_url)).drain()
        posts = [p for p in callback.accepted() if p["path"] == "/cb/1"]
        assert len(posts) == 1
        assert posts[0]["json"]["template"]["outputs"][0]["simpleText"]["text"] == (
            "내일 도착 예정입니다."
        )
        # a second reply finds the callback used: it waits for the user's next message
        api.client.post(
            f"/api/v1/conversations/{conv_id}/replies", json={"text": "감사합니다!"}, headers=agent
        )
        Deliverer(get_engine(api.db_url)).drain()
        assert len([p for p in callback.accepted() if p["path"] == "/cb/1"]) == 1

        # 4. resolve; the user's rating brings the waiting reply and the close notice
        assert (
            api.client.post(f"/api/v1/conversations/{conv_id}/resolve", headers=agent).status_code
            == 200
        )
        r = api.client.post(SKILL, json=payload("👍 도움이 됐어요"), headers=headers)
        outputs = r.json()["template"]["outputs"]
        assert "감사합니다!" in outputs[0]["simpleText"]["text"]
        assert "상담이 종료되었어요" in outputs[0]["simpleText"]["text"]
        assert outputs[-1]["simpleText"]["text"] == "평가해 주셔서 감사합니다."
        with session_scope(get_engine(api.db_url)) as session:
            rating = session.scalar(select(AnswerRating))
            assert rating.conversation_id == conv_id and rating.helpful is True
            conv = session.get(Conversation, conv_id)
            assert conv.state == "resolved"  # a rating does not reopen
            assert conv.customer_id == "kakao:kakao-user-1"
            texts = [
                m.text
                for m in session.scalars(
                    select(Message).where(Message.conversation_id == conv_id).order_by(Message.id)
                )
            ]
            assert texts[0] == "배송은 얼마나 걸리나요?" and "[asked for a person]" in texts
    finally:
        callback.stop()


def test_callback_expiry_tells_the_user_and_new_conversation_after_idle(kakao, monkeypatch):
    api, headers = kakao
    monkeypatch.setenv("ANNAE_KAKAO_CALLBACK_SECONDS", "0.01")
    monkeypatch.setenv("ANNAE_KAKAO_IDLE_MINUTES", "0")
    get_settings.cache_clear()
    callback = Receiver().start()
    try:
        r = api.client.post(
            SKILL, json=payload("상담원 연결", "u2", callback.url + "/cb/2"), headers=headers
        )
        assert r.json()["useCallback"] is True
        import time

        time.sleep(0.05)
        Deliverer(get_engine(api.db_url)).drain()
        (post,) = callback.accepted()
        assert "다음 메시지" in post["json"]["template"]["outputs"][0]["simpleText"]["text"]
        agent = api.login("bob")
        conv_id = api.client.get("/api/v1/queue", headers=agent).json()["queue"][0]["id"]
        api.client.post(
            f"/api/v1/conversations/{conv_id}/replies", json={"text": "확인했어요"}, headers=agent
        )
        api.client.post(f"/api/v1/conversations/{conv_id}/resolve", headers=agent)
        Deliverer(get_engine(api.db_url)).drain()
        assert len(callback.accepted()) == 1  # the expired callback is not used again
        # idle 0 minutes: the next message starts a new conversation, after the missed reply
        r = api.client.post(SKILL, json=payload("배송은 얼마나 걸리나요?", "u2"), headers=headers)
        outputs = r.json()["template"]["outputs"]
        assert "확인했어요" in outputs[0]["simpleText"]["text"]
        with session_scope(get_engine(api.db_url)) as session:
            contact = session.scalar(
                select(ChannelContact).where(ChannelContact.external_id == "u2")
            )
            assert contact.conversation_id != conv_id
            kinds = [i.event for i in session.scalars(select(OutboxItem))]
            assert kinds.count("callback.expiry") == 1
    finally:
        callback.stop()


def test_product_cards_only_with_consent(kakao):
    from annae.recommend.store import link_entry, set_marketing_consent, upsert_product

    api, headers = kakao
    with session_scope(get_engine(api.db_url)) as session:
        entry = get_entry_by_key(session, "shipping_time_ko")
        upsert_product(session, "p1", name="빠른 배송 상자", price=12000)
        link_entry(session, entry.id, ["p1"])
    r = api.client.post(SKILL, json=payload("배송은 얼마나 걸리나요?", "u3"), headers=headers)
    assert [list(o) for o in r.json()["template"]["outputs"]] == [["simpleText"]]
    with session_scope(get_engine(api.db_url)) as session:
        set_marketing_consent(session, "kakao:u3", True)
    r = api.client.post(SKILL, json=payload("배송은 얼마나 걸리나요?", "u3"), headers=headers)
    outputs = r.json()["template"]["outputs"]
    assert outputs[1]["carousel"]["type"] == "basicCard"
    card = outputs[1]["carousel"]["items"][0]
    assert card["title"] == "빠른 배송 상자" and card["description"].startswith("12,000원")


def test_contract_cli_prints_secret_last(annae_home):
    from typer.testing import CliRunner

    from annae.cli import app

    result = CliRunner().invoke(app, ["channel", "add", "kakao", "mall"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert len(secret) >= 40
    found = registry.authenticate(get_engine(), "kakao", secret)
    assert found is not None and found[1] == "mall"
    again = CliRunner().invoke(app, ["channel", "add", "kakao", "mall"])
    assert again.exit_code == 1 and "exists" in again.output


def test_first_messages_at_once_make_one_contact(kakao):
    """Two first messages of a new user in parallel: one contact, one conversation, no 500."""
    from concurrent.futures import ThreadPoolExecutor

    api, headers = kakao

    def send(text: str) -> int:
        return api.client.post(SKILL, json=payload(text, "twin"), headers=headers).status_code

    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(send, ["배송은 얼마나 걸리나요?"] * 4))
    assert codes == [200] * 4
    with session_scope(get_engine(api.db_url)) as session:
        contacts = session.scalars(
            select(ChannelContact).where(ChannelContact.external_id == "twin")
        ).all()
        assert len(contacts) == 1
        asked = session.scalars(select(Message).where(Message.sender == "customer")).all()
        assert {m.conversation_id for m in asked} == {contacts[0].conversation_id} and len(
            asked
        ) == 4


def test_clarify_options_are_quick_replies_and_a_choice_answers(kakao):
    api, headers = kakao
    question = "How long does delivery take or How can I track my order?"  # two entries close
    body = api.client.post(SKILL, json=payload(question, "u5"), headers=headers).json()
    quick = body["template"]["quickReplies"]
    assert body["template"]["outputs"][0]["simpleText"]["text"] == "Did you mean one of these?"
    assert len(quick) >= 3 and quick[-1]["messageText"] in ("상담원 연결", "Talk to a person")
    assert all(len(q["label"]) <= 14 for q in quick)
    picked = quick[1]["messageText"]  # the full question, although the label is cut
    answer = api.client.post(SKILL, json=payload(picked, "u5"), headers=headers).json()
    with session_scope(get_engine(api.db_url)) as session:
        choice = session.scalar(
            select(Message).where(Message.type == "choice").order_by(Message.id.desc())
        )
        assert choice is not None and choice.text == picked
        bot = session.scalar(
            select(Message).where(Message.sender == "bot").order_by(Message.id.desc())
        )
        assert bot.type == "answer" and bot.entry_id == choice.entry_id
    assert answer["template"]["outputs"][0]["simpleText"]["text"] == bot.text


def test_reply_not_ready_in_time_goes_to_the_callback(kakao, monkeypatch):
    """Past the reply budget the skill answers useCallback at once; the answer follows on the
    callback (through the outbox)."""
    import time

    api, headers = kakao
    monkeypatch.setenv("ANNAE_KAKAO_REPLY_BUDGET", "0.000001")
    get_settings.cache_clear()
    callback = Receiver().start()
    try:
        r = api.client.post(
            SKILL,
            json=payload("배송은 얼마나 걸리나요?", "u6", callback.url + "/cb/6"),
            headers=headers,
        )
        assert r.json() == {
            "version": "2.0",
            "useCallback": True,
            "data": {"text": "답변을 준비하고 있어요. 잠시만 기다려 주세요."},
        }
        end = time.monotonic() + 20
        while time.monotonic() < end and not callback.accepted():
            Deliverer(get_engine(api.db_url)).drain()
            time.sleep(0.05)
        (post,) = callback.accepted()
        body = post["json"]
        assert (
            body["version"] == "2.0"
            and "영업일" in body["template"]["outputs"][0]["simpleText"]["text"]
        )
    finally:
        callback.stop()
