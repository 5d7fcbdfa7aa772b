"""Turn the results frame into what the dashboard draws (pure pandas).

Everything the pages show is computed here, in :mod:`dashboard.history`,
:mod:`dashboard.details` or in :mod:`core.pareto`, so it can be tested without
Streamlit; the page scripts only lay it out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.budget import Budget
from core.formats import COUNT, MEMORY, PERCENT, SCORE, SECONDS, NumberFormat
from core.pareto import hypervolume_2d, pareto_mask
from core.results import STATUSES
from core.seeds import by_configuration, mean_text, seed_of

__all__ = [
    "AVERAGE_SCORE",
    "DIMMED_OPACITY",
    "MAX_HYPERPARAMETERS",
    "MEMORY_AXIS",
    "PCT_AXIS",
    "PEAK_MEMORY",
    "STATUSES",
    "TASK_PREFIX",
    "Axis",
    "Summary",
    "filter_trials",
    "flat_config",
    "front_report",
    "front_table",
    "hover_text",
    "key_hyperparameters",
    "memory_front_report",
    "plot_frame",
    "score_options",
    "selected_trials",
    "sharing_of",
    "sort_trials",
    "study_overview",
    "summarize",
    "trials_table",
    "with_task_columns",
    "x_axes",
]

# Dominated points stay visible for context but recede behind the front.
DIMMED_OPACITY = 0.3
# Hover boxes taller than this hide the chart.
MAX_HYPERPARAMETERS = 8
# Recorded by trials since schema version 2 (None where not measurable); the memory axis and front
# are offered only once some complete trial has a value.
PEAK_MEMORY = "peak_memory_mb"
TASK_PREFIX = "task:"
AVERAGE_SCORE = "average over tasks"
# TrialConfig.to_dict() layout: method_params holds the method's own knobs.
_METHOD_PARAMS = "method_params"
_SHOWN_ALWAYS = (("sharing", "sharing"), ("training.learning_rate", "lr"), ("backbone", "backbone"))


@dataclass(frozen=True)
class Axis:
    """One choice of x axis for the front: a results column, its label, scale and number format."""

    label: str
    column: str
    log: bool
    fmt: NumberFormat


PCT_AXIS = Axis("trainable parameters (%)", "trainable_pct", log=True, fmt=PERCENT)
MEMORY_AXIS = Axis("peak memory (MiB)", PEAK_MEMORY, log=False, fmt=MEMORY)
_AXES = (
    PCT_AXIS,
    Axis("trainable parameters", "trainable_params", log=True, fmt=COUNT),
    MEMORY_AXIS,
    Axis("training time (s)", "train_seconds", log=False, fmt=SECONDS),
)


def x_axes(df: pd.DataFrame) -> list[Axis]:
    """The x axes this study can be drawn against.

    An axis is offered only when its column exists and some complete trial has a value,
    so a database without ``peak_memory_mb`` (or with it still empty) offers no memory axis.

    Args:
        df: One study's results.

    Returns:
        Trainable % first (always offered), then the others that have data.
    """
    complete = df[df["status"] == "complete"]
    offered = [_AXES[0]]
    for axis in _AXES[1:]:
        if axis.column in df.columns and pd.to_numeric(complete[axis.column], errors="coerce").notna().any():
            offered.append(axis)
    return offered


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

    @property
    def total(self) -> int:
        return self.complete + self.infeasible + self.failed + self.running + self.pruned


def summarize(df: pd.DataFrame) -> Summary:
    """Count trials by status and measure the front.

    Trials are counted row by row (a confirmation seed is a trial that trained); the best
    score and the front read each configuration by its mean over seeds (core.seeds).

    Args:
        df: One study's results, as from ``storage.load_results``.

    Returns:
        The study's :class:`Summary`.
    """
    counts = df["status"].value_counts()
    configs = by_configuration(df)
    done = configs[configs["status"] == "complete"]["score"].dropna()
    return Summary(
        complete=int(counts.get("complete", 0)),
        infeasible=int(counts.get("infeasible", 0)),
        failed=int(counts.get("failed", 0)),
        running=int(counts.get("running", 0)),
        pruned=int(counts.get("pruned", 0)),
        best_score=float(done.max()) if not done.empty else None,
        front_size=int(pareto_mask(configs).sum()),
        hypervolume=hypervolume_2d(configs),
    )


def study_overview(df: pd.DataFrame) -> pd.DataFrame:
    """One row per study: whether it is running, trial counts, best score, hypervolume.

    Args:
        df: Results of any number of studies (``load_results(engine)``).

    Returns:
        Columns study, state ("running" while a trial is, else "idle"), the count of
        each status, trials, best_score, hypervolume and last_update; most recently
        updated study first.
    """
    rows = []
    for name, group in df.groupby("study_name", sort=False):
        summary = summarize(group)
        stamps = pd.concat([group["created_at"], group["finished_at"]]).dropna()
        rows.append(
            {
                "study": name,
                "state": "running" if summary.running else "idle",
                **{status: getattr(summary, status) for status in STATUSES},
                "trials": summary.total,
                "best_score": summary.best_score,
                "hypervolume": summary.hypervolume,
                "last_update": stamps.max() if not stamps.empty else pd.NaT,
            }
        )
    columns = ["study", "state", *STATUSES, "trials", "best_score", "hypervolume", "last_update"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("last_update", ascending=False, na_position="last").reset_index(drop=True)


def with_task_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Add one float column ``task:<name>`` per task found in ``task_scores``.

    Args:
        df: Results with a ``task_scores`` column of dicts (or None).

    Returns:
        A copy with the task columns appended (NaN where a trial has no such score).
    """
    return pd.concat([df, _task_frame(df["task_scores"], df.index)], axis=1)


