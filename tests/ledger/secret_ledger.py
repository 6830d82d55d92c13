"""Test-suite only: every secret a process of the suite makes goes to one ledger file, so the last
test (``test_zz_suite_log_secrets.py``) can grep every log the suite wrote for all of them.

``install`` wraps :func:`secrets.token_urlsafe` and :func:`secrets.token_hex`, which make every
credential Annae issues (conversation and staff tokens, API keys, widget and webhook secrets,
generated passwords). The test process installs it from conftest; server processes through the
``sitecustomize`` beside this file (conftest puts this folder on ``PYTHONPATH``).
"""

from __future__ import annotations

import os
import secrets

ENV = "ANNAE_TEST_SECRET_LEDGER"
MIN_LENGTH = 16  # shorter values could match ordinary text by chance


def install(path: str) -> None:
    if getattr(secrets, "_annae_ledger", None) == path:
        return
    made = {"token_urlsafe": secrets.token_urlsafe, "token_hex": secrets.token_hex}

    def record(value: str) -> str:
        if len(value) >= MIN_LENGTH:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (value + "\n").encode())
            finally:
                os.close(fd)
        return value

    secrets.token_urlsafe = lambda nbytes=None: record(made["token_urlsafe"](nbytes))
    secrets.token_hex = lambda nbytes=None: record(made["token_hex"](nbytes))
    secrets._annae_ledger = path


def recorded(path: str) -> set[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return {line.strip() for line in f if line.strip()}
    except FileNotFoundError:
        return set()
