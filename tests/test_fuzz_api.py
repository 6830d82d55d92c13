"""Schemathesis over /openapi.json, time-boxed: no 5xx, and only documented status codes.

Every operation gets generated valid (positive) and invalid (negative) requests, sent with an
admin's bearer token (the widest rights, so requests get past authentication into the handlers),
on SQLite and on PostgreSQL: first a few requests for every operation (a fixed number, however
long they take), then more per operation while FUZZ_SECONDS per database last, in an order that
changes from run to run (the seed is printed).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

# alone: the time box assumes the machine to itself (make test runs it after the parallel run)
pytestmark = [pytest.mark.slow, pytest.mark.alone]

FUZZ_SECONDS = float(os.environ.get("ANNAE_FUZZ_SECONDS", "30"))  # per database
ROUNDS = (4, 25)  # examples per operation and mode: every operation first, then deeper
# starting a retrain trains a model in the background: minutes of CPU, not an input check
SKIP = {("POST", "/api/v1/admin/retrain"), ("POST", "/api/v1/learning/retrain")}
LOGOUT = ("POST", "/api/v1/auth/logout")


def test_fuzz_openapi_no_5xx_and_only_documented_codes(api):
    admin = api.login("root")
    # the fuzzed logout ends the session it is sent with: it gets a session of its own, so the
    # other operations keep the admin's (signing in again during the run meets the rate limit)
    throwaway = api.login("root")
    app = api.client.app
    documented_schema = app.openapi()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if (op.method.upper(), op.path) not in SKIP]
    assert len(operations) >= 50
    seed = int(os.environ.get("ANNAE_FUZZ_SEED", random.randrange(1 << 30)))
    print(f"fuzz seed {seed} (ANNAE_FUZZ_SEED={seed} repeats the order)")
    random.Random(seed).shuffle(operations)
    deadline = time.monotonic() + FUZZ_SECONDS
    seen: Counter = Counter()
    failures: list[str] = []

    def fuzz(op, mode: GenerationMode, documented: set[int], examples: int, timed: bool) -> None:
        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=op.as_strategy(generation_mode=mode))
        def run(case) -> None:
            if timed and time.monotonic() > deadline:
                return
            own = throwaway if (op.method.upper(), op.path) == LOGOUT else admin
            response = case.call(headers=own)
            status = response.status_code
            seen[status] += 1
            if status >= 500 or status not in documented:
                failures.append(
                    f"{op.method.upper()} {op.path} -> {status} "
                    f"({response.text[:200]!r}) for {case.path_parameters} "
                    f"{case.query} {str(case.body)[:200]}"
                )

        try:
            run()
        except Unsatisfiable:  # e.g. no invalid request exists for an operation without inputs
            pass

    # the first round is bounded by its size (every operation, both modes, ROUNDS[0] examples),
    # not by the clock: a machine twice as slow still sends every operation its requests; the
    # deeper rounds get what is left of the time box
    for examples in ROUNDS:
        for op in operations:
            responses = documented_schema["paths"][op.path][op.method.lower()]["responses"]
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if examples == ROUNDS[0] or time.monotonic() < deadline:
                    fuzz(
                        op, mode, {int(code) for code in responses}, examples, examples != ROUNDS[0]
                    )
    total = sum(seen.values())
    print(f"fuzz: {total} requests over {len(operations)} operations, statuses {dict(seen)}")
    assert total >= 100, seen  # the time box left room for a real run
    assert seen[401] < total / 4, seen  # most requests got past authentication into the handlers
    assert not failures, "\n".join(failures[:20])
