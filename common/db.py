"""One SQLAlchemy engine per process, created lazily so that forked workers build their own."""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from common.settings import Settings, get_settings

_engine: Engine | None = None
_session_factory: sessionmaker[Session] | None = None
# libpq `options` of this process's connections (see use_statement_limits); None: the server's.
_options: str | None = None


def _drop_if_closed(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """On checkout: an idle connection whose socket has something to read was closed by the
    server (a restart, an idle timeout). The pool drops it and takes another. This costs a
    poll instead of the pre-ping's round trip; a connection that died silently still fails its
    first statement, and the pool then drops all its connections."""
    try:
        fd = dbapi_conn.fileno()
    except Exception as exc:  # closed, or broken: either way not usable
        raise DisconnectionError(f"connection unusable: {exc!r}") from exc
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    if poller.poll(0):
        raise DisconnectionError("the server closed the connection")


def postgres_connect_args(settings: Settings, options: str | None = None) -> dict[str, Any]:
    """libpq parameters that bound how long a connection waits on a server that went silent.

    - connect_timeout: opening a connection (TCP and the start-up exchange) gives up after
      DATABASE_CONNECT_TIMEOUT_S, so a request or a sweep never hangs on an unreachable server;
    - keepalives and tcp_user_timeout (DATABASE_TCP_TIMEOUT_S): the kernel breaks an idle
      connection whose peer stopped answering probes, or one whose sent data stays
      unacknowledged, within about that long (libpq's "Parameter Key Words");
    - idle_in_transaction_session_timeout (DATABASE_IDLE_IN_TRANSACTION_S): the server ends a
      session whose client was cut off inside a transaction, so its row locks do not hold up
      the workers that take over its steps;
    plus `options`, more libpq options (`-c name=value` settings).
    """
    tcp_s = settings.database_tcp_timeout_s
    idle_ms = round(settings.database_idle_in_transaction_s * 1000)
    return {
        "connect_timeout": settings.database_connect_timeout_s,
        "keepalives": 1,
        "keepalives_idle": max(1, tcp_s // 3),
        "keepalives_interval": max(1, tcp_s // 9),
        "keepalives_count": 3,
        "tcp_user_timeout": tcp_s * 1000,
        "options": " ".join(
            filter(None, [f"-c idle_in_transaction_session_timeout={idle_ms}", options])
        ),
    }


def make_engine(url: str, options: str | None = None) -> Engine:
    """An engine with our pool and connection checks; `options` is libpq's (PostgreSQL's
    `-c name=value` settings for every connection, sent with the connection request)."""
    # The pool keeps as many connections as the API has threads (40): a smaller pool under
    # load closes and reopens connections, and a new PostgreSQL backend costs more CPU than the
    # request it serves. Connections open lazily, so a worker process holds only the one it
    # uses.
    connect_args = postgres_connect_args(get_settings(), options)
    engine = create_engine(url, pool_size=40, max_overflow=10, connect_args=connect_args)
    event.listen(engine, "checkout", _drop_if_closed)
    return engine


def get_engine() -> Engine:
    global _engine, _session_factory
    if _engine is None:
        _engine = make_engine(get_settings().sqlalchemy_url, _options)
        _session_factory = sessionmaker(_engine, expire_on_commit=False)
    return _engine


def session_factory() -> sessionmaker[Session]:
    get_engine()
    assert _session_factory is not None
    return _session_factory


def use_statement_limits(statement_timeout_s: float, lock_timeout_s: float) -> None:
    """Every connection this process opens from now on has PostgreSQL cancel a statement that
    runs longer than `statement_timeout_s`, or waits longer than `lock_timeout_s` for a lock
    (SQLSTATE 57014, 55P03; 0: no limit), so that a stuck lock fails the one statement that
    waits for it. The API calls this at start; the workers keep the server's defaults."""
    global _options
    _options = (
        f"-c statement_timeout={round(statement_timeout_s * 1000)} "
        f"-c lock_timeout={round(lock_timeout_s * 1000)}"
    )
    reset_engine()


def reset_engine() -> None:
    """Forget the engine; a forked child calls this so it never reuses its parent's connections."""
    global _engine, _session_factory
    if _engine is not None:
        _engine.dispose(close=False)
    _engine = None
    _session_factory = None


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


def statements_commit_themselves(session: Session) -> None:
    """Before the session's first statement: each statement the session runs is its own
    transaction (autocommit), for work done in one statement."""
    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


@contextmanager
def autocommit_scope() -> Iterator[Session]:
    """A `session_scope` for work that is a single statement: the statement is its own
    transaction, without a BEGIN and a COMMIT round trip."""
    with session_scope() as session:
        statements_commit_themselves(session)
        yield session
