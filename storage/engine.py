"""Engines and sessions for the study database.

Writers (search workers) use :func:`make_engine` and call :func:`init_schema`
once; the dashboard uses :func:`make_readonly_engine`, which the database
itself stops from writing. :func:`check_reachable` names why a server cannot
be used before anything starts, and :func:`retry_on_disconnect` carries an
idempotent operation over a dropped connection (a restart, a failover).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from storage.migrations import SchemaVersionError, upgrade
from storage.schema import SCHEMA_VERSION, Base, SchemaMeta
from storage.urls import StorageURLError, is_sqlite, redact, sqlite_path, validate_storage_url

__all__ = [
    "RETRY_DELAYS_S",
    "SQLITE_TIMEOUT_S",
    "SchemaVersionError",
    "StorageUnreachableError",
    "check_reachable",
    "write_refusal",
    "init_schema",
    "is_disconnect",
    "make_engine",
    "make_readonly_engine",
    "retry_on_disconnect",
    "session_scope",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# Seconds a SQLite connection waits for another worker's write lock.
SQLITE_TIMEOUT_S = 30
# Concurrent workers may race to create the tables; one retry settles it.
_INIT_ATTEMPTS = 3
# Waits before each new attempt of an operation whose connection dropped: about 15 s in all,
# enough for a PostgreSQL restart or failover, short enough that a dead server fails a trial
# instead of hanging the worker.
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)


def _enable_wal(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dashboard read while workers write, instead of blocking.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def make_engine(url: str) -> Engine:
    """Create a read-write engine for ``url``.

    For SQLite the database's folder is created, connections wait up to
    :data:`SQLITE_TIMEOUT_S` seconds for locks, and WAL journalling is on.

    Args:
        url: A SQLite or PostgreSQL URL.

    Returns:
        A SQLAlchemy engine.

    Raises:
        StorageURLError: If ``url`` is not a supported storage URL.
    """
    url = validate_storage_url(url)
    if not is_sqlite(url):
        return create_engine(url, pool_pre_ping=True)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_TIMEOUT_S})
    event.listen(engine, "connect", _enable_wal)
    return engine


def make_readonly_engine(url: str) -> Engine:
    """Create an engine that cannot write, for the dashboard.

    SQLite files are opened with ``mode=ro``; PostgreSQL sessions get
    ``default_transaction_read_only=on``, so writes fail in the database.

    Args:
        url: A SQLite (file) or PostgreSQL URL.

    Returns:
        A SQLAlchemy engine whose writes raise ``sqlalchemy.exc.DBAPIError``.

    Raises:
        StorageURLError: If ``url`` is not supported or is an in-memory SQLite URL.
        FileNotFoundError: If the SQLite database file does not exist.
    """
    url = validate_storage_url(url)
    if not is_sqlite(url):
        engine = create_engine(url, pool_pre_ping=True)
        event.listen(engine, "connect", _set_read_only)
        return engine
    path = sqlite_path(url)
    if path is None:
        raise StorageURLError(f"Read-only storage needs a SQLite file, but got {redact(url)!r}; write 'sqlite:///path/to/studies.db'.")
    if not path.is_file():
        raise FileNotFoundError(f"No study database at {path}; run a search first, or pass the right --storage URL.")
    uri = f"file:{quote(path.as_posix())}?mode=ro"

    def connect() -> sqlite3.Connection:
        # The pool may hand a connection to another thread (Streamlit reruns).
        return sqlite3.connect(uri, uri=True, timeout=SQLITE_TIMEOUT_S, check_same_thread=False)

    # The URL still picks the dialect and pool; only connecting is replaced.
    return create_engine(url, creator=connect)


def _set_read_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET default_transaction_read_only = on")
    finally:
        cursor.close()
    # The driver opened a transaction for the SET; a later pool rollback
    # would undo the setting, so make it stick now.
    dbapi_connection.commit()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on error.

    Args:
        engine: The engine to bind the session to.

    Yields:
        A session; its objects stay readable after the commit.

    Raises:
        Exception: Whatever the block raised, after rolling back.
    """
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def init_schema(engine: Engine) -> None:
    """Create our tables if missing, record the schema version, upgrade an older one.

    Idempotent, safe to call from every worker, and touches only our own
    tables, so Optuna's tables in the same database are left alone. A
    database of an older version is upgraded in place by
    ``storage.migrations.upgrade`` (one transaction; rows are kept).

    Args:
        engine: A read-write engine.

    Raises:
        SchemaVersionError: If the database records a newer schema version.
    """
    for attempt in range(_INIT_ATTEMPTS):
        try:
            version = _create_and_stamp(engine)
            break
        except (IntegrityError, OperationalError, ProgrammingError):
            # Another worker created a table or the meta row between our
            # check and write; the next attempt sees its work.
            if attempt == _INIT_ATTEMPTS - 1:
                raise
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"The database at {redact(engine.url)!r} has "
            f"schema version {version}, but this code needs {SCHEMA_VERSION} and cannot "
            f"downgrade; use a release that knows version {version}, or a new database."
        )
    if version < SCHEMA_VERSION:
        upgrade(engine)


