"""A fresh PostgreSQL schema per test, so tests share one server without seeing each other's tables.

The server comes from ``VLPETL_TEST_POSTGRES_URL`` (``.ci/run`` sets it); without it the test
is skipped. The URL handed to the test sets ``search_path``, so our tables and Optuna's both
land in the schema, which is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_ENV = "VLPETL_TEST_POSTGRES_URL"


@contextmanager
def fresh_schema(
    prefix: str, purpose: str, application_name: str | None = None, before_drop: Callable[[], object] | None = None
) -> Iterator[str]:
    """Yield a URL on a new schema named ``<prefix>_<random>``; skip the test when no server is set.

    Args:
        prefix: Starts the schema's name, to tell whose it is on a shared server.
        purpose: What the skip message says the server is needed for.
        application_name: Given to the test's connections, so they can be found and cut.
        before_drop: Run before the schema is dropped (to end connections that hold its locks).
    """
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"set {POSTGRES_ENV} to run {purpose}")
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    query = {"options": f"-csearch_path={schema}"}
    if application_name is not None:
        query["application_name"] = application_name
    try:
        yield make_url(base).update_query_dict(query).render_as_string(hide_password=False)
    finally:
        if before_drop is not None:
            before_drop()
        with admin.begin() as conn:
            # A leaked open transaction would otherwise hang the drop forever.
            conn.execute(text("SET LOCAL lock_timeout = '10s'"))
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
