"""Progress: how the front improved trial by trial, and how fast trials finish."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.charts import hypervolume_figure, timeline_figure
from dashboard.history import hypervolume_history, trials_over_time

ctx = ui.context()
st.title(f"Progress of {ctx.study}")
df = ui.results(ctx.url, ctx.study)

st.subheader("Hypervolume over trials")
history = hypervolume_history(df)
if history.empty:
    st.info("No trials recorded yet.")
else:
    st.plotly_chart(hypervolume_figure(history), key="hypervolume")
    st.caption(
        "Area of (score, trainable %) space dominated by the complete trials up to each trial number, "
        "against the reference (score 0, 100%). It only grows; flat stretches are trials that did not move the front."
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
