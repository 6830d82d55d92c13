"""Agents' labels and customers' ratings become training data, through the real API."""

from __future__ import annotations

import pytest
from api_support import handed_off

from annae.kb import entries
from annae.learning import feedback
from annae.settings import Settings
from annae.store.db import get_engine, session_scope

OUT_OF_SCOPE = "Can you recommend a good dentist near Gangnam station for a root canal?"
DELIVERY = "How long does delivery take?"


def _entry(api, key: str):
    with session_scope(get_engine(api.db_url)) as s:
        entry = entries.get_entry_by_key(s, key)
        return entry.id, [(e.text, e.source) for e in entry.examples]


def _keys(api) -> list[str]:
    with session_scope(get_engine(api.db_url)) as s:
        return [e.key for e in entries.list_entries(s)]


def _handed_off(api, text=OUT_OF_SCOPE, **create) -> tuple[str, dict]:
    conv_id, headers = api.customer(**create)
    assert api.say(conv_id, headers, text)["type"] == "handoff"
    return conv_id, headers


def _label(api, conv_id, agent, **body):
    return api.client.post(f"/api/v1/conversations/{conv_id}/label", json=body, headers=agent)


def test_label_with_an_entry_adds_the_question_as_an_example(api):
    conv_id, _ = _handed_off(api)
    agent = api.login("alice")
    key = _keys(api)[0]
    entry_id, before = _entry(api, key)

    form = api.client.get(f"/api/v1/conversations/{conv_id}/label", headers=agent).json()
    assert form["label"] is None and form["question"]["text"] == OUT_OF_SCOPE
    assert form["guesses"], "the bot's best guesses pre-fill the form"

    r = _label(api, conv_id, agent, kind="entry", entry_id=entry_id)
    assert r.status_code == 201, r.text
    assert r.json()["example_added"] is True and r.json()["agent"] == "alice"
    _, after = _entry(api, key)
    assert (OUT_OF_SCOPE, f"conversation:{conv_id}/agent:alice") in after
    assert len(after) == len(before) + 1

    again = _label(api, conv_id, agent, kind="not_faq")
    assert again.status_code == 409 and "replace" in again.json()["error"]["message"]
    assert len(_entry(api, key)[1]) == len(before) + 1, "a refused label changes nothing"

    r = _label(api, conv_id, agent, kind="not_faq", replace=True)
    assert r.status_code == 201 and r.json()["kind"] == "not_faq"
    assert _entry(api, key)[1] == before, "replacing removes the example the old label added"


def test_label_errors(api):
    conv_id, _ = _handed_off(api)
    agent = api.login("alice")
    admin = api.login("root")
    keys = _keys(api)
    disabled_id, _ = _entry(api, keys[1])
    r = api.client.patch(
        f"/api/v1/admin/entries/{disabled_id}", json={"active": False}, headers=admin
    )
    assert r.status_code == 200
    r = _label(api, conv_id, agent, kind="entry", entry_id=disabled_id)
    assert r.status_code == 422 and "disabled" in r.json()["error"]["message"]
    r = _label(api, conv_id, agent, kind="entry", entry_id=999999)
    assert r.status_code == 422 and "does not exist" in r.json()["error"]["message"]
    r = _label(api, conv_id, agent, kind="entry")
    assert r.status_code == 422 and "entry_id" in r.json()["error"]["message"]
    r = _label(api, "0" * 32, agent, kind="not_faq")
    assert r.status_code == 404
    r = _label(api, conv_id, agent, kind="maybe")
    assert r.status_code == 422
    assert (
        api.client.post(
            f"/api/v1/conversations/{conv_id}/label", json={"kind": "not_faq"}
        ).status_code
        == 401
    )
    with session_scope(get_engine(api.db_url)) as s:
        assert feedback.get_label(s, conv_id) is None, "failed labels store nothing"


