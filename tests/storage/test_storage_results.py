"""Writing and reading trial results, on every backend."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from storage import (
    RESULT_COLUMNS,
    TrialRecord,
    list_studies,
    load_results,
    make_engine,
    record_trial,
)
from storage.engine import session_scope
from storage.schema import TrialResult

MakeRecord = Callable[..., TrialRecord]


def test_round_trip_keeps_json_and_timestamps(engine: Engine, make_record: MakeRecord) -> None:
    config = {"method": "lora", "lora": {"rank": 128, "alpha": 32.0}, "tasks": ["vqa", "gqa"]}
    record = make_record(
        3,
        method="lora",
        config=config,
        score=65.5,
        task_scores={"vqa": 65.2, "gqa": 53.6},
        trainable_params=5_930,
        train_seconds=12.5,
    )
    record_trial(engine, record)

    frame = load_results(engine, "study-a")
    assert list(frame.columns) == list(RESULT_COLUMNS)
    row = frame.iloc[0]
    assert row["config"] == config
    assert row["task_scores"] == {"vqa": 65.2, "gqa": 53.6}
    assert row["trainable_pct"] == pytest.approx(5.93)
    assert row["train_seconds"] == 12.5
    assert row["finished_at"] == pd.Timestamp(record.finished_at)
    assert row["created_at"].tzinfo is not None
    assert row["error"] is None


def test_upsert_updates_one_row(engine: Engine, make_record: MakeRecord) -> None:
    record_trial(engine, make_record(0, status="running", finished_at=None))
    created = load_results(engine)["created_at"].iloc[0]
    record_trial(engine, make_record(0, status="complete", score=71.0))

    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(TrialResult)) == 1
    row = load_results(engine).iloc[0]
    assert (row["status"], row["score"]) == ("complete", 71.0)
    assert row["created_at"] == created  # an update keeps the first write's time


def test_load_filters_and_sorts(engine: Engine, make_record: MakeRecord) -> None:
    for number in (2, 0, 1):
        record_trial(engine, make_record(number))
    record_trial(engine, make_record(0, study_name="study-b", status="failed", error="OOM"))

    assert load_results(engine, "study-a")["trial_number"].tolist() == [0, 1, 2]
    both = load_results(engine)
    assert both[["study_name", "trial_number"]].values.tolist() == [
        ["study-a", 0],
        ["study-a", 1],
        ["study-a", 2],
        ["study-b", 0],
    ]
    failed = both.iloc[3]
    assert failed["error"] == "OOM"
    assert pd.isna(failed["score"]) and failed["task_scores"] is None


def test_empty_results_have_the_same_columns(engine: Engine, make_record: MakeRecord) -> None:
    empty = load_results(engine, "nobody")
    assert empty.empty and list(empty.columns) == list(RESULT_COLUMNS)
    record_trial(engine, make_record(0))
    assert load_results(engine).dtypes.equals(empty.dtypes)


def test_list_studies(engine: Engine, make_record: MakeRecord) -> None:
    assert list_studies(engine) == []
    for name in ("zeta", "alpha", "zeta"):
        record_trial(engine, make_record(len(name), study_name=name))
    assert list_studies(engine) == ["alpha", "zeta"]


def test_reading_before_init_schema_is_empty(storage_url: str) -> None:
    bare = make_engine(storage_url)
    try:
        assert list_studies(bare) == []
        assert load_results(bare).empty
    finally:
        bare.dispose()


def test_record_validation_reports_every_problem() -> None:
    with pytest.raises(ValueError) as info:
        TrialRecord(
            study_name="",
            trial_number=-1,
            status="done",
            method="lora",
            config={"bad": object()},
            trainable_params=5,
            total_params=0,
            finished_at=datetime(2024, 1, 1),
        )
    message = str(info.value)
    for fragment in (
        "study_name must be non-empty",
        "trial_number must be >= 0, but got -1",
        "status must be one of running, complete",
        "total_params must be > 0",
        "trainable_params <= total_params",
        "finished_at must be timezone-aware",
        "config must be JSON-serialisable",
    ):
        assert fragment in message


def test_complete_record_needs_a_score() -> None:
    with pytest.raises(ValueError, match="'complete' trial needs a score"):
        TrialRecord("s", 0, "complete", "lora", {}, 1, 10)


def test_trainable_pct_is_derived() -> None:
    record = TrialRecord("s", 0, "infeasible", "lora", {}, 1, 8, error="over budget", finished_at=datetime.now(UTC))
    assert record.trainable_pct == 12.5
