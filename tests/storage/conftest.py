"""Backends for the shared storage suite.

Every test that takes ``storage_url`` runs once on SQLite and once on
PostgreSQL. The PostgreSQL run needs a server: set ``VLPETL_TEST_POSTGRES_URL``
(e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/vlpetl_test``); each
test then gets its own schema, dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from postgres_schemas import fresh_schema
from sqlalchemy import Engine

from storage import TrialRecord, default_storage_url, init_schema, make_engine

FINISHED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL naming an empty database, for each backend the suite covers."""
    if request.param == "sqlite":
        yield default_storage_url(tmp_path / "data")
        return
    with fresh_schema("vlpetl_test", "the storage suite on PostgreSQL") as url:
        yield url


@pytest.fixture
def engine(storage_url: str) -> Iterator[Engine]:
    """A read-write engine on ``storage_url`` with our schema created."""
    eng = make_engine(storage_url)
    init_schema(eng)
    try:
        yield eng
    finally:
        eng.dispose()


def _make_record(
    trial_number: int = 0,
    *,
    study_name: str = "study-a",
    status: str = "complete",
    method: str = "adapter",
    score: float | None = None,
    trainable_params: int = 4_180,
    total_params: int = 100_000,
    config: dict[str, Any] | None = None,
    finished_at: datetime | None = FINISHED,
    **extra: Any,
) -> TrialRecord:
    """A valid record with small, readable defaults (complete trials score 70)."""
    if score is None and status == "complete":
        score = 70.0
    return TrialRecord(
        study_name=study_name,
        trial_number=trial_number,
        status=status,
        method=method,
        config=config if config is not None else {"method": method, f"{method}.reduction": 8},
        trainable_params=trainable_params,
        total_params=total_params,
        score=score,
        finished_at=finished_at,
        **extra,
    )


@pytest.fixture
def make_record() -> Callable[..., TrialRecord]:
    """Factory for valid records: ``make_record(trial_number, **overrides)``."""
    return _make_record
