"""Confirmation seeds: a configuration trained with several seeds is one point with its noise.

A trial's score moves by a few points from seed to seed (REPLICATION.md), so a study re-trains
its best configurations with more seeds (``search.confirmation``). Each seed is a results row of its
own whose ``replicate_of`` names the trial it repeats; :func:`by_configuration` folds them into
that trial's row, so that the front, the export and the dashboard rank configurations by their
mean over seeds and show the spread. Pure pandas, like :mod:`core.pareto`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.formats import SCORE

__all__ = [
    "REPLICATE_COLUMN",
    "SEED_COLUMNS",
    "by_configuration",
    "closer_than_noise",
    "mean_text",
    "seed_of",
    "seeds_wanted",
]

REPLICATE_COLUMN = "replicate_of"
# What by_configuration adds: how many seeds scored the configuration, the sample standard
# deviation of their scores (NaN for one seed) and each seed's score.
SEED_COLUMNS = ("seeds", "score_std", "seed_scores")
_COMPLETE = "complete"


def seed_of(config: Mapping[str, Any] | None) -> int | None:
    """The training seed a stored configuration ran with (``TrialConfig.to_dict()`` layout)."""
    training = config.get("training") if isinstance(config, Mapping) else None
    seed = training.get("seed") if isinstance(training, Mapping) else None
    return int(seed) if isinstance(seed, int | float) and not isinstance(seed, bool) else None


def seeds_wanted(base_seed: int, count: int) -> list[int]:
    """The seeds a configuration confirmed with `count` seeds has: its own, then the next ones.

    Consecutive seeds keep confirmation deterministic: the same study asks for the same rows.
    """
    return [base_seed + offset for offset in range(count)]


def by_configuration(results: pd.DataFrame) -> pd.DataFrame:
    """One row per searched configuration: each trial with the seeds that repeated it folded in.

    Rows that repeat a trial (``replicate_of`` set) leave the frame; the trial's own row keeps
    its fields, with ``score`` and ``task_scores`` the means over its complete seeds (its own
    included), ``seeds`` their count, ``score_std`` the sample standard deviation of their
    scores (NaN with one seed) and ``seed_scores`` ``{seed: score}``. A trial that is not
    complete keeps its row as it is, with 0 seeds. Frames without the column (read from an
    older database) have no replicates.

    Args:
        results: A study's rows, as from ``storage.load_results``.

    Returns:
        A new frame with the columns of ``results`` plus :data:`SEED_COLUMNS`, in trial order.
    """
    replicate = _replicate_numbers(results)
    searched = results[replicate.isna()].copy()
    complete = results[results["status"] == _COMPLETE]
    groups: dict[int, list[Mapping[str, Any]]] = {}
    for row, of in zip(complete.to_dict("records"), replicate[complete.index], strict=True):
        key = int(row["trial_number"]) if pd.isna(of) else int(of)
        groups.setdefault(key, []).append(row)
    seeds, stds, seed_scores, scores, task_scores = [], [], [], [], []
    own_tasks = searched["task_scores"] if "task_scores" in searched else pd.Series(None, index=searched.index, dtype="object")
    for number, status, score, tasks in zip(searched["trial_number"], searched["status"], searched["score"], own_tasks, strict=True):
        rows = groups.get(int(number), []) if status == _COMPLETE else []
        values = [float(r["score"]) for r in rows]
        seeds.append(len(values))
        stds.append(float(np.std(values, ddof=1)) if len(values) >= 2 else math.nan)
        seed_scores.append({str(seed_of(r.get("config"))): float(r["score"]) for r in rows} or None)
        scores.append(float(np.mean(values)) if values else score)
        task_scores.append(_mean_task_scores([r.get("task_scores") for r in rows]) if len(values) >= 2 else tasks)
    searched["score"] = pd.Series(scores, index=searched.index, dtype="float64")
    if "task_scores" in searched:
        searched["task_scores"] = pd.Series(task_scores, index=searched.index, dtype="object")
    searched["seeds"] = pd.Series(seeds, index=searched.index, dtype="int64")
    searched["score_std"] = pd.Series(stds, index=searched.index, dtype="float64")
    searched["seed_scores"] = pd.Series(seed_scores, index=searched.index, dtype="object")
    return searched.reset_index(drop=True)


def _replicate_numbers(results: pd.DataFrame) -> pd.Series:
    if REPLICATE_COLUMN not in results.columns:
        return pd.Series(np.nan, index=results.index, dtype="float64")
    return pd.to_numeric(results[REPLICATE_COLUMN], errors="coerce")


def _mean_task_scores(per_seed: Sequence[Mapping[str, float] | None]) -> dict[str, float] | None:
    """Each task's mean over the seeds that scored it."""
    found: dict[str, list[float]] = {}
    for scores in per_seed:
        for task, value in (scores or {}).items():
            found.setdefault(task, []).append(float(value))
    return {task: float(np.mean(values)) for task, values in found.items()} or None


def mean_text(row: Mapping[str, Any]) -> str:
    """A configuration's score as read: ``57.3 ± 1.2 (2 seeds)``, or the plain score for one seed."""
    seeds = int(row.get("seeds") or 0)
    std = row.get("score_std")
    if seeds < 2 or std is None or not math.isfinite(float(std)):
        return SCORE(row["score"])
    return f"{SCORE(row['score'])} ± {SCORE(float(std))} ({seeds} seeds)"


@dataclass(frozen=True)
class NoiseComparison:
    """The best two configurations within a budget, against their seed noise."""

    difference: float
    noise: float

    def describe(self, first: int, second: int) -> str:
        return (
            f"trials {first} and {second}, the best two within the budget, differ by {SCORE(self.difference)} points, "
            f"less than their seed standard deviation ({SCORE(self.noise)}): either may be the better one; "
            "confirm both with more seeds (python -m search.confirm --front --seeds K) before relying on the order"
        )


def closer_than_noise(first: Mapping[str, Any], second: Mapping[str, Any]) -> NoiseComparison | None:
    """Whether two rows of :func:`by_configuration` are closer than their seed noise.

    The noise is the larger of the two standard deviations that are known (a configuration
    with one seed has none); without any, nothing can be said and None is returned.
    """
    stds = [float(s) for s in (first.get("score_std"), second.get("score_std")) if s is not None and math.isfinite(float(s))]
    if not stds:
        return None
    difference = abs(float(first["score"]) - float(second["score"]))
    noise = max(stds)
    return NoiseComparison(difference, noise) if difference < noise else None