def _task_frame(task_scores: Iterable[Any], index: pd.Index) -> pd.DataFrame:
    scores = [s if isinstance(s, Mapping) else {} for s in task_scores]
    return pd.DataFrame(scores, index=index, dtype="float64").add_prefix(TASK_PREFIX)


def score_options(df: pd.DataFrame) -> dict[str, str]:
    """What the y axis can show: the average score, then each task's score.

    Args:
        df: Results after :func:`with_task_columns`.

    Returns:
        ``label -> column``.
    """
    options = {AVERAGE_SCORE: "score"}
    for column in df.columns:
        if column.startswith(TASK_PREFIX):
            options[column.removeprefix(TASK_PREFIX)] = column
    return options


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            flat.update(_flatten(item, f"{name}."))
        else:
            flat[name] = item
    return flat


def flat_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The config as ``dotted.name -> value`` (lists kept as values)."""
    return _flatten(config) if isinstance(config, Mapping) else {}


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


def sharing_of(config: Mapping[str, Any] | None) -> str | None:
    """The trial's sharing mode, or None when its config has none."""
    value = config.get("sharing") if isinstance(config, Mapping) else None
    return None if value is None else str(value)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _params_line(config: Mapping[str, Any] | None, separator: str) -> str:
    return separator.join(f"{k}={_format(v)}" for k, v in key_hyperparameters(config).items())


def hover_text(row: Mapping[str, Any], extra: Mapping[str, str] | None = None) -> str:
    """Plotly hover text (``<br>``-separated) for one complete trial.

    Args:
        row: A results row with trial_number, method, score, trainable_pct,
            trainable_params and config.
        extra: More ``label -> text`` lines (the chosen task's score, the x value).

    Returns:
        The method and its key hyperparameters, then score and size.
    """
    lines = [
        f"<b>#{row['trial_number']} {row['method']}</b>",
        f"score {mean_text(row) if 'seeds' in row else SCORE(row['score'])}",
        f"trainable {PERCENT(row['trainable_pct'])} ({COUNT(row['trainable_params'])} parameters)",
        *(f"{label} {text}" for label, text in (extra or {}).items()),
    ]
    hyper = _params_line(row.get("config"), "<br>")
    return "<br>".join(lines + ([hyper] if hyper else []))


