"""Version-2 fields of a results row (memory, breakdown, timings, curve, environment,
worker, weights) and marking a trial failed from outside it, on every backend."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from sqlalchemy import Engine

from storage import TrialRecord, load_results, mark_trial_failed, record_trial

MakeRecord = Callable[..., TrialRecord]
RUN = {
    "peak_memory_mb": 48.5,
    "param_breakdown": {"petl": {"trainable": 12_288, "total": 12_288}, "language_model": {"trainable": 0, "total": 90_000}},
    "timings": {"train_and_evaluate_s": 31.5, "trial_s": 33.0, "setup_s": 1.5},
    "learning_curve": {"loss": {"20": 3.25, "40": 2.5}, "validation vqa": {"40": 41.0}},
    "environment": {"packages": {"torch": "2.14.1", "optuna": "5.0.0"}, "device": "cpu", "git_revision": "abc123"},
    "worker": "node-7:4242",
    "weights_path": "/data/runs/study-a/trial-3",
}


def test_run_fields_round_trip(engine: Engine, make_record: MakeRecord) -> None:
    record_trial(engine, make_record(3, **RUN))
    row = load_results(engine, "study-a").iloc[0]
    for name, value in RUN.items():
        assert row[name] == value, name


def test_run_fields_are_optional(engine: Engine, make_record: MakeRecord) -> None:
    record_trial(engine, make_record(0))
    row = load_results(engine).iloc[0]
    assert pd.isna(row["peak_memory_mb"])
    assert all(row[name] is None for name in RUN if name != "peak_memory_mb")


def test_run_field_problems_are_all_reported(make_record: MakeRecord) -> None:
    with pytest.raises(ValueError) as info:
        make_record(
            0,
            peak_memory_mb=-1.0,
            timings={"train_and_evaluate_s": float("nan")},
            worker="h" * 301,
            learning_curve=[1.0, 2.0],
            environment={"when": object()},
        )
    message = str(info.value)
    for fragment in (
        "peak_memory_mb must be a finite number >= 0 or None, but got -1.0",
        "timings values must be finite seconds >= 0",
        "worker must be 1-300 characters",
        "learning_curve must be a dict or None, but got list",
        "environment must be JSON-serialisable",
    ):
        assert fragment in message


@pytest.mark.parametrize("status", ["running", "complete"])
def test_mark_trial_failed_keeps_what_was_recorded(engine: Engine, make_record: MakeRecord, status: str) -> None:
    finished = None if status == "running" else make_record(0).finished_at
    record_trial(engine, make_record(0, status=status, finished_at=finished, worker="node-1:10"))
    record_trial(engine, make_record(1))
    assert mark_trial_failed(engine, "study-a", 0, "its worker stopped sending heartbeats; queued again as trial 2")

    rows = load_results(engine, "study-a")
    dead, other = rows.iloc[0], rows.iloc[1]
    assert dead["status"] == "failed" and dead["error"].startswith("its worker stopped sending heartbeats")
    assert dead["worker"] == "node-1:10" and dead["config"] == make_record(0).config
    assert dead["finished_at"].tzinfo is not None
    assert other["status"] == "complete" and other["error"] is None  # only the named trial changes


def test_mark_trial_failed_without_a_row_or_a_reason(engine: Engine) -> None:
    assert mark_trial_failed(engine, "study-a", 9, "its worker died before recording anything") is False
    assert load_results(engine).empty
    with pytest.raises(ValueError, match="needs a reason"):
        mark_trial_failed(engine, "study-a", 9, "")
