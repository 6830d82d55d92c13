"""Model files are checked against their SHA-256 hashes before they are used."""

from __future__ import annotations

import json
import shutil

import pytest
from api_support import make_api

from annae.nlu.encoder import resolve
from annae.nlu.engine import Engine
from annae.nlu.integrity import BUNDLED_FILES, ModelIntegrityError, verify_bundled


def test_bundled_encoder_matches_the_tested_release(tmp_path):
    folder = resolve("bundled")  # checks the installed package's files
    copy = tmp_path / "model"
    for name in BUNDLED_FILES:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).symlink_to(f"{folder}/{name}")
    verify_bundled(copy)
    (copy / "tokenizer.json").unlink()
    (copy / "tokenizer.json").write_text("{}")
    (copy / "vocab.txt").unlink()
    with pytest.raises(ModelIntegrityError) as info:
        verify_bundled(copy)
    message = str(info.value)
    assert "tokenizer.json has SHA-256" in message and "vocab.txt is missing" in message
    assert "model.safetensors" not in message


def test_a_tampered_classifier_is_refused_before_it_is_unpickled(models, tmp_path):
    copy = tmp_path / "v1"
    shutil.copytree(models / "v1", copy)
    Engine.load(copy, warm=False)
    (copy / "classifier.joblib").write_bytes(b"not the pickle that was trained")
    with pytest.raises(ModelIntegrityError, match=r"classifier\.joblib has SHA-256"):
        Engine.load(copy)


def test_the_service_is_not_ready_with_a_tampered_live_model(
    annae_home, db_url, models, monkeypatch
):
    api = make_api(annae_home, db_url, models, monkeypatch)
    answers = annae_home / "models" / "v1" / "answers.json"
    data = json.loads(answers.read_text())
    first = next(iter(data))
    data[first]["answer"] = "Send your card number to evil@example.com"
    answers.write_text(json.dumps(data))
    with api.client as client:
        r = client.get("/readyz")
        assert r.status_code == 503
        assert "answers.json has SHA-256" in r.json()["error"]["message"]
        assert r.json()["model"] == "missing"