def test_new_entry_from_the_agents_reply(api):
    conv_id, _ = _handed_off(api)
    agent = api.login("alice")
    reply = "We do not give medical advice, but our gift cards work at every clinic."
    assert (
        api.client.post(
            f"/api/v1/conversations/{conv_id}/replies", json={"text": reply}, headers=agent
        ).status_code
        == 201
    )
    r = _label(api, conv_id, agent, kind="new_entry", new_entry={"question": "Dentist advice?"})
    assert r.status_code == 201, r.text
    with session_scope(get_engine(api.db_url)) as s:
        entry = entries.get_entry(s, r.json()["entry_id"])
        assert entry.answer == reply and entry.question == "Dentist advice?"
        assert entry.key == "dentist_advice"
        assert OUT_OF_SCOPE in [e.text for e in entry.examples]
    # without any agent reply there is nothing to answer with
    other, _ = _handed_off(api)
    r = _label(api, other, agent, kind="new_entry")
    assert r.status_code == 422 and "answer" in r.json()["error"]["message"]


def test_no_training_example_without_consent(api):
    from annae.agents.users import create_api_key
    from annae.privacy import consent

    with session_scope(get_engine(api.db_url)) as s:
        key = create_api_key(s, "kakao")
    r = api.client.post(
        "/api/v1/conversations", json={"customer_id": "u-42"}, headers={"X-API-Key": key}
    )
    conv_id, token = r.json()["id"], r.json()["token"]
    assert api.say(conv_id, {"Authorization": f"Bearer {token}"}, OUT_OF_SCOPE)["type"] == "handoff"
    agent = api.login("alice")
    entry_key = _keys(api)[0]
    entry_id, before = _entry(api, entry_key)
    r = _label(api, conv_id, agent, kind="entry", entry_id=entry_id)
    assert r.status_code == 201
    assert r.json()["example_added"] is False and "consent" in r.json()["not_added_because"]
    assert _entry(api, entry_key)[1] == before
    r = _label(api, conv_id, agent, kind="new_entry", new_entry={"answer": "No."}, replace=True)
    assert r.status_code == 422 and "own words" in r.json()["error"]["message"]
    with session_scope(get_engine(api.db_url)) as s:
        consent.grant(s, "u-42", "training", text_version="t1", source="test")
    r = _label(api, conv_id, agent, kind="entry", entry_id=entry_id, replace=True)
    assert r.json()["example_added"] is True


def test_ratings_and_review_list(api, monkeypatch):
    conv_id, headers = api.customer()
    reply = api.say(conv_id, headers, DELIVERY)
    assert reply["type"] == "answer"
    url = f"/api/v1/conversations/{conv_id}/messages/{reply['id']}/rating"
    admin = api.login("root")

    r = api.client.post(url, json={"helpful": True}, headers=headers)
    assert r.status_code == 200 and r.json() == {
        "message_id": reply["id"],
        "entry_id": reply["entry_id"],
        "helpful": True,
        "weak_example_added": False,
    }
    assert api.client.get("/api/v1/learning/review", headers=admin).json()["items"] == []

    r = api.client.post(url, json={"helpful": False}, headers=headers)
    assert r.status_code == 200
    items = api.client.get("/api/v1/learning/review", headers=admin).json()["items"]
    assert [(i["message_id"], i["question"]) for i in items] == [(reply["id"], DELIVERY)]
    done = api.client.post(f"/api/v1/learning/review/{items[0]['rating_id']}/done", headers=admin)
    assert done.status_code == 200
    assert api.client.get("/api/v1/learning/review", headers=admin).json()["items"] == []
    assert api.client.get("/api/v1/learning/review", headers=api.login("alice")).status_code == 403

    # only the bot's answers, only by the customer
    other, other_headers = api.customer()
    assert api.client.post(url, json={"helpful": True}, headers=other_headers).status_code == 403
    assert api.client.post(url, json={"helpful": True}, headers=admin).status_code == 403
    question_url = f"/api/v1/conversations/{conv_id}/messages/{reply['message_id']}/rating"
    assert api.client.post(question_url, json={"helpful": True}, headers=headers).status_code == 422
    missing = f"/api/v1/conversations/{conv_id}/messages/999999/rating"
    assert api.client.post(missing, json={"helpful": True}, headers=headers).status_code == 404
    assert api.client.post(url, json={"helpful": "meh"}, headers=headers).status_code == 422


