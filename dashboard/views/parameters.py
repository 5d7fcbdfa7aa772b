"""Parameters: which hyperparameters drive the score, and every trial across them."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.charts import importance_figure, parcoords_figure
from dashboard.parameters import importance_frame, parcoords_frame

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
        "within-budget trials; importances sum to 1."
    )

st.subheader("Parallel coordinates")
frame = parcoords_frame(ui.results(ctx.url, ctx.study))
if frame.empty:
    st.info("No complete trials yet.")
else:
    st.plotly_chart(parcoords_figure(frame), key="parcoords")
    st.caption("One line per complete trial, coloured by score; drag along an axis to filter. "
               "Configuration entries that never vary are left out; `n/a` marks a parameter the trial's method lacks.")
