"""One trial in depth, and several side by side (pure pandas; no Streamlit, no database).

The learning curve and the parameter breakdown are read from the trial's results row, in
the formats of the result contract (``core.results``); rows of databases from before schema
version 2 have no curve column, and their loss curve is read from the Optuna attribute the
search wrote it to then.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from core.results import LOSS_SERIES
from dashboard.processing import PEAK_MEMORY, TASK_PREFIX, flat_config, json_cell
from core.formats import COUNT, MEMORY, PERCENT, SCORE, SECONDS, NumberFormat
from core.recipes import dump_recipe, recipe_from_row
from storage.urls import redact, validate_storage_url

__all__ = [
    "LEGACY_LOSS_CURVE_ATTR",
    "RECIPE_FORMATS",
    "breakdown_frame",
    "compare_frame",
    "config_frame",
    "curve_frame",
    "find_breakdown",
    "find_curve",
    "recipe_file_name",
    "recipe_text",
    "task_metrics",
]

# Old data only: until the learning_curve column (schema version 2) the search stored the loss
# curve, one mean per 20 steps, as this Optuna user attribute of the trial; rows of such
# databases have no curve of their own, and their trials keep the attribute.
LEGACY_LOSS_CURVE_ATTR = "loss_curve"
RECIPE_FORMATS = {"yaml": "yaml", "json": "json"}  # format -> file suffix
_CURVE_COLUMNS = ["step", "series", "value"]


def config_frame(config: Mapping[str, Any] | None) -> pd.DataFrame:
    """The configuration as two text columns, ``parameter`` and ``value``, one row per leaf."""
    flat = flat_config(config)
    return pd.DataFrame({"parameter": list(flat), "value": [_text(v) for v in flat.values()]})


def task_metrics(row: Mapping[str, Any]) -> pd.DataFrame:
    """Per-task scores of one trial as columns ``task`` and ``score`` (empty when none)."""
    scores = row.get("task_scores")
    items = sorted(scores.items()) if isinstance(scores, Mapping) else []
    return pd.DataFrame(
        {
            "task": pd.Series([k for k, _ in items], dtype="object"),
            "score": pd.Series([_number(v) for _, v in items], dtype="float64"),
        }
    )


def data_description(row: Mapping[str, Any]) -> tuple[pd.DataFrame, str | None]:
    """The data a trial read: one row per task (name, format, paths as the data file wrote
    them) and a caption with where the description came from and the digest of its files.

    Rows recorded before data descriptions (the generated benchmark, implied) give an empty frame.
    """
    environment = json_cell(row.get("environment"))
    inputs = environment.get("inputs") if isinstance(environment, Mapping) else None
    data = inputs.get("data") if isinstance(inputs, Mapping) else None
    if not isinstance(data, Mapping) or not isinstance(data.get("tasks"), Mapping):
        return pd.DataFrame({"task": [], "format": [], "files": []}, dtype="object"), None
    tasks = data["tasks"]
    frame = pd.DataFrame(
        {
            "task": list(tasks),
            "format": [str(entry.get("format", "")) for entry in tasks.values()],
            "files": [", ".join(f"{k}: {v}" for k, v in entry.items() if k != "format") for entry in tasks.values()],
        },
        dtype="object",
    )
    files = inputs.get("data_files") if isinstance(inputs, Mapping) else None  # a Mapping here: data came from it
    if not isinstance(files, Mapping):
        files = {}
    caption = f"From {data.get('source', 'the study')}" + (f" (relative paths from {data['base']})" if data.get("base") else "")
    if files.get("sha256"):
        caption += f"; {int(files.get('files', 0)):,} files by content, digest `{str(files['sha256'])[:16]}`"
    return frame, caption + "."


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _series(name: str, steps: Sequence[Any], values: Sequence[Any]) -> list[tuple[float, str, float]]:
    points = []
    for step, value in zip(steps, values, strict=False):
        step_n, value_n = _number(step), _number(value)
        if step_n is not None and value_n is not None:
            points.append((step_n, name, value_n))
    return points


def curve_frame(value: Any) -> pd.DataFrame:
    """Normalise a stored learning curve to long form: columns step, series, value.

    Accepted shapes: the result contract's ``{series: {step: value}}``
    (:func:`core.results.learning_curve`), and, for old data, the list of losses the search
    stored before it (``LEGACY_LOSS_CURVE_ATTR``), drawn at steps 1, 2, ... as before.
    Non-numeric and non-finite points are dropped.

    Args:
        value: The stored curve, or None.

    Returns:
        The points, sorted by series and step; empty (same columns) when there are none.
    """
    points = []
    if isinstance(value, Mapping):
        for name, series in value.items():
            if isinstance(series, Mapping):
                points += _series(str(name), list(series), list(series.values()))
    elif isinstance(value, list):  # old data: one loss per logged step
        points = _series(LOSS_SERIES, range(1, len(value) + 1), value)
    frame = pd.DataFrame(points, columns=_CURVE_COLUMNS).astype({"step": "float64", "series": "object", "value": "float64"})
    return frame.sort_values(["series", "step"], kind="stable").reset_index(drop=True)


def find_curve(row: Mapping[str, Any], user_attrs: Mapping[str, Any] | None = None) -> tuple[pd.DataFrame, str | None]:
    """The trial's learning curve and where it came from.

    The results row's ``learning_curve``; for a row without one, from a database older than
    schema version 2, the loss curve the search stored then as an Optuna user attribute.

    Returns:
        ``(curve_frame, source)``; source is None when nothing was recorded.
    """
    frame = curve_frame(row.get("learning_curve"))
    if not frame.empty:
        return frame, "results column `learning_curve`"
    frame = curve_frame((user_attrs or {}).get(LEGACY_LOSS_CURVE_ATTR))
    if not frame.empty:
        return frame, f"Optuna user attribute `{LEGACY_LOSS_CURVE_ATTR}`"
    return curve_frame(None), None


def breakdown_frame(value: Any) -> pd.DataFrame:
    """A parameter breakdown (``{"part": count}``, nested allowed) as columns part, parameters.

    Returns:
        Rows with numeric counts, largest first; empty when ``value`` holds none.
    """
    value = json_cell(value)
    flat = flat_config(value) if isinstance(value, Mapping) else {}
    rows = [(part, _number(count)) for part, count in flat.items()]
    frame = pd.DataFrame([r for r in rows if r[1] is not None], columns=["part", "parameters"])
    frame = frame.astype({"part": "object", "parameters": "float64"})
    return frame.sort_values("parameters", ascending=False, kind="stable").reset_index(drop=True)


def find_breakdown(row: Mapping[str, Any]) -> pd.DataFrame:
    """The row's ``param_breakdown`` (empty for rows recorded without one)."""
    return breakdown_frame(row.get("param_breakdown"))


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


