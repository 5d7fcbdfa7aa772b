"""A small seeded study database for the dashboard tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from storage import (
    TrialRecord,
    default_storage_url,
    init_schema,
    load_results,
    make_engine,
    make_readonly_engine,
    record_trial,
)

STUDY = "clip-bart-demo"
TOTAL = 100_000
FINISHED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def _trial(
    number: int,
    status: str,
    method: str,
    pct: float,
    score: float | None,
    finished_at: datetime | None = FINISHED,
    **extra: object,
) -> TrialRecord:
    config = {
        "backbone": "tiny-bart",
        "tasks": ["vqa", "gqa"],
        "method": method,
        "method_params": {"rank": 8} if method == "lora" else {"reduction_factor": 8},
        "sharing": "single",
        "training": {"learning_rate": 1e-3, "steps": 10},
    }
    return TrialRecord(
        study_name=STUDY, trial_number=number, status=status, method=method,
        config=config, trainable_params=round(pct / 100 * TOTAL), total_params=TOTAL,
        score=score, finished_at=finished_at, **extra,  # type: ignore[arg-type]
    )  # fmt: skip


# Four complete trials, of which #0, #2 and #5 form the front.
TRIALS = [
    _trial(0, "complete", "adapter", 4.18, 77.4, task_scores={"vqa": 65.9, "gqa": 54.5}),
    _trial(1, "complete", "lora", 5.93, 76.5, task_scores={"vqa": 65.2, "gqa": 53.6}),
    _trial(2, "complete", "lora", 1.14, 47.1),
    _trial(3, "infeasible", "adapter", 40.0, None, error="over the 10% budget"),
    _trial(4, "failed", "lora", 6.0, None, error="CUDA out of memory"),
    _trial(5, "complete", "adapter", 100.0, 77.6),
    _trial(6, "running", "adapter", 2.0, None, finished_at=None),
]
N_COMPLETE = 4
FRONT = (2, 0, 5)


def _seed(url: str, records: list[TrialRecord]) -> None:
    engine = make_engine(url)
    try:
        init_schema(engine)
        for record in records:
            record_trial(engine, record)
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Seeded:
    """The seeded database and what the tests expect of it."""

    url: str
    study: str = STUDY
    n_complete: int = N_COMPLETE
    front: tuple[int, ...] = FRONT


@pytest.fixture
def seeded(tmp_path: Path) -> Seeded:
    """A SQLite database holding the :data:`TRIALS` study."""
    url = default_storage_url(tmp_path)
    _seed(url, TRIALS)
    return Seeded(url)


@pytest.fixture
def results(seeded: Seeded) -> Iterator[pd.DataFrame]:
    """The seeded study as ``load_results`` returns it."""
    engine = make_readonly_engine(seeded.url)
    try:
        yield load_results(engine, seeded.study)
    finally:
        engine.dispose()


@pytest.fixture
def empty_url(tmp_path: Path) -> str:
    """A SQLite URL of a database with our schema but no trials."""
    url = default_storage_url(tmp_path)
    _seed(url, [])
    return url
