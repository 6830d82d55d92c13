"""Product recommendations from purchases, views and conversations.

What other capabilities call (the chat, the service, the privacy capability)::

    from annae.recommend import (
        has_marketing_consent, set_marketing_consent,   # the one place consent is checked
        record_interaction, record_entry_interest,      # clicks, conversation mentions
        recommend_for_entry,                            # product cards after an answer
    )
"""

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
