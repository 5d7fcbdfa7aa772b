"""Which hyperparameters matter: the parallel-coordinates table and importances (pure pandas)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from dashboard.processing import flat_config

__all__ = [
    "DEFAULT_AXES",
    "MIN_TRIALS_FOR_IMPORTANCE",
    "OBJECTIVE_LABELS",
    "axis_labels",
    "importance_frame",
    "parcoords_frame",
    "rank_parameters",
    "top_parameters",
]

# fANOVA on fewer trials than this says more about noise than about the parameters.
MIN_TRIALS_FOR_IMPORTANCE = 3
_OBJECTIVES = ("trainable_pct", "score")
OBJECTIVE_LABELS = {"trainable_pct": "trainable %", "score": "score"}
# Parameter axes drawn before the user asks for more: with the two objectives, seven axes
# leave each title about 130 px on a laptop-wide page, room for the longest names of the
# default space ("task_embedding_dim") without overlapping the next.
DEFAULT_AXES = 5
# A numeric parameter with more distinct values than this is grouped into this many
# quantile bins to measure its effect, so a continuous one is not rewarded for being unique.
_MAX_GROUPS = 5


def parcoords_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Complete trials with every configuration entry that varies, then the objectives.

    Constant entries (the backbone, the task list of a one-backbone study) would only add
    flat lines, so they are left out; list values are skipped.

    Args:
        df: One study's results.

    Returns:
        One row per complete trial (index: trial number); config columns keep their
        values (NaN where a trial lacks a conditional parameter), then
        ``trainable_pct`` and ``score``. Empty when no trial is complete.
    """
    complete = df[(df["status"] == "complete") & df["score"].notna()]
    flat = [{k: v for k, v in flat_config(c).items() if not isinstance(v, list | dict)} for c in complete["config"]]
    config = pd.DataFrame(flat, index=complete["trial_number"].to_numpy())
    varying = [c for c in config.columns if config[c].astype("string").nunique(dropna=False) > 1]
    objectives = complete[list(_OBJECTIVES)].set_axis(config.index)
    frame = pd.concat([config[varying], objectives], axis=1)
    frame.index.name = "trial_number"
    return frame


def importance_frame(importances: Mapping[str, float]) -> pd.DataFrame:
    """Importances as columns parameter and importance, most important first."""
    frame = pd.DataFrame(
        {
            "parameter": pd.Series(list(importances), dtype="object"),
            "importance": pd.Series(list(importances.values()), dtype="float64"),
        }
    )
    return frame.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def _groups(values: pd.Series) -> pd.Series:
    """Group labels of one parameter's values: each value its own group, missing one group."""
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().sum() == values.notna().sum() and numeric.nunique() > _MAX_GROUPS:
        binned = pd.qcut(numeric, _MAX_GROUPS, duplicates="drop").astype("string")
        return binned.fillna("n/a")
    return values.map(lambda v: "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))


def _effect_size(groups: pd.Series, score: pd.Series) -> float:
    """Epsilon squared: the share of the score's variance the groups explain, less what
    as many random groups would explain by chance (0 when nothing, 1 when all)."""
    n, k = len(score), groups.nunique()
    total = float(((score - score.mean()) ** 2).sum())
    if k < 2 or n <= k or total == 0.0:
        return 0.0
    means = score.groupby(groups).transform("mean")
    between = float(((means - score.mean()) ** 2).sum())
    within_mean_square = (total - between) / (n - k)
    return max(0.0, (between - (k - 1) * within_mean_square) / total)


def rank_parameters(frame: pd.DataFrame) -> pd.Series:
    """How much each parameter column of ``parcoords_frame`` explains of the score (epsilon squared).

    A plain, model-free measure that works on every column, conditional ones included
    (Optuna's importances rank only the parameters every trial has), so the parallel
    coordinates can start from the parameters that matter.

    Args:
        frame: Output of :func:`parcoords_frame`.

    Returns:
        ``column -> effect`` in [0, 1], largest first; ties keep the frame's column order.
    """
    parameters = [c for c in frame.columns if c not in _OBJECTIVES]
    score = frame["score"].astype(float)
    effects = pd.Series({c: _effect_size(_groups(frame[c]), score) for c in parameters}, dtype="float64")
    return effects.sort_values(ascending=False, kind="stable")


def top_parameters(frame: pd.DataFrame, ranking: pd.Series, count: int) -> pd.DataFrame:
    """The ``count`` highest-ranked parameter columns of ``frame``, then the objectives."""
    return frame[[*ranking.index[:count], *_OBJECTIVES]]


def axis_labels(columns: Iterable[str]) -> dict[str, str]:
    """Short axis titles: the last part of a dotted name (``method_params.rank`` -> ``rank``).

    A name whose last part another column shares keeps its full name, so titles stay distinct;
    the objectives are named as on the Overview.
    """
    columns = list(columns)
    last = [c.rsplit(".", 1)[-1] for c in columns]
    return {c: OBJECTIVE_LABELS.get(c) or (short if last.count(short) == 1 else c) for c, short in zip(columns, last, strict=True)}
