"""Pareto analysis of trial results (pure pandas; no database).

All functions take the frame from :func:`storage.results.load_results` and
consider only rows with status "complete" and finite objective values.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["best_within_budget", "hypervolume_2d", "pareto_front", "pareto_mask", "ranked_within_budget"]

_COMPLETE = "complete"


def _eligible(df: pd.DataFrame, maximize: str, minimize: str) -> pd.Series:
    values = df[[maximize, minimize]].apply(pd.to_numeric, errors="coerce")
    return (df["status"] == _COMPLETE) & np.isfinite(values).all(axis=1)


def pareto_mask(df: pd.DataFrame, maximize: str = "score", minimize: str = "trainable_pct") -> pd.Series:
    """Flag the complete trials that no other complete trial dominates.

    A point is dominated only if another is at least as good on both
    objectives and strictly better on one, so identical points all stay on
    the front.

    Args:
        df: Trial results with ``status`` and the two objective columns.
        maximize: Column to maximise.
        minimize: Column to minimise.

    Returns:
        A boolean Series aligned with ``df``; False for non-complete rows.
    """
    mask = pd.Series(False, index=df.index, dtype=bool)
    eligible = _eligible(df, maximize, minimize)
    if not eligible.any():
        return mask
    points = df.loc[eligible, [maximize, minimize]].astype(float)
    # Cheapest first, best score first among equal cost: then a point is on
    # the front iff it has its cost group's top score and beats every
    # strictly cheaper point.
    order = points.sort_values([minimize, maximize], ascending=[True, False])
    best_cheaper = -math.inf  # best score among strictly cheaper points
    group_cost, group_top = math.nan, -math.inf
    for label, (score, cost) in zip(order.index, order.to_numpy(), strict=True):
        if cost != group_cost:
            best_cheaper = max(best_cheaper, group_top)
            group_cost, group_top = cost, score
        if score == group_top and score > best_cheaper:
            mask.at[label] = True
    return mask


def pareto_front(df: pd.DataFrame, maximize: str = "score", minimize: str = "trainable_pct") -> pd.DataFrame:
    """Return the Pareto-optimal complete trials, cheapest first.

    Args:
        df: Trial results.
        maximize: Column to maximise.
        minimize: Column to minimise.

    Returns:
        The rows of ``df`` on the front, sorted by ``minimize`` then by
        ``maximize`` descending.
    """
    front = df[pareto_mask(df, maximize, minimize)]
    return front.sort_values([minimize, maximize], ascending=[True, False])


def best_within_budget(df: pd.DataFrame, *, max_pct: float | None = None, max_params: int | None = None) -> pd.Series | None:
    """Return the highest-scoring complete trial that fits the budget.

    Ties go to fewer trainable parameters, then to the earlier trial.

    Args:
        df: Trial results.
        max_pct: Keep trials with ``trainable_pct <= max_pct``; no limit if None.
        max_params: Keep trials with ``trainable_params <= max_params``; no
            limit if None. With both limits, a trial must meet both.

    Returns:
        The winning row, or None when no complete trial fits.

    Raises:
        ValueError: If a limit is negative or not a number.
    """
    ranked = ranked_within_budget(df, max_pct=max_pct, max_params=max_params)
    return None if ranked.empty else ranked.iloc[0]


def ranked_within_budget(df: pd.DataFrame, *, max_pct: float | None = None, max_params: int | None = None) -> pd.DataFrame:
    """The complete trials that fit the budget, best first, in :func:`best_within_budget`'s order.

    Raises:
        ValueError: If a limit is negative or not a number.
    """
    for name, limit in (("max_pct", max_pct), ("max_params", max_params)):
        if limit is not None and not (isinstance(limit, int | float) and limit >= 0):
            raise ValueError(f"{name} must be a number >= 0 or None, but got {limit!r}.")
    keep = _eligible(df, "score", "trainable_pct")
    if max_pct is not None:
        keep &= df["trainable_pct"] <= max_pct
    if max_params is not None:
        keep &= df["trainable_params"] <= max_params
    return df[keep].sort_values(["score", "trainable_params", "trial_number"], ascending=[False, True, True])


def hypervolume_2d(df: pd.DataFrame, reference: tuple[float, float] = (0.0, 100.0)) -> float:
    """Area of (score, trainable %) space dominated by the complete trials.

    The area is bounded by ``reference``; points no better than it on both
    objectives add nothing. A larger value means a better front.

    Args:
        df: Trial results.
        reference: ``(score, trainable_pct)`` of the worst corner; the
            default (0, 100) is "score 0 at full fine-tuning".

    Returns:
        The hypervolume in score x percentage-point units; 0.0 if empty.
    """
    ref_score, ref_pct = reference
    front = pareto_front(df)
    inside = front[(front["score"] > ref_score) & (front["trainable_pct"] < ref_pct)]
    # On a front, score rises with cost; slice the area horizontally: the
    # band between consecutive scores is covered from that point's cost up
    # to the reference cost.
    area, previous = 0.0, ref_score
    for score, pct in inside.sort_values("score")[["score", "trainable_pct"]].to_numpy():
        area += (ref_pct - pct) * (score - previous)
        previous = score
    return float(area)
