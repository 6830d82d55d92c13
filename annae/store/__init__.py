"""Storage: SQLAlchemy 2 models, sessions and Alembic migrations.

Each capability keeps its tables in ``annae/store/tables/<capability>.py`` and
the functions that read and write them in its own package; other packages call
those functions rather than querying the tables.
"""

from annae.store.db import Base, get_engine, init_db, session_scope

__all__ = ["Base", "get_engine", "init_db", "session_scope"]
