"""Engines and sessions for the study database.

Writers (search workers) use :func:`make_engine` and call :func:`init_schema`
once; the dashboard uses :func:`make_readonly_engine`, which the database
itself stops from writing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from storage.migrations import SchemaVersionError, upgrade
from storage.schema import SCHEMA_VERSION, Base, SchemaMeta
from storage.urls import StorageURLError, is_sqlite, redact, sqlite_path, validate_storage_url

__all__ = [
    "SQLITE_TIMEOUT_S",
    "SchemaVersionError",
    "init_schema",
    "make_engine",
    "make_readonly_engine",
    "session_scope",
]

# Seconds a SQLite connection waits for another worker's write lock.
SQLITE_TIMEOUT_S = 30
# Concurrent workers may race to create the tables; one retry settles it.
_INIT_ATTEMPTS = 3


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
        raise StorageURLError(
            f"Read-only storage needs a SQLite file, but got {redact(url)!r}; "
            f"write 'sqlite:///path/to/studies.db'."
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"No study database at {path}; run a search first, or pass the right --storage URL."
        )
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
            f"The database at {engine.url.render_as_string(hide_password=True)!r} has "
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