_COMPARED = ("status", "method", "score", "trainable_pct", "trainable_params", "total_params", "train_seconds", PEAK_MEMORY, "error")
# The outcome fields print as the CLI prints them; configuration values keep _text's 4 digits.
_FIELD_FORMATS: dict[str, NumberFormat] = {
    "score": SCORE, "trainable_pct": PERCENT, "trainable_params": COUNT, "total_params": COUNT,
    "train_seconds": SECONDS, PEAK_MEMORY: MEMORY,
}  # fmt: skip


def _field_text(field: str, value: Any) -> str:
    fmt = SCORE if field.startswith(TASK_PREFIX) else _FIELD_FORMATS.get(field)
    if fmt is None:
        return _text(value)
    return "" if _number(value) is None else fmt(value)


def compare_frame(df: pd.DataFrame, numbers: Sequence[int]) -> pd.DataFrame:
    """Trials side by side: one column ``#n`` per trial, one row per field, as text.

    Rows are the outcome fields, each task's score, then every configuration entry any of
    the trials has; ``differs`` flags the rows where the trials disagree.

    Args:
        df: One study's results.
        numbers: The trial numbers to compare, in column order.

    Returns:
        A frame indexed by field name.

    Raises:
        KeyError: If a number is not a trial of ``df``.
    """
    by_number = df.set_index("trial_number")
    missing = [n for n in numbers if n not in by_number.index]
    if missing:
        raise KeyError(f"No trial {missing} in this study; trials are {sorted(by_number.index)[:20]}.")
    fields: dict[str, dict[str, str]] = {}
    for n in numbers:
        row = by_number.loc[n]
        column = f"#{n}"
        values = {f: row.get(f) for f in _COMPARED if f in by_number.columns}
        scores = row.get("task_scores") if isinstance(row.get("task_scores"), Mapping) else {}
        values |= {f"{TASK_PREFIX}{k}": v for k, v in sorted(scores.items())}
        values |= {f"config.{k}": v for k, v in flat_config(row.get("config")).items()}
        for field, value in values.items():
            fields.setdefault(field, {})[column] = _field_text(field, value)
    table = pd.DataFrame.from_dict(fields, orient="index").reindex(columns=[f"#{n}" for n in numbers]).fillna("")
    table["differs"] = table.nunique(axis=1) > 1
    table.index.name = "field"
    return table


def recipe_text(row: Mapping[str, Any], *, storage_url: str, budget_text: str | None, fmt: str) -> str:
    """The recipe ``python -m search.export`` writes for this row, as the same text.

    The CLI records ``redact(url)`` and the budget as the user typed it (stripped); so
    does this, so the download and the CLI's file are byte-identical.

    Args:
        row: A ``load_results`` row.
        storage_url: The study's storage URL (unredacted; redacted here).
        budget_text: The budget as typed, or None when none was given.
        fmt: "yaml" or "json".

    Returns:
        The recipe text.
    """
    shown = redact(validate_storage_url(storage_url))
    budget = budget_text.strip() if budget_text else None
    return dump_recipe(recipe_from_row(row, storage_url=shown, budget=budget), fmt)


def recipe_file_name(study: str, trial_number: int, fmt: str) -> str:
    """A download name such as ``mystudy-trial-3.yaml``."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in study)
    return f"{safe}-trial-{trial_number}.{RECIPE_FORMATS[fmt]}"
