"""Product recommendations from purchases, views and conversations.

What other capabilities call (the chat, the service, the privacy capability)::

    from annae.recommend import (
        has_marketing_consent, set_marketing_consent,   # the one place consent is checked
        record_interaction, record_entry_interest,      # clicks, conversation mentions
        recommend_for_entry,                            # personal cards after an answer
        card, CARDS,                                    # what a chat shows of each, how many
        suggest_for_entry,                              # non-personal cards, for anyone
        export_customer, erase_customer,                # a customer's rows, for privacy.rights
    )

``annae.recommend.erase`` registers those (and the recommenders that learnt a customer) with
``annae.privacy.rights``, which imports it by name before every export and erasure.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Loaded on first use (PEP 562): `annae rec …` and the chat need them, `annae ask` does not, and
# importing the models (scikit-learn, SciPy) costs seconds at every command's start.
_WHERE = {
    "CARDS": "service",
    "card": "service",
    "GENERAL": "service",
    "NO_CONSENT": "service",
    "PERSONAL": "service",
    "recommend": "service",
    "recommend_for_entry": "service",
    "similar": "service",
    "suggest_for_entry": "service",
    "RecommendError": "store",
    "asked_also_bought": "store",
    "entry_products": "store",
    "erase_customer": "store",
    "export_customer": "store",
    "has_entry_interest": "store",
    "has_marketing_consent": "store",
    "link_entry": "store",
    "products_by_id": "store",
    "record_entry_interest": "store",
    "record_interaction": "store",
    "set_marketing_consent": "store",
}

if TYPE_CHECKING:  # pragma: no cover
    from annae.recommend.service import (
        CARDS,
        GENERAL,
        NO_CONSENT,
        PERSONAL,
        card,
        recommend,
        recommend_for_entry,
        similar,
        suggest_for_entry,
    )
    from annae.recommend.store import (
        RecommendError,
        asked_also_bought,
        entry_products,
        erase_customer,
        export_customer,
        has_entry_interest,
        has_marketing_consent,
        link_entry,
        products_by_id,
        record_entry_interest,
        record_interaction,
        set_marketing_consent,
    )


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'annae.recommend' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"annae.recommend.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CARDS",
    "GENERAL",
    "NO_CONSENT",
    "PERSONAL",
    "RecommendError",
    "asked_also_bought",
    "card",
    "entry_products",
    "erase_customer",
    "export_customer",
    "has_entry_interest",
    "has_marketing_consent",
    "link_entry",
    "products_by_id",
    "recommend",
    "recommend_for_entry",
    "record_entry_interest",
    "record_interaction",
    "set_marketing_consent",
    "similar",
    "suggest_for_entry",
]
