"""Product recommendations from purchases, views and conversations.

What other capabilities call (the chat, the service, the privacy capability)::

    from annae.recommend import (
        has_marketing_consent, set_marketing_consent,   # the one place consent is checked
        record_interaction, record_entry_interest,      # clicks, conversation mentions
        recommend_for_entry,                            # personal cards after an answer
        suggest_for_entry,                              # non-personal cards, for anyone
    )
"""

from annae.recommend.service import (
    GENERAL,
    NO_CONSENT,
    PERSONAL,
    recommend,
    recommend_for_entry,
    similar,
    suggest_for_entry,
)
from annae.recommend.store import (
    RecommendError,
    asked_also_bought,
    entry_products,
    has_entry_interest,
    has_marketing_consent,
    link_entry,
    products_by_id,
    record_entry_interest,
    record_interaction,
    set_marketing_consent,
)

__all__ = [
    "GENERAL",
    "NO_CONSENT",
    "PERSONAL",
    "RecommendError",
    "asked_also_bought",
    "entry_products",
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
