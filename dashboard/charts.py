"""The score vs trainable-% chart, built from :func:`dashboard.processing.plot_frame`."""

from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

__all__ = ["pareto_figure"]

_FRONT_SIZE, _OTHER_SIZE = 12, 8


def pareto_figure(points: pd.DataFrame, *, budget_pct: float | None = None) -> go.Figure:
    """Scatter of complete trials, coloured by method, with the front stepped.

    One marker trace per method (so the legend toggles methods) and one
    marker-less line trace for the front; so the markers drawn are exactly
    the rows of ``points``.

    Args:
        points: Output of ``plot_frame``.
        budget_pct: Draw a vertical budget line here; skipped if None or <= 0
            (a log axis has no place for it).

    Returns:
        A Plotly figure with a log x axis.
    """
    fig = go.Figure()
    palette = qualitative.Plotly
    for i, (method, group) in enumerate(points.groupby("method", sort=True)):
        front = group["on_front"].to_numpy(dtype=bool)
        fig.add_trace(
            go.Scatter(
                x=group["trainable_pct"],
                y=group["score"],
                mode="markers",
                name=str(method),
                hovertext=group["hover"],
                hoverinfo="text",
                customdata=group["trial_number"],
                marker={
                    "color": palette[i % len(palette)],
                    "opacity": group["opacity"].tolist(),
                    "size": [_FRONT_SIZE if f else _OTHER_SIZE for f in front],
                    "line": {"color": "black", "width": [1.5 if f else 0.0 for f in front]},
                },
            )
        )
    front_points = points[points["on_front"]].sort_values("trainable_pct")
    if not front_points.empty:
        # "hv": between two front points the best reachable score is the
        # cheaper one's, so the line steps right, then up.
        fig.add_trace(
            go.Scatter(
                x=front_points["trainable_pct"],
                y=front_points["score"],
                mode="lines",
                line={"shape": "hv", "color": "black", "dash": "dot", "width": 1},
                name="Pareto front",
                hoverinfo="skip",
            )
        )
    if budget_pct is not None and budget_pct > 0:
        fig.add_vline(x=budget_pct, line={"color": "firebrick", "dash": "dash"})
        # Annotations on a log axis take log10 positions, unlike shapes.
        fig.add_annotation(
            x=math.log10(budget_pct), y=1.0, xref="x", yref="paper", yanchor="bottom",
            text=f"budget {budget_pct:g}%", showarrow=False, font={"color": "firebrick"},
        )  # fmt: skip
    fig.update_layout(
        xaxis={"type": "log", "title": {"text": "trainable parameters (%)"}},
        yaxis={"title": {"text": "score"}},
        legend={"title": {"text": "method"}},
        margin={"t": 40},
    )
    return fig
