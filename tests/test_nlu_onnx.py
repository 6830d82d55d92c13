"""The encoder exported to ONNX (the serving path) and the small-data classifier."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from test_nlu_engine import LEXICAL, OOS, TOPICS

from annae.nlu.classifier import IntentClassifier, TrainingError
from annae.nlu.encoder import Encoder
from annae.nlu.engine import ENCODER_DIR, Engine
from annae.nlu.features import FeatureConfig
from annae.nlu.integrity import ModelIntegrityError
from annae.nlu.onnx import OnnxEncoder, export, quantize

QUESTIONS = [
    "How long does delivery take?",
    "my card payment was declined twice",
    "배송은 얼마나 걸려요?",
    "환불 받고 싶어요",
    "a",
    "x " * 400,  # longer than the encoder's 256 tokens: truncated the same way
]


@pytest.fixture(scope="module")
def torch_encoder() -> Encoder:
    return Encoder("bundled")


def test_onnx_export_gives_the_torch_embeddings(torch_encoder, tmp_path):
    checked = export(torch_encoder.model, int8=False)
    assert checked is not None
    exported = checked.exported
    reference = torch_encoder.encode(QUESTIONS)
    in_memory = OnnxEncoder(exported).encode(QUESTIONS)
    np.testing.assert_allclose(checked.encode(QUESTIONS), in_memory, atol=1e-6)
    assert in_memory.shape == reference.shape == (len(QUESTIONS), 384)
    assert (in_memory * reference).sum(1).min() > 0.9999
    folder = exported.write(tmp_path / "enc")
    from_disk = OnnxEncoder(folder).encode(QUESTIONS)
    np.testing.assert_allclose(from_disk, in_memory, atol=1e-6)
    assert json.loads((folder / "encoder.json").read_text())["sha256"] == exported.sha256
    assert OnnxEncoder(folder).encode([]).shape == (0, 384)


def test_the_int8_export_agrees_with_torch_in_two_thirds_of_the_bytes(torch_encoder, tmp_path):
    small = export(torch_encoder.model)
    full = export(torch_encoder.model, int8=False)
    assert small is not None and full is not None
    assert small.config["int8"] is True and "int8" not in full.config
    assert small.exported is not None and full.exported is not None
    # the matrices in 8 bits; the word embeddings (47 MB) stay float32
    assert len(small.exported.model) < len(full.exported.model) * 2 / 3
    reference = torch_encoder.encode(QUESTIONS)
    vectors = small.encode(QUESTIONS)
    assert (vectors * reference).sum(1).min() > 0.95  # float32: > 0.9999 (above)
    assert (vectors * reference).sum(1).mean() > 0.98
    assert not np.allclose(vectors, full.encode(QUESTIONS), atol=1e-4)  # it is another graph
    # deterministic, and the last graph quantised is kept: the same export is quantised once
    assert quantize(full.exported.model) is quantize(full.exported.model) == small.exported.model
    folder = small.exported.write(tmp_path / "enc")
    assert json.loads((folder / "encoder.json").read_text())["int8"] is True
    np.testing.assert_allclose(OnnxEncoder(folder).encode(QUESTIONS), vectors, atol=1e-6)
    # a text's int8 vector is its own: the same alone as among others (the activations' scale
    # is per run, so batched it would borrow its neighbours' ranges)
    for i, question in enumerate(QUESTIONS):
        np.testing.assert_array_equal(small.encode([question])[0], vectors[i])
    assert not np.array_equal(small._embed(list(QUESTIONS)), vectors)  # what batching would do
    # served on another number of threads: an int8 encoder keeps its one session (one thread a
    # text either way), a float32 one gets its own
    assert small.with_threads(2).session is small.session and small.with_threads(2).threads == 2
    assert full.with_threads(2).session is not full.session
    # training embeds on two threads, texts side by side: the same vectors as serving's one
    done: list[int] = []
    two = OnnxEncoder(small.exported, threads=2).encode(
        QUESTIONS * 5, batch_size=4, progress=done.append
    )
    np.testing.assert_array_equal(two, np.tile(vectors, (5, 1)))
    assert sum(done) == len(QUESTIONS) * 5 and len(done) > 1


def test_an_int8_graph_that_disagrees_with_torch_gives_way_to_float32(torch_encoder, monkeypatch):
    import annae.nlu.onnx as onnx_mod

    monkeypatch.setattr(onnx_mod, "INT8_AGREEMENT", 0.99999)
    served = export(torch_encoder.model)
    assert served is not None and "int8" not in served.config


def test_the_bundled_bert_is_written_and_another_layout_or_a_bad_graph_is_traced(
    torch_encoder, monkeypatch
):
    import annae.nlu.graph as graph_mod
    import annae.nlu.onnx as onnx_mod

    written = export(torch_encoder.model, int8=False)
    assert written is not None and written.config["graph"] == "written"
    # a graph written wrongly (no encoder layers) disagrees with torch: the model is traced
    monkeypatch.setattr(graph_mod, "encoder", lambda g, x, *args, **kwargs: x)
    traced = export(torch_encoder.model, int8=False)
    assert traced is not None and "graph" not in traced.config
    assert (traced.encode(QUESTIONS) * written.encode(QUESTIONS)).sum(1).min() > 0.9999
    monkeypatch.undo()
    # another layout (here: said to be one) is traced without trying
    monkeypatch.setattr(onnx_mod, "_bert_export", lambda st_model: None)
    other = export(torch_encoder.model, int8=False)
    assert other is not None and "graph" not in other.config


def test_an_export_that_disagrees_with_torch_is_refused(torch_encoder, monkeypatch):
    import annae.nlu.onnx as onnx_mod

    monkeypatch.setattr(onnx_mod, "PROBES", ["hello"])
    real_encode = OnnxEncoder.encode
    monkeypatch.setattr(OnnxEncoder, "encode", lambda self, texts: -real_encode(self, texts))
    assert export(torch_encoder.model) is None


def _data():
    texts, labels = [], []
    for topic, examples in TOPICS.items():
        texts += examples
        labels += [topic] * len(examples)
    return texts + OOS, labels + ["oos"] * len(OOS)


def test_saved_engine_serves_with_onnx_runtime_without_torch(tmp_path):
    texts, labels = _data()
    engine = Engine.fit(texts, labels)
    assert engine.manifest["encoder_runtime"] == "onnxruntime"
    assert isinstance(engine.encoder, OnnxEncoder)
    engine.save(tmp_path / "v1")
    engine.save(tmp_path / "v2")
    onnx_file = tmp_path / "v2" / ENCODER_DIR / "model.onnx"
    # versions side by side share one encoder file
    assert os.stat(onnx_file).st_nlink == 2
    assert os.path.samefile(onnx_file, tmp_path / "v1" / ENCODER_DIR / "model.onnx")
    script = (
        "import sys, json; from annae.nlu.engine import Engine; "
        "e = Engine.load(sys.argv[1]); d = e.decide(sys.argv[2]); "
        "print(json.dumps({'key': d.candidates[0].key, 'conf': d.candidates[0].confidence, "
        "'torch': 'torch' in sys.modules, 'enc': type(e.encoder).__name__}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "v2"), "배송 기간이 얼마나 되나요"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["torch"] is False
    assert result["enc"] == "OnnxEncoder"
    here = engine.candidates(["배송 기간이 얼마나 되나요"])[0][0]
    assert result["key"] == here.key == "shipping"
    assert abs(result["conf"] - here.confidence) < 1e-3
    # a loaded engine saved elsewhere carries its encoder along
    Engine.load(tmp_path / "v2").save(tmp_path / "copy" / "v3")
    assert (tmp_path / "copy" / "v3" / ENCODER_DIR / "model.onnx").stat().st_size == (
        onnx_file.stat().st_size
    )
    copied = Engine.load(tmp_path / "copy" / "v3").candidates(["배송 기간이 얼마나 되나요"])[0][0]
    assert copied.key == here.key and abs(copied.confidence - here.confidence) < 1e-3
    # the manifest records every file's SHA-256; a tampered model.onnx is refused at load
    manifest = json.loads((tmp_path / "v2" / "manifest.json").read_text())
    assert set(manifest["files"]) >= {"encoder/model.onnx", "classifier.joblib", "answers.json"}
    tampered = tmp_path / "tampered"
    shutil.copytree(tmp_path / "v2", tampered)  # a real copy, not the shared hard link
    with (tampered / ENCODER_DIR / "model.onnx").open("r+b") as fh:
        fh.seek(-100, os.SEEK_END)
        byte = fh.read(1)
        fh.seek(-100, os.SEEK_END)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ModelIntegrityError, match=r"encoder/model\.onnx has SHA-256"):
        Engine.load(tampered)
    assert (
        Engine.load(tmp_path / "v2").candidates(["배송 기간이 얼마나 되나요"])[0][0].key == here.key
    )


def test_torch_stays_available(tmp_path):
    texts, labels = _data()
    engine = Engine.fit(texts, labels, onnx=False)
    assert engine.manifest["encoder_runtime"] == "torch"
    assert isinstance(engine.encoder, Encoder)
    engine.save(tmp_path / "m")
    assert not (tmp_path / "m" / ENCODER_DIR).exists()
    loaded = Engine.load(tmp_path / "m")
    assert isinstance(loaded.encoder, Encoder)
    assert loaded.decide("where is my refund").candidates[0].key == "refund"


def test_small_data_chooses_the_linear_model_by_cross_validation():
    texts, labels = _data()
    auto = IntentClassifier(features=LEXICAL).fit(texts, labels)
    tried = auto.metrics_["cv_candidates"]
    assert [c["model"] for c in tried] == ["logreg", "svm"]
    best = max(tried, key=lambda c: c["cv_accuracy"])
    assert auto.model == auto.metrics_["model"] == best["model"]
    logreg = IntentClassifier(features=LEXICAL, model="logreg").fit(texts, labels)
    svm = IntentClassifier(features=LEXICAL, model="svm").fit(texts, labels)
    assert [c["model"] for c in svm.metrics_["cv_candidates"]] == ["svm"]
    assert svm._model.svm.kind == "LinearSVC"
    assert logreg._model.svm.kind == "LogisticRegression"
    for clf in (logreg, svm):
        probs = clf.predict_proba(["gift wrap please"])
        assert clf.top_k(probs, 1)[0][0][0] == "wrap"
    with pytest.raises(TrainingError, match="unknown classifier model"):
        IntentClassifier(features=LEXICAL, model="forest").fit(texts, labels)


def test_large_data_uses_the_svm_only():
    clf = IntentClassifier(features=LEXICAL)
    assert clf._candidates(5000, True) == [("svm", 1.5)]
    assert clf._candidates(500, True) == [
        ("logreg", 2.0),
        ("logreg", 4.0),
        ("svm", 1.5),
        ("svm", 3.0),
    ]
    assert clf._candidates(500, False) == [("logreg", 1.5), ("svm", 1.5)]


def test_lexical_only_engine_has_no_encoder(tmp_path):
    texts, labels = _data()
    engine = Engine.fit(texts, labels, features=FeatureConfig(encoder="none"))
    assert engine.encoder is None
    assert engine.manifest["encoder_runtime"] is None
    engine.save(tmp_path / "lex")
    assert not (tmp_path / "lex" / ENCODER_DIR).exists()
