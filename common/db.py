"""One SQLAlchemy engine per process, created lazily so that forked workers build their own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from common.settings import get_settings

_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None
_autocommit_factory: sessionmaker[Session] | None = None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the API read while a worker writes; the busy timeout makes writers queue
    # instead of failing with "database is locked" when several processes share the file.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Set by the workers (see `for_workers`): their engines skip the pre-ping.
_workers = False


def for_workers() -> None:
    """Build this process's engine the way a worker wants it: without a pre-ping round trip on
    every checkout. A connection a database restart killed fails its first statement instead;
    the pool then drops all its connections and the task is retried, as for any outage."""
    global _workers
    _workers = True
    reset_engine()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # Pre-ping replaces connections a database restart killed; the connect timeout keeps a
    # request or a sweep from hanging on an unreachable server. The pool keeps as many
    # connections as the API has threads (40): a smaller pool under load closes and reopens
    # connections, and a new PostgreSQL backend costs more CPU than the request it serves.
    # Connections open lazily, so a worker process still holds only the one it uses.
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    return create_engine(
        url, pool_pre_ping=not _workers, pool_size=40, max_overflow=10, connect_args=connect_args
    )


def get_engine() -> Engine:
    global _engine, _session_factory, _autocommit_factory
    if _engine is None:
        _engine = make_engine(get_settings().sqlalchemy_url)
        _session_factory = sessionmaker(_engine, expire_on_commit=False)
        # SQLite keeps its transactions: the statements run there come in groups.
        single = _engine.dialect.name == "postgresql"
        bind = _engine.execution_options(isolation_level="AUTOCOMMIT") if single else _engine
        _autocommit_factory = sessionmaker(bind, expire_on_commit=False)
    return _engine


def session_factory() -> sessionmaker[Session]:
    get_engine()
    assert _session_factory is not None
    return _session_factory


def reset_engine() -> None:
    """Forget the engine; a forked child calls this so it never reuses its parent's connections."""
    global _engine, _session_factory, _autocommit_factory
    if _engine is not None:
        _engine.dispose(close=False)
    _engine = None
    _session_factory = _autocommit_factory = None


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def autocommit_scope() -> Iterator[Session]:
    """A session for work that is a single statement on PostgreSQL: its connection runs in
    autocommit, so the statement is its own transaction, without a BEGIN and a COMMIT round
    trip. On SQLite, where such work takes several statements, this is `session_scope`."""
    get_engine()
    assert _autocommit_factory is not None
    session = _autocommit_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
