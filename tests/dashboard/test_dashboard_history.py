"""Hypervolume over trials and against compute, and trials over time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from dashboard.history import hypervolume_by_compute, hypervolume_history, trials_over_time
from core.pareto import hypervolume_2d


def _random_study(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    status = rng.choice(["complete", "complete", "complete", "failed", "infeasible", "running"], size=n)
    score = np.where(status == "complete", rng.uniform(-5, 80, n).round(1), np.nan)
    return pd.DataFrame(
        {
            "trial_number": rng.permutation(n),
            "status": status,
            "score": score,
            "trainable_pct": rng.choice([0.5, 1.0, 2.0, 5.0, 50.0, 100.0, 120.0], size=n),
            "finished_at": [start + timedelta(minutes=int(m)) if s != "running" else pd.NaT
                            for m, s in zip(rng.integers(0, 600, n), status, strict=True)],
        }
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_hypervolume_history_equals_the_hypervolume_of_each_prefix(seed: int) -> None:
    df = _random_study(40, seed)
    history = hypervolume_history(df)
    assert history["trial_number"].tolist() == list(range(40))
    for n, value in zip(history["trial_number"], history["hypervolume"], strict=True):
        assert value == pytest.approx(hypervolume_2d(df[df["trial_number"] <= n]), abs=1e-9)
    assert history["hypervolume"].is_monotonic_increasing


def test_hypervolume_history_of_nothing() -> None:
    empty = _random_study(3, 0).iloc[:0]
    assert hypervolume_history(empty).empty


def test_trials_over_time_counts_each_status_cumulatively() -> None:
    df = _random_study(30, 1)
    timeline = trials_over_time(df)
    assert timeline["finished_at"].is_monotonic_increasing
    assert len(timeline) == int(df["finished_at"].notna().sum())
    finals = timeline.groupby("status")["count"].max().to_dict()
    assert finals == df[df["finished_at"].notna()]["status"].value_counts().to_dict()
    assert "running" not in finals


def test_hypervolume_by_compute_adds_each_finished_trials_steps_in_finishing_order() -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    df = pd.DataFrame({
        "trial_number": [0, 1, 2, 3, 4],
        "status": ["complete", "pruned", "complete", "failed", "running"],
        "score": [40.0, np.nan, 50.0, np.nan, np.nan],
        "trainable_pct": [2.0, 1.0, 1.0, 3.0, 4.0],
        "steps_run": [None, 25, 225, None, None],  # trial 0 is from before schema version 4
        "config": [{"training": {"steps": 225}}, {}, {}, {}, {}],
        "created_at": [start] * 5,
        "finished_at": [start + timedelta(seconds=s) for s in (30, 10, 60, 40)] + [pd.NaT],
    })  # fmt: skip
    frame = hypervolume_by_compute(df)
    assert frame["trial_number"].tolist() == [1, 0, 3, 2], "finished ones, in the order they finished"
    assert frame["steps"].tolist() == [25, 250, 250, 475]
    assert frame["elapsed_s"].tolist() == [10.0, 30.0, 40.0, 60.0]
    assert frame["hypervolume"].iloc[-1] == pytest.approx(hypervolume_2d(df))
    assert frame["hypervolume"].is_monotonic_increasing


@pytest.mark.parametrize("seed", range(3))
def test_hypervolume_by_compute_ends_at_the_hypervolume_of_every_finished_trial(seed: int) -> None:
    df = _random_study(30, seed).assign(steps_run=10, config=[{}] * 30, created_at=datetime(2024, 1, 1, tzinfo=UTC))
    frame = hypervolume_by_compute(df)
    assert len(frame) == int(df["finished_at"].notna().sum())
    assert frame["hypervolume"].iloc[-1] == pytest.approx(hypervolume_2d(df[df["finished_at"].notna()]), abs=1e-9)
    assert hypervolume_by_compute(df.iloc[:0]).empty