def plot_frame(df: pd.DataFrame, x: Axis = PCT_AXIS, y: str = "score") -> pd.DataFrame:
    """Complete trials that can be drawn, with label, front flag and hover text.

    The front is taken in the plane drawn (maximise ``y``, minimise ``x``), so a per-task
    or a training-time view dims what is dominated there. A log axis cannot place zero, so
    such trials are left out of a log plot.

    Args:
        df: One study's results (after :func:`with_task_columns` for a task's ``y``).
        x: The x axis.
        y: The score column.

    Returns:
        A copy of the drawable rows sorted by x, plus columns ``x``, ``y``, ``y_std`` (the
        seed standard deviation of an average score confirmed with several seeds, else NaN:
        the error bar), ``label``, ``on_front``, ``opacity`` and ``hover``.
    """
    xs = pd.to_numeric(df[x.column], errors="coerce").astype(float) if x.column in df else pd.Series(np.nan, df.index)
    ys = pd.to_numeric(df[y], errors="coerce").astype(float)
    plane = df.assign(x=xs, y=ys)
    on_front = pareto_mask(plane, maximize="y", minimize="x")
    drawable = (df["status"] == "complete") & np.isfinite(ys) & np.isfinite(xs)
    if x.log:
        drawable &= xs > 0
    frame = plane[drawable].copy()
    frame["on_front"] = on_front[drawable]
    std = frame["score_std"] if y == "score" and "score_std" in frame else pd.Series(np.nan, frame.index)
    frame["y_std"] = pd.to_numeric(std, errors="coerce").astype(float)
    frame["label"] = "#" + frame["trial_number"].astype(str) + " " + frame["method"]
    frame["opacity"] = np.where(frame["on_front"], 1.0, DIMMED_OPACITY)
    extra_x = x.column not in ("trainable_pct", "trainable_params")
    frame["hover"] = [
        hover_text(
            row,
            {
                **({f"{y.removeprefix(TASK_PREFIX)}:": SCORE(row["y"])} if y != "score" else {}),
                **({f"{x.label}:": x.fmt(row["x"])} if extra_x else {}),
            },
        )
        for row in frame.to_dict("records")
    ]
    return frame.sort_values(["x", "y"], ascending=[True, False])


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
    columns = ["trial_number", "method", "score", "trainable_pct", "trainable_params", *(c for c in ("seeds", "score_std") if c in df)]
    front = df[pareto_mask(df)].sort_values(["trainable_pct", "score"], ascending=[True, False])
    return _table(front, columns)


def front_report(df: pd.DataFrame, budget: Budget | None = None) -> pd.DataFrame:
    """The front as the CLI prints it at the end of a search: every cell text, numbers formatted.

    Text rather than formatted numbers, because the front is a report: its order (cheapest
    first, hence lowest score first) is the only one that means something, the text is what
    a screen reader and a copy get too, and long hyperparameter lists wrap instead of being cut.

    Args:
        df: One study's results.
        budget: When given, a ``budget <text>`` column says ``within`` or ``over (reference)``,
            as the CLI's front table does.

    Returns:
        Columns trial, method, score, trainable %, trainable, optionally the budget's, and
        hyperparameters.
    """
    front = front_table(df)
    report = pd.DataFrame(
        {
            "trial": front["trial_number"].map(str),
            "method": front["method"],
            "score": [mean_text(row) for row in front.to_dict("records")],
            "trainable %": front["trainable_pct"].map(PERCENT),
            "trainable": front["trainable_params"].map(COUNT),
        },
        dtype="object",
    )
    if budget is not None:
        fits = [budget.allows_row(p, n) for p, n in zip(front["trainable_pct"], front["trainable_params"], strict=True)]
        report[f"budget {budget.text}"] = ["within" if f else "over (reference)" for f in fits]
    report["hyperparameters"] = front["hyperparameters"]
    return report


def memory_front_report(df: pd.DataFrame) -> pd.DataFrame:
    """The front of score against peak training memory (``--objectives ...,peak_memory``), as text.

    The same trials as :func:`plot_frame` marks on the front of the memory axis: complete,
    with a recorded peak memory, none with a higher score at no more memory. Cheapest first.

    Args:
        df: One study's results (a configuration's seeds folded by ``core.seeds.by_configuration``).

    Returns:
        Columns trial, method, score, peak memory, trainable % and hyperparameters; empty when
        no complete trial recorded its memory.
    """
    columns = ["trial", "method", "score", "peak memory", "trainable %", "hyperparameters"]
    if PEAK_MEMORY not in df.columns:
        return pd.DataFrame(columns=columns, dtype="object")
    points = plot_frame(df, MEMORY_AXIS)
    front = points[points["on_front"]]
    rows = [
        [str(row["trial_number"]), row["method"], mean_text(row), MEMORY(row[PEAK_MEMORY]), PERCENT(row["trainable_pct"]),
         _params_line(row["config"], ", ")]
        for row in front.to_dict("records")
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns, dtype="object")


