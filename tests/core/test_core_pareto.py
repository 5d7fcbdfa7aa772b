"""Pareto analysis on hand-checked frames (core.pareto: pure pandas)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from core.pareto import best_within_budget, hypervolume_2d, pareto_front, pareto_mask

NAN = math.nan


def _frame(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    """(status, score, trainable_pct) rows; 1% = 1,000 parameters."""
    frame = pd.DataFrame(rows, columns=["status", "score", "trainable_pct"])
    frame["trainable_params"] = (frame["trainable_pct"] * 1_000).round().astype("int64")
    frame["trial_number"] = range(len(frame))
    return frame


def _winner(df: pd.DataFrame, **limits: float) -> int | None:
    best = best_within_budget(df, **limits)  # type: ignore[arg-type]
    return None if best is None else int(best["trial_number"])


@pytest.fixture
def trials() -> pd.DataFrame:
    return _frame(
        [
            ("complete", 70.0, 1.0),  # 0 front
            ("complete", 70.0, 1.0),  # 1 front: a duplicate of 0 does not dominate it
            ("complete", 70.0, 2.0),  # 2 dominated by 0 (same score, cheaper)
            ("complete", 80.0, 2.0),  # 3 front
            ("complete", 75.0, 3.0),  # 4 dominated by 3
            ("running", NAN, 0.5),  # 5 not complete
            ("failed", 99.0, 0.1),  # 6 not complete, though it would dominate all
            ("complete", 60.0, 0.5),  # 7 front: cheapest
            ("complete", 90.0, 10.0),  # 8 front
        ]
    )


def test_pareto_mask(trials: pd.DataFrame) -> None:
    mask = pareto_mask(trials)
    assert mask.dtype == bool and mask.index.equals(trials.index)
    assert mask[mask].index.tolist() == [0, 1, 3, 7, 8]


def test_pareto_mask_keeps_the_index_and_handles_empty(trials: pd.DataFrame) -> None:
    shifted = trials.set_axis(trials.index + 100)
    assert pareto_mask(shifted)[lambda m: m].index.tolist() == [100, 101, 103, 107, 108]
    assert pareto_mask(trials.iloc[:0]).empty
    assert not pareto_mask(trials[trials["status"] != "complete"]).any()


def test_pareto_front_sorted_cheapest_first(trials: pd.DataFrame) -> None:
    front = pareto_front(trials)
    assert front["trainable_pct"].tolist() == [0.5, 1.0, 1.0, 2.0, 10.0]
    assert front["score"].is_monotonic_increasing


def test_best_within_budget(trials: pd.DataFrame) -> None:
    assert _winner(trials, max_pct=1.5) == 0  # 0 vs 1: earlier wins
    assert _winner(trials, max_pct=5.0) == 3
    assert _winner(trials, max_params=500) == 7
    assert _winner(trials, max_pct=5.0, max_params=1_000) == 0
    assert _winner(trials) == 8
    assert best_within_budget(trials, max_pct=0.1) is None  # only the failed trial fits


def test_best_within_budget_ties_go_to_fewer_params() -> None:
    tied = _frame([("complete", 70.0, 3.0), ("complete", 70.0, 2.0), ("complete", 50.0, 1.0)])
    assert _winner(tied, max_pct=5.0) == 1


def test_best_within_budget_rejects_negative_limits(trials: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"max_pct must be a number >= 0 or None, but got -1"):
        best_within_budget(trials, max_pct=-1)


def test_hypervolume_default_reference(trials: pd.DataFrame) -> None:
    # Sum over cost bands of the best score reachable there:
    # [0.5,1) x 60 + [1,2) x 70 + [2,10) x 80 + [10,100) x 90.
    expected = 0.5 * 60 + 1 * 70 + 8 * 80 + 90 * 90
    assert hypervolume_2d(trials) == pytest.approx(expected) == pytest.approx(8840.0)


def test_hypervolume_custom_reference(trials: pd.DataFrame) -> None:
    # Reference (score 65, 50%): 60@0.5 falls outside; bands [1,2) x 5,
    # [2,10) x 15, [10,50) x 25.
    assert hypervolume_2d(trials, reference=(65.0, 50.0)) == pytest.approx(1125.0)


def test_hypervolume_of_nothing_is_zero(trials: pd.DataFrame) -> None:
    assert hypervolume_2d(trials.iloc[:0]) == 0.0
    assert hypervolume_2d(trials, reference=(100.0, 100.0)) == 0.0