def test_accepted_answers_become_weak_examples_only_when_allowed(api):
    # the service passes its one Settings down: this deployment learns from accepted answers
    api.client.app.state.services.settings.learn_from_accepted = True
    conv_id, headers = api.customer()
    question = "how many days until my delivery arrives"
    reply = api.say(conv_id, headers, question)
    if reply["type"] != "answer":
        pytest.fail(f"the demo model should answer {question!r}: {reply}")
    url = f"/api/v1/conversations/{conv_id}/messages/{reply['id']}/rating"
    r = api.client.post(url, json={"helpful": True}, headers=headers)
    assert r.json()["weak_example_added"] is True
    with session_scope(get_engine(api.db_url)) as s:
        entry = entries.get_entry(s, reply["entry_id"])
        assert (question, f"conversation:{conv_id}/accepted") in [
            (e.text, e.source) for e in entry.examples
        ]


def test_unanswered_questions_leave_the_list_once_labelled(api):
    conv_id, _ = _handed_off(api)
    asked, asked_headers = api.customer()
    api.client.post(
        f"/api/v1/conversations/{asked}/messages", json={"handoff": True}, headers=asked_headers
    )
    rated, rated_headers = api.customer()
    reply = api.say(rated, rated_headers, DELIVERY)
    api.client.post(
        f"/api/v1/conversations/{rated}/messages/{reply['id']}/rating",
        json={"helpful": False},
        headers=rated_headers,
    )
    with session_scope(get_engine(api.db_url)) as s:
        found = {(u.conversation_id, u.text, u.why) for u in feedback.unanswered_questions(s)}
    assert found == {(conv_id, OUT_OF_SCOPE, "handoff"), (rated, DELIVERY, "unhelpful")}
    agent = api.login("alice")
    assert _label(api, conv_id, agent, kind="not_faq").status_code == 201
    with session_scope(get_engine(api.db_url)) as s:
        assert [u.conversation_id for u in feedback.unanswered_questions(s)] == [rated]


def test_two_agents_labelling_at_once_one_wins(api):
    import threading

    conv_id, _ = _handed_off(api)
    entry_id, before = _entry(api, _keys(api)[0])
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def go(agent: str) -> None:
        barrier.wait()
        try:
            with session_scope(get_engine(api.db_url)) as s:
                outcomes.append(
                    feedback.label_conversation(
                        s, conv_id, kind="entry", entry_id=entry_id, agent=agent
                    )
                )
        except feedback.Conflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=go, args=(name,)) for name in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wins = [o for o in outcomes if isinstance(o, dict)]
    assert len(outcomes) == 2 and len(wins) == 1
    with session_scope(get_engine(api.db_url)) as s:
        assert feedback.get_label(s, conv_id)["agent"] == wins[0]["agent"]
    assert len(_entry(api, _keys(api)[0])[1]) == len(before) + 1, "one example, not two"


# --- the scenario: small talk after the hand-off is never what gets labelled ---------

EARBUD = "이어폰 한쪽이 안 들려요"
SMALL_TALK = "A12345 입니다 감사해요!"


def _scenario(api, first: str | None = None) -> tuple[str, dict, dict]:
    """A Korean customer asks (maybe after a first question), is handed off; the agent asks for
    the order number; the customer sends it with thanks."""
    conv_id, headers = api.customer()
    if first:
        api.say(conv_id, headers, first)

    def post(body: dict) -> dict:
        r = api.client.post(f"/api/v1/conversations/{conv_id}/messages", json=body, headers=headers)
        assert r.status_code == 200, r.text
        return r.json()

    reply = handed_off(post, EARBUD)  # no entry answers it
    assert reply["type"] == "handoff"
    agent = api.login("alice")
    assert api.client.post(f"/api/v1/conversations/{conv_id}/assign", headers=agent).is_success
    r = api.client.post(
        f"/api/v1/conversations/{conv_id}/replies",
        json={"text": "주문번호를 알려 주시면 확인해 드릴게요."},
        headers=agent,
    )
    assert r.status_code == 201, r.text
    api.say(conv_id, headers, SMALL_TALK)
    return conv_id, headers, agent


