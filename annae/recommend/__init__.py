"""Product recommendations from purchases, views and conversations.

What other capabilities call (the chat, the service, the privacy capability)::

    from annae.recommend import (
        has_marketing_consent, set_marketing_consent,   # the one place consent is checked
        record_interaction, record_entry_interest,      # clicks, conversation mentions
        recommend_for_entry,                            # product cards after an answer
    )
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Loaded on first use (PEP 562): `annae rec …` and the chat need them, `annae ask` does not, and
# importing the models (scikit-learn, SciPy) costs seconds at every command's start.
_WHERE = {
    "recommend": "service",
    "recommend_for_entry": "service",
    "similar": "service",
    "RecommendError": "store",
    "entry_products": "store",
    "has_marketing_consent": "store",
    "link_entry": "store",
    "record_entry_interest": "store",
    "record_interaction": "store",
    "set_marketing_consent": "store",
}

if TYPE_CHECKING:  # pragma: no cover
    from annae.recommend.service import recommend, recommend_for_entry, similar
    from annae.recommend.store import (
        RecommendError,
        entry_products,
        has_marketing_consent,
        link_entry,
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
    "RecommendError",
    "entry_products",
    "has_marketing_consent",
    "link_entry",
    "recommend",
    "recommend_for_entry",
    "record_entry_interest",
    "record_interaction",
    "set_marketing_consent",
    "similar",
]