def _create_and_stamp(engine: Engine) -> int:
    """Create missing tables, stamp a new database, return the stored version."""
    Base.metadata.create_all(engine, checkfirst=True)
    with session_scope(engine) as session:
        meta = session.scalar(select(SchemaMeta).where(SchemaMeta.id == 1))
        if meta is None:
            session.add(SchemaMeta(id=1, version=SCHEMA_VERSION))
            return SCHEMA_VERSION
        return meta.version


class StorageUnreachableError(ConnectionError):
    """The study database cannot be reached or refuses the credentials."""


def check_reachable(url: str) -> None:
    """Open one connection to ``url`` and run ``SELECT 1``; nothing is created or written.

    For a SQLite URL this checks nothing (the file is created on first use, and the
    read-only engine reports a missing one itself).

    Args:
        url: A validated storage URL.

    Raises:
        StorageUnreachableError: The server is down or unknown, or it refuses the user, the
            password or the database; the message shows the URL with its password hidden.
    """
    if is_sqlite(url):
        return
    engine = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 10})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as error:
        raise StorageUnreachableError(
            f"cannot connect to {redact(url)!r}: {_cause(error)}; check that the server runs and the host, port, "
            "user, password (in the URL or $PGPASSWORD) and database name are right"
        ) from None
    finally:
        engine.dispose()


# What a database says when it cannot store anything more: (words of its message, the cause in
# plain words). SQLite's and PostgreSQL's own texts ("database or disk is full", "could not extend
# file ... No space left on device", "attempt to write a readonly database", "cannot execute ...
# in a read-only transaction"); a retry cannot get past any of them.
_WRITE_REFUSALS = (
    ("database or disk is full", "its disk is full"),
    ("no space left on device", "its disk is full"),
    ("could not extend file", "its disk is full"),
    ("disk i/o error", "its disk failed a write (full, or failing)"),
    ("readonly database", "it is read-only"),
    ("read-only transaction", "it is read-only"),
)


def write_refusal(error: BaseException | None) -> str | None:
    """The cause, in plain words, when ``error`` (or what caused it) is the database refusing to
    store anything: a full disk or a read-only database. None for any other error."""
    seen = 0
    while error is not None and seen < 10:  # the chain: Optuna wraps SQLAlchemy, which wraps the driver
        text_of = str(getattr(error, "orig", None) or error).lower()
        for words, cause in _WRITE_REFUSALS:
            if words in text_of:
                return cause
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


def is_disconnect(error: BaseException) -> bool:
    """Whether ``error`` is a lost or refused connection, which a new attempt may get past.

    A full disk or a read-only database is not (:func:`write_refusal`): retrying it only delays
    the message that says so.
    """
    if write_refusal(error) is not None:
        return False
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    # A server restarting, a connection killed mid-query, a SQLite lock held too long.
    return isinstance(error, OperationalError)


def retry_on_disconnect(operation: Callable[[], T], what: str) -> T:
    """Run ``operation``; when its connection drops, wait and run it again.

    The pool hands a fresh connection to each attempt (the dead one was invalidated, and
    ``pool_pre_ping`` discards others the server closed). Only for idempotent operations:
    an attempt whose commit reached the server before the connection dropped is repeated.

    Args:
        operation: The database work, run in its own transaction.
        what: What it does, for the log ("record trial 3").

    Returns:
        What ``operation`` returned.

    Raises:
        sqlalchemy.exc.DBAPIError: Any other error at once; a dropped connection once the
            :data:`RETRY_DELAYS_S` are used up.
    """
    for delay in (*RETRY_DELAYS_S, None):
        try:
            return operation()
        except DBAPIError as error:
            if delay is None or not is_disconnect(error):
                raise
            log.warning("%s: the database connection failed (%s); trying again in %.1f s", what, _cause(error), delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _cause(error: DBAPIError) -> str:
    # The driver's first line says what happened (refused, unknown host, authentication failed,
    # terminated) without the password; the rest is SQL and SQLAlchemy's boilerplate.
    lines = str(error.orig).strip().splitlines() if error.orig is not None else []
    return lines[0] if lines else type(error).__name__
