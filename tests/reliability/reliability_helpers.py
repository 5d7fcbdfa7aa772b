"""Shared by the reliability tests: PostgreSQL schemas whose connections a test can cut, and CLIs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from postgres_schemas import POSTGRES_ENV, fresh_schema
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def postgres_schema(application_name: str) -> Iterator[str]:
    """A URL on a fresh schema (dropped afterwards) whose connections carry ``application_name``.

    The name lets :func:`drop_connections` cut this test's connections and nobody else's on a
    shared server.
    """
    with fresh_schema(
        "vlpetl_rel", "the PostgreSQL reliability tests", application_name,
        before_drop=lambda: drop_connections(application_name),  # a worker killed mid-transaction may hold locks
    ) as url:  # fmt: skip
        yield url


def drop_connections(application_name: str, waiting_on_lock: bool = False) -> int:
    """Terminate the server side of every connection named ``application_name``, as a failover would.

    Args:
        waiting_on_lock: only the connections blocked on a lock (in the middle of a transaction).

    Returns:
        How many connections were cut.
    """
    admin = create_engine(os.environ[POSTGRES_ENV])
    query = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name AND pid <> pg_backend_pid()" + (
        " AND wait_event_type = 'Lock'" if waiting_on_lock else ""
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
