"""Turn the results frame into what the dashboard draws (pure pandas).

Everything the page shows is computed here or in :mod:`storage.analysis`,
so it can be tested without Streamlit; ``app.py`` only lays it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from storage.analysis import hypervolume_2d, pareto_mask

__all__ = [
    "DIMMED_OPACITY",
    "Summary",
    "front_table",
    "hover_text",
    "key_hyperparameters",
    "plot_frame",
    "summarize",
    "trials_table",
]

# Dominated points stay visible for context but recede behind the front.
DIMMED_OPACITY = 0.3
# Hover boxes taller than this hide the chart.
MAX_HYPERPARAMETERS = 8
# TrialConfig.to_dict() layout: method_params holds the method's own knobs.
_METHOD_PARAMS = "method_params"
_SHOWN_ALWAYS = (("sharing", "sharing"), ("training.learning_rate", "lr"), ("backbone", "backbone"))


@dataclass(frozen=True)
class Summary:
    """Headline numbers of one study."""

    complete: int
    infeasible: int
    failed: int
    running: int
    pruned: int
    best_score: float | None
    front_size: int
    hypervolume: float


def summarize(df: pd.DataFrame) -> Summary:
    """Count trials by status and measure the front.

    Args:
        df: One study's results, as from ``storage.load_results``.

    Returns:
        The study's :class:`Summary`.
    """
    counts = df["status"].value_counts()
    done = df[df["status"] == "complete"]["score"].dropna()
    return Summary(
        complete=int(counts.get("complete", 0)),
        infeasible=int(counts.get("infeasible", 0)),
        failed=int(counts.get("failed", 0)),
        running=int(counts.get("running", 0)),
        pruned=int(counts.get("pruned", 0)),
        best_score=float(done.max()) if not done.empty else None,
        front_size=int(pareto_mask(df).sum()),
        hypervolume=hypervolume_2d(df),
    )


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            flat.update(_flatten(item, f"{name}."))
        else:
            flat[name] = item
    return flat


def key_hyperparameters(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Pick the hyperparameters worth showing for one trial.

    The method's own parameters come first, then sharing mode, learning rate
    and backbone. Configs of another layout fall back to their first
    scalar entries, so an unexpected config still shows something.

    Args:
        config: The trial's stored configuration dict.

    Returns:
        Up to :data:`MAX_HYPERPARAMETERS` ``name -> value`` pairs.
    """
    if not isinstance(config, Mapping):
        return {}
    flat = _flatten(config)
    prefix = f"{_METHOD_PARAMS}."
    picked = {k.removeprefix(prefix): v for k, v in flat.items() if k.startswith(prefix)}
    picked.update({label: flat[key] for key, label in _SHOWN_ALWAYS if key in flat})
    if not picked:
        picked = {k: v for k, v in flat.items() if k != "method" and not isinstance(v, list)}
    return dict(list(picked.items())[:MAX_HYPERPARAMETERS])


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _params_line(config: Mapping[str, Any] | None, separator: str) -> str:
    return separator.join(f"{k}={_format(v)}" for k, v in key_hyperparameters(config).items())


def hover_text(row: Mapping[str, Any]) -> str:
    """Plotly hover text (``<br>``-separated) for one complete trial.

    Args:
        row: A results row with trial_number, method, score, trainable_pct,
            trainable_params and config.

    Returns:
        The method and its key hyperparameters, then score and size.
    """
    lines = [
        f"<b>#{row['trial_number']} {row['method']}</b>",
        f"score {row['score']:.2f}",
        f"trainable {row['trainable_pct']:.3g}% ({row['trainable_params']:,} params)",
    ]
    hyper = _params_line(row.get("config"), "<br>")
    return "<br>".join(lines + ([hyper] if hyper else []))


def plot_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Complete trials that can be drawn, with label, front flag and hover text.

    Trials with 0% trainable parameters are left out: a log axis cannot
    place them.

    Args:
        df: One study's results.

    Returns:
        A copy of the drawable rows sorted by trainable_pct, plus columns
        ``label``, ``on_front``, ``opacity`` and ``hover``.
    """
    on_front = pareto_mask(df)
    drawable = (
        (df["status"] == "complete")
        & np.isfinite(df["score"].astype(float))
        & (df["trainable_pct"] > 0)
    )
    frame = df[drawable].copy()
    frame["on_front"] = on_front[drawable]
    frame["label"] = "#" + frame["trial_number"].astype(str) + " " + frame["method"]
    frame["opacity"] = np.where(frame["on_front"], 1.0, DIMMED_OPACITY)
    frame["hover"] = [hover_text(row) for row in frame.to_dict("records")]
    return frame.sort_values(["trainable_pct", "score"], ascending=[True, False])


def _table(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    table = df[columns].copy()
    table["hyperparameters"] = [_params_line(c, ", ") for c in df["config"]]
    return table.reset_index(drop=True)


def front_table(df: pd.DataFrame) -> pd.DataFrame:
    """The Pareto-optimal trials, cheapest first, ready to display.

    Args:
        df: One study's results.

    Returns:
        trial_number, method, score, trainable_pct, trainable_params and a
        ``hyperparameters`` summary string.
    """
    columns = ["trial_number", "method", "score", "trainable_pct", "trainable_params"]
    front = df[pareto_mask(df)].sort_values(["trainable_pct", "score"], ascending=[True, False])
    return _table(front, columns)


def trials_table(df: pd.DataFrame) -> pd.DataFrame:
    """Every trial, ready to display, with one ``task:<name>`` column per task.

    Args:
        df: One study's results.

    Returns:
        Flat columns only (no dicts), so any table widget can show it.
    """
    columns = [
        "trial_number", "status", "method", "score", "trainable_pct", "trainable_params",
        "train_seconds", "error", "finished_at",
    ]  # fmt: skip
    table = _table(df, columns)
    scores = [s if isinstance(s, Mapping) else {} for s in df["task_scores"]]
    tasks = pd.DataFrame(scores, index=table.index, dtype="float64")
    return pd.concat([table, tasks.add_prefix("task:")], axis=1)
