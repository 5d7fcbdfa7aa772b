"""Parameters: which hyperparameters drive the score, and every trial across them."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.charts import importance_figure, parcoords_figure
from dashboard.importance import (
    DEFAULT_AXES,
    axis_labels,
    importance_frame,
    parcoords_frame,
    rank_parameters,
    top_parameters,
)

ctx = ui.context()
st.title(f"Parameters of {ctx.study}")

st.subheader("Importance for the score")
importances, reason = ui.importances(ctx.url, ctx.study)
if importances is None:
    st.info(reason)
else:
    table = importance_frame(importances)
    st.plotly_chart(importance_figure(table), key="importance")
    st.caption(
        "Optuna's `get_param_importances` (PED-ANOVA) for reaching a high score, over the completed, "
        "within-budget trials; importances sum to 1. Only parameters every such trial has are ranked."
    )

st.subheader("Parallel coordinates")
frame = parcoords_frame(ui.results(ctx.url, ctx.study))
if frame.empty:
    st.info("No complete trials yet.")
    st.stop()
ranking = rank_parameters(frame)
count = len(ranking)
if count > 1:
    # A real space varies about 20 entries: all of them at once are unreadable, so the page
    # starts from those that explain most of the score and lets the user add the rest.
    count = st.slider("Parameters shown", 1, len(ranking), min(DEFAULT_AXES, len(ranking)), key="parcoords_axes")
shown = top_parameters(frame, ranking, count)
st.plotly_chart(parcoords_figure(shown, axis_labels(shown.columns)), key="parcoords")
hidden = list(ranking.index[count:])
st.caption(
    "One line per complete trial, coloured by score; drag along an axis to filter. Axes: the parameters "
    "whose values explain most of the score's spread (ε², adjusted for how many values each has), then "
    "trainable % and score. Entries that never vary are left out; `n/a` marks a parameter the trial's "
    "method lacks." + (f" Not shown ({len(hidden)}): {', '.join(hidden)}." if hidden else "")
)
