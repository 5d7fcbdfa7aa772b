"""Plotly figures, each built from a frame that ``processing``, ``history``, ``details`` or
``parameters`` prepared; no computation beyond layout happens here."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from dashboard.processing import PCT_AXIS, Axis
from core.formats import COUNT, PERCENT, SCORE

__all__ = [
    "breakdown_figure",
    "curves_figure",
    "hypervolume_figure",
    "importance_figure",
    "parcoords_figure",
    "pareto_figure",
    "task_scores_figure",
    "timeline_figure",
]

_FRONT_SIZE, _OTHER_SIZE = 12, 8
_PALETTE = qualitative.Plotly
_STATUS_COLOURS = {
    "complete": "#2ca02c", "running": "#1f77b4", "failed": "#d62728", "infeasible": "#ff7f0e", "pruned": "#7f7f7f",
}  # fmt: skip


def _list(values: pd.Series | np.ndarray) -> list[object]:
    # Plain lists: Plotly >= 6 would ship arrays as base64 blobs, opaque in the page spec.
    return pd.Series(values).tolist()


def pareto_figure(
    points: pd.DataFrame,
    *,
    x_axis: Axis = PCT_AXIS,
    y_label: str = "score",
    budget_x: float | None = None,
    budget_text: str | None = None,
) -> go.Figure:
    """Scatter of complete trials, coloured by method, with the front stepped.

    One marker trace per method (so the legend toggles methods) and one marker-less line
    trace for the front; so the markers drawn are exactly the rows of ``points``.
    Dominated trials are dimmed; ``customdata`` holds each point's trial number.

    Args:
        points: Output of ``plot_frame`` (columns x, y, method, on_front, opacity, hover; an
            optional y_std draws error bars of ± one seed standard deviation).
        x_axis: What x is, and whether its axis is logarithmic.
        y_label: Title of the y axis.
        budget_x: Draw a vertical budget line at this x; skipped if None, or <= 0 on a log axis.
        budget_text: The budget as typed, for the line's label.

    Returns:
        A Plotly figure.
    """
    fig = go.Figure()
    for i, (method, group) in enumerate(points.groupby("method", sort=True)):
        front = group["on_front"].to_numpy(dtype=bool)
        spread = group["y_std"] if "y_std" in group else pd.Series(np.nan, group.index)
        # Configurations confirmed with several seeds get a bar of ± one standard deviation;
        # single-seed points have none (Plotly skips NaN as "no bar").
        error_y = {"type": "data", "array": _list(spread.astype(float)), "visible": True} if spread.notna().any() else None
        fig.add_trace(
            go.Scatter(
                x=_list(group["x"]), y=_list(group["y"]), mode="markers", name=str(method), error_y=error_y,
                hovertext=_list(group["hover"]), hoverinfo="text", customdata=_list(group["trial_number"]),
                marker={
                    "color": _PALETTE[i % len(_PALETTE)],
                    "opacity": _list(group["opacity"]),
                    "size": [_FRONT_SIZE if f else _OTHER_SIZE for f in front],
                    "line": {"color": "black", "width": [1.5 if f else 0.0 for f in front]},
                },
            )
        )  # fmt: skip
    front_points = points[points["on_front"]].sort_values("x")
    if not front_points.empty:
        # "hv": between two front points the best reachable score is the cheaper one's,
        # so the line steps right, then up.
        fig.add_trace(
            go.Scatter(
                x=_list(front_points["x"]), y=_list(front_points["y"]), mode="lines", name="Pareto front",
                line={"shape": "hv", "color": "black", "dash": "dot", "width": 1}, hoverinfo="skip",
            )
        )  # fmt: skip
    if budget_x is not None and (budget_x > 0 or not x_axis.log):
        fig.add_vline(x=budget_x, line={"color": "firebrick", "dash": "dash"})
        # Annotations on a log axis take log10 positions, unlike shapes.
        fig.add_annotation(
            x=math.log10(budget_x) if x_axis.log else budget_x, y=1.0, xref="x", yref="paper",
            yanchor="bottom", text=f"budget {budget_text or format(budget_x, 'g')}", showarrow=False, font={"color": "firebrick"},
        )  # fmt: skip
    fig.update_layout(
        xaxis={"type": "log" if x_axis.log else "linear", "title": {"text": x_axis.label}},
        yaxis={"title": {"text": y_label}},
        legend={"title": {"text": "method"}},
        margin={"t": 40},
    )
    return fig


HYPERVOLUME_AXES = {
    "trial_number": ("trial number", "trial %{x}"),
    "steps": ("training steps, all trials together", "%{x:,} steps"),
    "elapsed_s": ("wall time since the study began (s)", "%{x:,.0f} s"),
}


def hypervolume_figure(history: pd.DataFrame, x: str = "trial_number") -> go.Figure:
    """Hypervolume as a step line against `x`: trial number (``hypervolume_history``), or the
    compute spent, training steps or wall time (``hypervolume_by_compute``)."""
    label, hover = HYPERVOLUME_AXES[x]
    fig = go.Figure(
        go.Scatter(
            x=_list(history[x]), y=_list(history["hypervolume"]), mode="lines+markers",
            line={"shape": "hv"}, name="hypervolume", customdata=_list(history["trial_number"]),
            hovertemplate=f"{hover}<br>trial %{{customdata}}<br>hypervolume %{{y:,.1f}}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_layout(
        xaxis={"title": {"text": label}},
        yaxis={"title": {"text": "hypervolume (score × % points)"}, "rangemode": "tozero"},
        margin={"t": 30},
    )
    return fig


def timeline_figure(timeline: pd.DataFrame) -> go.Figure:
    """Cumulative finished trials per status over time (from ``trials_over_time``)."""
    fig = go.Figure()
    for status, group in timeline.groupby("status", sort=True):
        fig.add_trace(
            go.Scatter(
                x=_list(group["finished_at"]), y=_list(group["count"]), mode="lines+markers", name=str(status),
                line={"shape": "hv", "color": _STATUS_COLOURS.get(str(status))},
                customdata=_list(group["trial_number"]),
                hovertemplate="%{x}<br>trial %{customdata}: %{y} " + str(status) + "<extra></extra>",
            )
        )  # fmt: skip
    fig.update_layout(
        xaxis={"title": {"text": "finished at (UTC)"}},
        yaxis={"title": {"text": "trials (cumulative)"}, "rangemode": "tozero"},
        legend={"title": {"text": "status"}},
        margin={"t": 30},
    )
    return fig


def importance_figure(importances: pd.DataFrame) -> go.Figure:
    """Horizontal bars of parameter importance (from ``importance_frame``), largest on top.

    Every bar carries its parameter's name on the axis (each category is a tick, so Plotly
    cannot skip one for lack of room) and its value at its end.
    """
    ordered = importances.iloc[::-1]
    names = _list(ordered["parameter"])
    fig = go.Figure(
        go.Bar(
            x=_list(ordered["importance"]), y=names, orientation="h", cliponaxis=False,
            text=[f"{v:.2f}" for v in ordered["importance"]], textposition="outside",
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        )
    )  # fmt: skip
    fig.update_layout(
        xaxis={"title": {"text": "importance for the score"}, "range": [0, 1.1 * max(1e-9, *ordered["importance"])]},
        yaxis={"tickmode": "array", "tickvals": names, "ticktext": names, "automargin": True},
        height=max(250, 40 + 32 * len(names)),
        margin={"t": 30},
    )
    return fig


def _dimension(label: str, values: pd.Series, tickformat: str | None = None) -> dict[str, object]:
    numeric = pd.to_numeric(values, errors="coerce")
    if values.notna().all() and numeric.notna().all():
        return {"label": label, "values": _list(numeric.astype(float)), **({"tickformat": tickformat} if tickformat else {})}
    if numeric.notna().sum() == values.notna().sum() and numeric.notna().any():
        # Numeric with gaps (a conditional parameter): park the gaps below the range.
        low, high = float(numeric.min()), float(numeric.max())
        gap = low - (0.1 * (high - low) or 1.0)
        return {
            "label": label, "values": _list(numeric.fillna(gap).astype(float)),
            "tickvals": [gap, low, high], "ticktext": ["n/a", f"{low:g}", f"{high:g}"],
        }  # fmt: skip
    text = values.map(lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    categories = sorted(text.unique())
    return {
        "label": label, "values": [categories.index(v) for v in text],
        "tickvals": list(range(len(categories))), "ticktext": categories,
    }  # fmt: skip


# Axes up to which titles stay level; beyond it they are tilted so that neighbours do not run together.
_LEVEL_TITLES = 7
_TICK_FORMATS = {"score": SCORE.plotly, "trainable_pct": PERCENT.plotly}


def parcoords_figure(frame: pd.DataFrame, labels: dict[str, str] | None = None) -> go.Figure:
    """Parallel coordinates of ``parcoords_frame``: one line per trial, coloured by score.

    Args:
        frame: The columns to draw, each an axis, in order (``score`` among them).
        labels: Axis titles by column; the column name where missing.
    """
    labels = labels or {}
    dimensions = [_dimension(labels.get(str(c), str(c)), frame[c], _TICK_FORMATS.get(str(c))) for c in frame.columns]
    tilted = len(dimensions) > _LEVEL_TITLES
    fig = go.Figure(
        go.Parcoords(
            line={"color": _list(frame["score"].astype(float)), "colorscale": "Viridis", "showscale": True,
                  "colorbar": {"title": {"text": "score"}, "tickformat": SCORE.plotly}},
            dimensions=dimensions,
            labelangle=-30 if tilted else 0,
            labelside="top",
        )
    )  # fmt: skip
    fig.update_layout(margin={"t": 120 if tilted else 60, "l": 60, "r": 60})
    return fig


def curves_figure(curves: pd.DataFrame) -> go.Figure:
    """Learning curves: columns step, series, value, and optionally ``trial`` (one line per pair)."""
    fig = go.Figure()
    keys = ["trial", "series"] if "trial" in curves.columns else ["series"]
    for key, group in curves.groupby(keys, sort=True):
        name = " ".join(f"#{k}" if i == 0 and len(keys) == 2 else str(k) for i, k in enumerate(key))
        fig.add_trace(go.Scatter(x=_list(group["step"]), y=_list(group["value"]), mode="lines+markers", name=name))
    fig.update_layout(xaxis={"title": {"text": "step"}}, yaxis={"title": {"text": "value"}}, margin={"t": 30})
    return fig


def breakdown_figure(breakdown: pd.DataFrame) -> go.Figure:
    """Bars of trainable parameters per part (from ``details.breakdown_frame``)."""
    ordered = breakdown.iloc[::-1]
    fig = go.Figure(
        go.Bar(x=_list(ordered["parameters"]), y=_list(ordered["part"]), orientation="h",
               hovertemplate="%{y}: %{x:" + COUNT.plotly + "} parameters<extra></extra>")
    )  # fmt: skip
    fig.update_layout(xaxis={"title": {"text": "parameters"}, "tickformat": COUNT.plotly}, margin={"t": 30})
    return fig


def task_scores_figure(scores: pd.DataFrame) -> go.Figure:
    """Grouped bars: columns trial, task, score; one group per task, one bar per trial."""
    fig = go.Figure()
    for trial, group in scores.groupby("trial", sort=False):
        fig.add_trace(
            go.Bar(x=_list(group["task"]), y=_list(group["score"]), name=f"#{trial}",
                   hovertemplate=f"#{trial} " + "%{x}: %{y:" + SCORE.plotly + "}<extra></extra>")
        )  # fmt: skip
    fig.update_layout(barmode="group", yaxis={"title": {"text": "score"}}, margin={"t": 30})
    return fig
