"""Which hyperparameters matter: the parallel-coordinates table and importances (pure pandas)."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from dashboard.processing import flat_config

__all__ = ["MIN_TRIALS_FOR_IMPORTANCE", "importance_frame", "parcoords_frame"]

# fANOVA on fewer trials than this says more about noise than about the parameters.
MIN_TRIALS_FOR_IMPORTANCE = 3
_OBJECTIVES = ("trainable_pct", "score")


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
    flat = [
        {k: v for k, v in flat_config(c).items() if not isinstance(v, list | dict)} for c in complete["config"]
    ]
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
