"""Test-suite only (see secret_ledger.py): processes started by the suite record their secrets."""

import os

if os.environ.get("ANNAE_TEST_SECRET_LEDGER"):
    import secret_ledger

    secret_ledger.install(os.environ["ANNAE_TEST_SECRET_LEDGER"])
