"""How a study progressed: hypervolume after each trial, trials finished over time (pure pandas)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

__all__ = ["hypervolume_by_compute", "hypervolume_history", "trials_over_time"]


def _area(front: list[tuple[float, float]], reference: tuple[float, float]) -> float:
    # The same slicing as core.pareto.hypervolume_2d, on an already-minimal front.
    ref_score, ref_pct = reference
    area, previous = 0.0, ref_score
    for score, pct in sorted(p for p in front if p[0] > ref_score and p[1] < ref_pct):
        area += (ref_pct - pct) * (score - previous)
        previous = score
    return area


class _RunningFront:
    """The front of the complete trials seen so far, updated one trial at a time."""

    def __init__(self, reference: tuple[float, float]):
        self.reference = reference
        self.front: list[tuple[float, float]] = []
        self.area = 0.0

    def add(self, status: str, score: object, pct: object) -> float:
        if status == "complete" and _finite(score) and _finite(pct):
            point = (float(score), float(pct))  # type: ignore[arg-type]
            if not any(s >= point[0] and p <= point[1] for s, p in self.front):
                self.front = [(s, p) for s, p in self.front if not (point[0] >= s and point[1] <= p)]
                self.front.append(point)
                self.area = _area(self.front, self.reference)
        return self.area


def hypervolume_history(df: pd.DataFrame, reference: tuple[float, float] = (0.0, 100.0)) -> pd.DataFrame:
    """The hypervolume of trials ``0..n`` for every trial ``n``, in trial-number order.

    Equal to ``core.pareto.hypervolume_2d`` of each prefix, but the front is updated
    one trial at a time instead of recomputed, so a 1,000-trial study takes milliseconds.

    Args:
        df: One study's results.
        reference: ``(score, trainable_pct)`` of the worst corner, as for ``hypervolume_2d``.

    Returns:
        Columns trial_number, status and hypervolume; one row per trial.
    """
    ordered = df.sort_values("trial_number")
    front = _RunningFront(reference)
    values = [front.add(*row) for row in ordered[["status", "score", "trainable_pct"]].itertuples(index=False)]
    return pd.DataFrame(
        {
            "trial_number": ordered["trial_number"].to_numpy(),
            "status": ordered["status"].to_numpy(),
            "hypervolume": pd.Series(values, dtype="float64").to_numpy(),
        }
    )


def hypervolume_by_compute(df: pd.DataFrame, reference: tuple[float, float] = (0.0, 100.0)) -> pd.DataFrame:
    """The hypervolume against the compute spent: after each trial finished, in finishing order.

    Compute is the training steps of every trial finished so far (a trial stopped at a rung
    counts the steps it ran; one that never trained or failed, none) and the wall time since
    the study's first row. Rows from before schema version 4 have no ``steps_run``: a complete
    one counts its configuration's steps, a stopped one none.

    Returns:
        Columns trial_number, status, steps (cumulative), elapsed_s and hypervolume; empty
        when no trial has finished.
    """
    done = df[df["finished_at"].notna()].sort_values(["finished_at", "trial_number"])
    if done.empty:
        return pd.DataFrame(columns=["trial_number", "status", "steps", "elapsed_s", "hypervolume"])
    front = _RunningFront(reference)
    start = df["created_at"].min()
    steps, rows = 0, []
    for row in done.itertuples(index=False):
        steps += _steps_run(row)
        rows.append({
            "trial_number": row.trial_number,
            "status": row.status,
            "steps": steps,
            "elapsed_s": (row.finished_at - start).total_seconds(),
            "hypervolume": front.add(row.status, row.score, row.trainable_pct),
        })  # fmt: skip
    return pd.DataFrame(rows)


def _steps_run(row: Any) -> int:
    steps = getattr(row, "steps_run", None)
    if steps is not None and _finite(steps):
        return int(steps)
    if row.status == "complete" and isinstance(row.config, dict):
        return int(row.config.get("training", {}).get("steps", 0) or 0)
    return 0


def _finite(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def trials_over_time(df: pd.DataFrame) -> pd.DataFrame:
    """Cumulative count of finished trials per status, at each finishing time.

    Running trials have no finishing time yet and are not counted.

    Args:
        df: One study's results.

    Returns:
        Columns finished_at, status, trial_number and count (the running total of that
        status), sorted by time; empty when nothing has finished.
    """
    done = df[df["finished_at"].notna()].sort_values(["finished_at", "trial_number"])
    frame = done[["finished_at", "status", "trial_number"]].reset_index(drop=True)
    frame["count"] = frame.groupby("status").cumcount() + 1
    return frame
