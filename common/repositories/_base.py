"""What every repository shares: the session it wraps, the upsert, and psycopg 3's binary reads."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, cast

from psycopg.rows import namedtuple_row
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import TextClause

from common.models import Job, JobImage, JobStep

# The hot paths use statements on the tables, built once (their compiled form is cached), so no
# ORM objects are loaded or kept in sync.
jobs_table = cast(Table, Job.__table__)
steps_table = cast(Table, JobStep.__table__)
images_table = cast(Table, JobImage.__table__)


class Repository:
    """Wraps one session; callers commit."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _upsert(
        self, model: Any, values: dict[str, Any], key: Sequence[str], update: Sequence[str]
    ) -> None:
        """Insert a row, or update it in place when one with the same `key` exists."""
        # The statement's columns are the parameters' names.
        stmt = _upsert_statement(model.__table__, tuple(key), tuple(update))
        self.session.execute(stmt, values)


@functools.cache
def _upsert_statement(table: Table, key: tuple[str, ...], update: tuple[str, ...]) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE, built once per table."""
    stmt = postgresql.insert(table)
    return stmt.on_conflict_do_update(
        index_elements=list(key), set_={name: stmt.excluded[name] for name in update}
    )


_PSYCOPG_DIALECT = postgresql_psycopg.dialect()  # type: ignore[no-untyped-call]


@functools.cache
def psycopg_sql(statement: TextClause) -> str:
    """A text statement as psycopg 3 takes it from its own cursor (named `%(...)s` parameters)."""
    return str(statement.compile(dialect=_PSYCOPG_DIALECT))


def binary_row(session: Session, sql: str, params: Any) -> Any:
    """One row (a named tuple; None if there is none) of a statement run on the session's
    psycopg 3 connection with binary results, so bytea comes as stored rather than as hex text
    that the server encodes and the client decodes."""
    dbapi = session.connection().connection.driver_connection
    assert dbapi is not None
    with dbapi.cursor(binary=True, row_factory=namedtuple_row) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()
