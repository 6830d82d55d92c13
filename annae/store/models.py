"""Imports every capability's tables so that ``Base.metadata`` is complete.

Add a line here when a capability gains a ``annae/store/tables/<name>.py``.
"""

from annae.store.db import Base
from annae.store.tables import (
    channels,  # noqa: F401
    desk,  # noqa: F401
    kb,  # noqa: F401
    learning,  # noqa: F401
    privacy,  # noqa: F401
    recommend,  # noqa: F401
    service,  # noqa: F401
)

__all__ = ["Base"]