def trials_table(df: pd.DataFrame) -> pd.DataFrame:
    """Every trial, ready to display, with one ``task:<name>`` column per task.

    Args:
        df: One study's results.

    Returns:
        Flat columns only (no dicts), so any table widget can show it; ``sharing`` comes
        from the config, ``peak_memory_mb`` only when the results table has it.
    """
    columns = [
        "trial_number", "status", "method", "score", "trainable_pct", "trainable_params",
        "train_seconds", *([PEAK_MEMORY] if PEAK_MEMORY in df.columns else []),
        "error", "finished_at",
    ]  # fmt: skip
    table = _table(df, columns)
    table.insert(3, "sharing", [sharing_of(c) for c in df["config"]])
    # Each confirmation seed is a row of its own: which configuration it repeats, and its seed.
    table.insert(4, "seed", pd.Series([seed_of(c) for c in df["config"]], dtype="Int64"))
    repeats = df["replicate_of"] if "replicate_of" in df.columns else pd.Series(None, index=df.index, dtype="object")
    table.insert(5, "repeats trial", pd.to_numeric(repeats, errors="coerce").astype("Int64").reset_index(drop=True))
    return pd.concat([table, _task_frame(df["task_scores"], table.index)], axis=1)


def filter_trials(
    table: pd.DataFrame,
    *,
    methods: Iterable[str] = (),
    sharing: Iterable[str] = (),
    statuses: Iterable[str] = (),
) -> pd.DataFrame:
    """Keep the rows of a :func:`trials_table` that match every non-empty filter.

    Args:
        table: Output of :func:`trials_table`.
        methods: Keep these methods; all when empty.
        sharing: Keep these sharing modes; all when empty.
        statuses: Keep these statuses; all when empty.

    Returns:
        The matching rows, index reset.
    """
    keep = pd.Series(True, index=table.index)
    for column, wanted in (("method", methods), ("sharing", sharing), ("status", statuses)):
        wanted = list(wanted)
        if wanted:
            keep &= table[column].isin(wanted)
    return table[keep].reset_index(drop=True)


def sort_trials(table: pd.DataFrame, by: str, *, ascending: bool) -> pd.DataFrame:
    """Sort a trials table by one column, missing values last, trial number breaking ties.

    Raises:
        ValueError: If ``by`` is not a column of ``table``.
    """
    if by not in table.columns:
        raise ValueError(f"Cannot sort by {by!r}: not a column; columns are {', '.join(table.columns)}.")
    keys = [by] if by == "trial_number" else [by, "trial_number"]
    order = [ascending] if by == "trial_number" else [ascending, True]
    return table.sort_values(keys, ascending=order, na_position="last", kind="stable").reset_index(drop=True)


def selected_trials(points: Iterable[Mapping[str, Any]]) -> list[int]:
    """Trial numbers of the points selected on the front chart, in selection order.

    Args:
        points: ``event.selection.points`` of ``st.plotly_chart``; each marker carries
            its trial number as ``customdata`` (a scalar or a one-item list).

    Returns:
        Distinct trial numbers; points without one (the front line) are skipped.
    """
    numbers: list[int] = []
    for point in points:
        data = point.get("customdata")
        if isinstance(data, list | tuple):
            data = data[0] if data else None
        if isinstance(data, int | float) and not isinstance(data, bool) and int(data) not in numbers:
            numbers.append(int(data))
    return numbers


def json_cell(value: Any) -> Any:
    """A results cell that holds JSON: decoded when the database returned text (SQLite), as is
    when it returned the object (PostgreSQL's JSON columns); None when the text is not JSON."""
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value
