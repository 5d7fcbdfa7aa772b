"""Progress: how the front improved trial by trial, and how fast trials finish."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.charts import hypervolume_figure, timeline_figure
from dashboard.history import hypervolume_by_compute, hypervolume_history, trials_over_time

ctx = ui.context()
st.title(f"Progress of {ctx.study}")
df = ui.results(ctx.url, ctx.study)

st.subheader("Hypervolume")
against = st.radio(
    "against", ["trials", "training steps", "wall time"], horizontal=True, key="hypervolume_axis",
    help="Compute is what a search costs: trials stopped early at a multi-fidelity rung count the steps they ran.",
)  # fmt: skip
if against == "trials":
    history, x = hypervolume_history(df), "trial_number"
else:
    history, x = hypervolume_by_compute(df), ("steps" if against == "training steps" else "elapsed_s")
if history.empty:
    st.info("No trials recorded yet." if against == "trials" else "No trial has finished yet.")
else:
    st.plotly_chart(hypervolume_figure(history, x), key="hypervolume")
    st.caption(
        "Area of (score, trainable %) space dominated by the complete trials so far, against the reference "
        "(score 0, 100%). It only grows; flat stretches are trials that did not move the front."
        + ("" if against == "trials" else " Points are trials in the order they finished; every finished trial adds its training steps.")
    )

st.subheader("Trials over time")
timeline = trials_over_time(df)
if timeline.empty:
    st.info("No trial has finished yet.")
else:
    st.plotly_chart(timeline_figure(timeline), key="timeline")
running = int((df["status"] == "running").sum())
if running:
    st.caption(f"{running} trial(s) running now (not counted until they finish).")