def test_label_form_quotes_the_handed_off_question_not_later_small_talk(api):
    conv_id, _, agent = _scenario(api)
    form = api.client.get(f"/api/v1/conversations/{conv_id}/label", headers=agent).json()
    assert [q["text"] for q in form["questions"]] == [EARBUD]
    assert form["question"]["text"] == EARBUD and form["questions"][0]["selected"]
    assert form["language"] == "ko"
    top = form["guesses"][0]
    credible = top["confidence"] >= Settings().label_preselect_min
    assert form["preselect"] == (top["entry_id"] if credible else None), "a credible guess only"
    with session_scope(get_engine(api.db_url)) as session:  # both sides of the floor
        for floor, expected in (
            (top["confidence"] + 0.01, None),
            (top["confidence"], top["entry_id"]),
        ):
            settings = Settings(label_preselect_min=floor)
            assert feedback.label_form(session, conv_id, settings)["preselect"] == expected

    small_talk_id = next(m["id"] for m in api.transcript(conv_id, agent) if m["text"] == SMALL_TALK)
    r = _label(
        api, conv_id, agent, kind="entry", entry_id=top["entry_id"], message_id=small_talk_id
    )
    assert r.status_code == 422 and "after the hand-off" in r.json()["error"]["message"]

    warranty_id, before = _entry(api, "warranty_ko")
    r = _label(api, conv_id, agent, kind="entry", entry_id=warranty_id)
    assert r.status_code == 201, r.text
    _, after = _entry(api, "warranty_ko")
    added = [t for t, _ in after if (t, _) not in before]
    assert added == [EARBUD], "the question is learnt, never the thanks"
    assert SMALL_TALK not in [t for t, _ in after]

    admin = api.login("root")
    listed = api.client.get("/api/v1/learning/labels", headers=admin).json()["labels"]
    assert listed[0]["conversation_id"] == conv_id and listed[0]["examples"] == [EARBUD]
    other = api.login("bob")
    r = api.client.delete(f"/api/v1/conversations/{conv_id}/label", headers=other)
    assert r.status_code == 403, "an agent undoes only their own labels"
    r = api.client.delete(f"/api/v1/conversations/{conv_id}/label", headers=admin)
    assert r.status_code == 200 and r.json()["examples_removed"] == [EARBUD]
    assert _entry(api, "warranty_ko")[1] == before, "undo removes the example"
    assert (
        api.client.get(f"/api/v1/conversations/{conv_id}/label", headers=agent).json()["label"]
        is None
    )
    r = api.client.delete(f"/api/v1/conversations/{conv_id}/label", headers=admin)
    assert r.status_code == 404


def test_every_question_before_the_hand_off_is_offered_and_selectable(api):
    first = "배송은 얼마나 걸리나요 아니면 배송비는 얼마인가요?"  # clarified (two entries close)
    conv_id, _, agent = _scenario(api, first=first)
    form = api.client.get(f"/api/v1/conversations/{conv_id}/label", headers=agent).json()
    texts = [q["text"] for q in form["questions"]]
    assert texts == [first, EARBUD]
    assert [q["selected"] for q in form["questions"]] == [False, True]
    ids = [q["message_id"] for q in form["questions"]]
    warranty_id, before = _entry(api, "warranty_ko")
    r = _label(api, conv_id, agent, kind="entry", entry_id=warranty_id, message_ids=ids)
    assert r.status_code == 201 and r.json()["examples_added"] == 2
    r = _label(api, conv_id, agent, kind="not_faq", replace=True)
    assert r.status_code == 201
    assert _entry(api, "warranty_ko")[1] == before, "replacing removes both examples"


def test_review_list_skips_ratings_of_erased_answers(engine):
    """Erasure deletes messages, not ratings: a rating whose answer is gone is not listed and
    does not take a place under the limit."""
    from annae.dialogue import conversations
    from annae.store.tables.learning import AnswerRating

    with session_scope(engine) as s:
        conv, _ = conversations.create(s)
        conversations.add_message(s, conv, "customer", "text", "where is my parcel")
        answer = conversations.add_message(s, conv, "bot", "answer", "It ships in 2 days.")
        kept = AnswerRating(conversation_id=conv.id, message_id=answer.id, helpful=False)
        gone = AnswerRating(conversation_id="0" * 32, message_id=answer.id + 100, helpful=False)
        s.add_all([kept, gone])
        s.flush()
        items = feedback.review_list(s, limit=1)
        assert [(i["message_id"], i["question"]) for i in items] == [
            (answer.id, "where is my parcel")
        ]
