"""Statements run on the driver's cursor of a session's own connection: a turn's hot writes.

SQLAlchemy's execution of an already compiled Core statement (events, parameter construction, a
result object) costs two to three times the driver's own CPU for a one-row statement (measured
on PostgreSQL with psycopg: an UPDATE 129-160 µs through a connection or session against 52 µs
on the cursor). :class:`Direct` compiles its statement once per dialect and runs it on the
DBAPI cursor of ``session.connection()``: the same transaction, the same SQL text (casts
included) and the same conversion of each value (the statement's types' bind processors), only
without that per-call machinery. Driver errors are raised as SQLAlchemy's exceptions (a lost
connection invalidates it, as SQLAlchemy does), so callers handle them as any other statement's.

For the few statements of every customer turn, with values only (no expanding ``IN``, no
SQL-side defaults to fetch): the rest of the code goes through the session as usual. Statement
listeners (``before_cursor_execute``) do not see these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, inspect, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

T = TypeVar("T")


class _Plan:
    __slots__ = ("names", "positional", "processors", "results", "sql")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)  # a statement, not DDL
        self.sql = compiled.string
        self.positional = bool(compiled.positional)
        self.names: tuple[str, ...] = tuple(
            compiled.positiontup or () if compiled.positional else compiled.binds
        )
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor
        # a SELECT's columns: each value as the column's type reads it (SQLite's text dates)
        columns = getattr(statement, "selected_columns", None) or ()
        self.results: tuple[Callable[[Any], Any] | None, ...] = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )

    def arguments(self, params: Mapping[str, Any]) -> dict[str, Any] | list[Any]:
        """The driver's arguments: each value converted by its type (a list in the statement's
        order for positional paramstyles)."""
        processors = self.processors
        values = [
            params[n] if (p := processors.get(n)) is None else p(params[n]) for n in self.names
        ]
        return values if self.positional else dict(zip(self.names, values, strict=True))


class Direct:
    """A Core statement (bind parameters named, every value given) compiled once per dialect and
    run with :meth:`execute` on the cursor of the session's connection, in its transaction."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._plans: dict[tuple[str, str], _Plan] = {}

    def plan(self, dialect: Dialect) -> _Plan:
        key = (dialect.name, dialect.paramstyle)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _Plan(self.statement, dialect)
        return plan

    def execute(self, session: Session, params: Mapping[str, Any]) -> Any:
        """Run the statement with ``params`` (bind name -> value); the DBAPI cursor, for its
        ``rowcount`` and rows. Driver errors come as :class:`sqlalchemy.exc.DBAPIError`."""
        return self._run(session, params)[1]

    def first(self, session: Session, params: Mapping[str, Any]) -> tuple | None:
        """A SELECT's first row with each value converted by its column's type, or None."""
        plan, cursor = self._run(session, params)
        row = cursor.fetchone()
        if row is None:
            return None
        return tuple(v if p is None else p(v) for p, v in zip(plan.results, row, strict=True))

    def _run(self, session: Session, params: Mapping[str, Any]) -> tuple[_Plan, Any]:
        conn = session.connection()
        dialect = conn.dialect
        plan = self.plan(dialect)
        dbapi_conn = conn.connection.dbapi_connection
        assert dbapi_conn is not None  # a connection in a transaction holds its DBAPI connection
        cursor = dbapi_conn.cursor()
        args = plan.arguments(params)
        try:
            cursor.execute(plan.sql, args)
        except dialect.loaded_dbapi.Error as exc:
            raise _wrapped(conn, exc, plan.sql, args, cursor) from exc
        return plan, cursor


def _wrapped(conn: Connection, exc: Any, sql: str, args: Any, cursor: Any) -> Exception:
    """``exc`` as SQLAlchemy raises a driver error: its class (``OperationalError``,
    ``IntegrityError``…), and a connection that a disconnect broke invalidated."""
    dialect = conn.dialect
    disconnect = bool(dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor))
    if disconnect:
        conn.invalidate(exc)
    return sa_exc.DBAPIError.instance(
        sql,
        args,
        exc,
        dialect.loaded_dbapi.Error,
        connection_invalidated=disconnect,
        dialect=dialect,
    )


class Loader(Generic[T]):
    """Instances of a mapped class read with one :class:`Direct` SELECT of all its columns, as
    the session's own query would give them: the instance already in the session's identity
    map for that row, else a new one added to the session as loaded (clean, no more SQL).
    Measured on PostgreSQL: 150-170 µs a row against 260-280 µs through ``session.scalar``."""

    def __init__(self, cls: type[T], where: ColumnElement[bool]) -> None:
        mapper = inspect(cls)
        props = list(mapper.column_attrs)
        self.cls = cls
        self.keys = tuple(prop.key for prop in props)
        columns = [prop.columns[0] for prop in props]
        self.pk = tuple(columns.index(column) for column in mapper.primary_key)
        self.select = Direct(select(*columns).where(where))
        self._new = mapper.class_manager.new_instance

    def one_or_none(self, session: Session, params: Mapping[str, Any]) -> T | None:
        if session.autoflush and (session.new or session.dirty or session.deleted):
            session.flush()  # as the session's query would: it reads what the session changed
        row = self.select.first(session, params)
        if row is None:
            return None
        key = identity_key(self.cls, tuple(row[i] for i in self.pk))
        existing = session.identity_map.get(key)
        if existing is not None:
            return existing
        obj = self._new()
        for name, value in zip(self.keys, row, strict=True):
            set_committed_value(obj, name, value)
        make_transient_to_detached(obj)
        session.add(obj)
        return obj
