"""No secret the test suite made appears in any log line the suite wrote (issue 10's target).

Runs last (conftest moves it there); after a parallel run (pytest-xdist, `make test`) it runs in a
second, plain pytest with the other ``alone`` tests, on the same ledger, and
``ANNAE_TEST_SUITE_TEMP`` names the parallel run's temporary folder (its ``--basetemp``), scanned as
well as this session's own. Every ``secrets.token_urlsafe``/``token_hex`` value of the test process
and of every server it started is in the ledger (tests/ledger); the logs are every ``*.log`` under
this session's temporary folders (the servers' stdout and stderr, PostgreSQL's and Redis's private
instances) and Annae's own in-process log lines (INFO and up).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest
import secret_ledger

from annae.agents.users import create_api_key
from annae.store.db import get_engine, init_db, session_scope

SUITE_TEMP = "ANNAE_TEST_SUITE_TEMP"  # the parallel run's --basetemp (see the module's docstring)
pytestmark = pytest.mark.alone  # after every other test: never beside them (conftest)

RUN = re.compile(r"[A-Za-z0-9_\-]{" + str(secret_ledger.MIN_LENGTH) + ",}")


def _leaks(text: str, made: set[str], lengths: set[int]) -> set[str]:
    found = set()
    for run in RUN.findall(text):
        for size in lengths:
            for start in range(len(run) - size + 1):
                if run[start : start + size] in made:
                    found.add(run[start : start + size])
    return found


def test_no_secret_the_suite_made_is_in_any_log(tmp_path, tmp_path_factory):
    ledger = Path(os.environ[secret_ledger.ENV])
    # the ledger sees what is made in this process, and Annae's log lines reach its log file
    engine = init_db(get_engine(f"sqlite:///{tmp_path / 'annae.db'}"))
    with session_scope(engine) as session:
        key = create_api_key(session, "ledger-check")
    engine.dispose()
    made = secret_ledger.recorded(str(ledger))
    assert key.removeprefix("ak_") in made
    logging.getLogger("annae.test").info("ledger check line")
    in_process = ledger.parent / "in-process.log"
    assert "ledger check line" in in_process.read_text(encoding="utf-8")

    folders = [tmp_path_factory.getbasetemp()]
    if os.environ.get(SUITE_TEMP):
        folders.append(Path(os.environ[SUITE_TEMP]))
        assert folders[-1].is_dir(), f"{SUITE_TEMP}={folders[-1]} is not a folder"
    logs = [in_process, *(log for folder in folders for log in folder.rglob("*.log"))]
    lengths = {len(s) for s in made}
    leaked: dict[str, set[str]] = {}
    for log in logs:
        if log.is_file():
            found = _leaks(log.read_text(encoding="utf-8", errors="replace"), made, lengths)
            if found:
                leaked[str(log)] = found
    assert not leaked, f"{len(made)} secrets checked in {len(logs)} logs; leaked: {leaked}"
