"""Shared by the reliability tests: PostgreSQL schemas whose connections a test can cut, and CLIs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ENV = "VLPETL_TEST_POSTGRES_URL"
REPO = Path(__file__).resolve().parents[2]


@contextmanager
def postgres_schema(application_name: str) -> Iterator[str]:
    """A URL on a fresh schema (dropped afterwards) whose connections carry ``application_name``.

    The name lets :func:`drop_connections` cut this test's connections and nobody else's on a
    shared server.
    """
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"set {POSTGRES_ENV} to run the PostgreSQL reliability tests")
    schema = f"vlpetl_rel_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    query = {"options": f"-csearch_path={schema}", "application_name": application_name}
    try:
        yield make_url(base).update_query_dict(query).render_as_string(hide_password=False)
    finally:
        drop_connections(application_name)  # a worker killed mid-transaction may hold locks
        with admin.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def drop_connections(application_name: str, waiting_on_lock: bool = False) -> int:
    """Terminate the server side of every connection named ``application_name``, as a failover would.

    Args:
        waiting_on_lock: only the connections blocked on a lock (in the middle of a transaction).

    Returns:
        How many connections were cut.
    """
    admin = create_engine(os.environ[POSTGRES_ENV])
    query = (
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = :name AND pid <> pg_backend_pid()"
        + (" AND wait_event_type = 'Lock'" if waiting_on_lock else "")
    )
    try:
        with admin.begin() as conn:
            return int(conn.execute(text(query), {"name": application_name}).scalar_one())
    finally:
        admin.dispose()


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m ARGS`` from the repository, with its output captured."""
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd or REPO,
        env={**os.environ, **(env or {})}, timeout=timeout,
    )  # fmt: skip
