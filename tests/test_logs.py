"""JSON log lines: request and conversation ids, no customer text unless asked, redaction."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pytest
from api_support import make_api

from annae import logs

LOGGERS = ("annae", "uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture
def json_logs():
    """This process logs as `annae serve` does, into a buffer (restored afterwards)."""
    names = (*LOGGERS, "")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate) for n in names}
    buffer = io.StringIO()

    def configure() -> None:
        config = logs.config("info")
        config["handlers"]["stderr"]["stream"] = buffer  # instead of sys.stderr
        logging.config.dictConfig(config)

    def lines() -> list[dict]:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return [json.loads(line) for line in text.splitlines() if line]

    configure()
    lines.configure = configure
    yield lines
    for name, (handlers, propagate) in saved.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate


def test_access_lines_have_uvicorn_fields_and_personal_data_is_redacted(json_logs):
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "10.0.0.7:51234", "GET", "/readyz", "1.1", 200
    )
    logging.getLogger("annae.web").warning("could not reach kim@example.com at 010-1234-5678")
    access, warning = json_logs()
    assert access["event"] == "request" and access["logger"] == "uvicorn.access"
    assert (access["method"], access["path"], access["status"]) == ("GET", "/readyz", 200)
    assert access["client"] == "[IP]:51234"  # the client's address is personal data too
    assert access["level"] == "info" and access["ts"].endswith("+00:00")
    assert "kim@example.com" not in warning["event"] and "010-1234-5678" not in warning["event"]
    assert warning["level"] == "warning"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("log_text", ["", "redacted"])
def test_turn_lines_carry_ids_and_text_only_when_asked(
    annae_home, db_url, models, monkeypatch, json_logs, log_text
):
    monkeypatch.setenv("ANNAE_LOG_TEXT", log_text)
    api = make_api(annae_home, db_url, models, monkeypatch)
    with api.client as client:
        conv_id, headers = api.customer()
        json_logs()
        question = "How long does delivery take? mail me at kim@example.com"
        r = client.post(
            f"/api/v1/conversations/{conv_id}/messages",
            json={"text": question},
            headers={**headers, "X-Request-ID": "req-42"},
        )
        assert r.status_code == 200 and r.headers["x-request-id"] == "req-42"
        assert len(client.get("/healthz").headers["x-request-id"]) == 32
    turns = [line for line in json_logs() if line["event"] == "turn"]
    assert len(turns) == 1
    turn = turns[0]
    assert turn["request_id"] == "req-42" and turn["conversation_id"] == conv_id
    assert turn["type"] == r.json()["type"]
    raw = json.dumps(turn)
    assert "kim@example.com" not in raw
    if log_text:
        assert turn["text"].startswith("How long does delivery take?")
        assert "[EMAIL]" in turn["text"]
    else:
        assert "text" not in turn and "delivery" not in raw


def test_filters_added_to_the_list_apply_to_every_handler(json_logs):
    class Stamp(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.stamped = True
            return True

    logs.HANDLER_FILTERS.append(Stamp)
    try:
        json_logs.configure()
        json_logs()
        logging.getLogger("uvicorn.error").info("started")
        logging.getLogger("annae.web").info("ready")
        assert [line.get("stamped") for line in json_logs()] == [True, True]
    finally:
        logs.HANDLER_FILTERS.remove(Stamp)
