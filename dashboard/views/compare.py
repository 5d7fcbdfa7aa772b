"""Compare: two or more trials side by side (``?trials=1,4,7`` opens them)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import ui
from dashboard.charts import curves_figure, task_scores_figure
from dashboard.details import compare_frame, find_curve, task_metrics
from dashboard.processing import front_table

ctx = ui.context()
st.title(f"Compare trials of {ctx.study}")
df = ui.results(ctx.url, ctx.study)
numbers = df["trial_number"].tolist()


def _follow_pick() -> None:
    st.query_params["trials"] = ",".join(str(n) for n in st.session_state["compare_pick"])


wanted = [int(p) for p in st.query_params.get("trials", "").split(",") if p.strip().isdigit()]
if wanted:
    st.session_state["compare_pick"] = [n for n in wanted if n in numbers]
elif "compare_pick" not in st.session_state:
    # Until the user picks, compare the front's two cheapest trials.
    st.session_state["compare_pick"] = front_table(df)["trial_number"].head(2).tolist()
picked = st.multiselect("Trials", numbers, key="compare_pick", on_change=_follow_pick, max_selections=6)
if len(picked) < 2:
    st.info("Pick two or more trials to compare.")
    st.stop()

table = compare_frame(df, picked)
only_differences = st.toggle("Only rows that differ", value=False, key="compare_differences")
shown = table[table["differs"]] if only_differences else table
st.dataframe(shown.drop(columns="differs"), key="compare_table")
st.caption(f"{int(table['differs'].sum())} of {len(table)} fields differ.")

by_number = df.set_index("trial_number", drop=False)
scores = pd.concat([task_metrics(by_number.loc[n]).assign(trial=n) for n in picked], ignore_index=True)
if not scores.empty:
    st.subheader("Per-task scores")
    st.plotly_chart(task_scores_figure(scores), key="compare_tasks")

optuna_view = ui.optuna_study(ctx.url, ctx.study)
curves = []
for n in picked:
    frozen = optuna_view.trial(n) if optuna_view else None
    curve, source = find_curve(by_number.loc[n], frozen.user_attrs if frozen else {})
    if source is not None:
        curves.append(curve.assign(trial=n))
st.subheader("Learning curves")
if curves:
    st.plotly_chart(curves_figure(pd.concat(curves, ignore_index=True)), key="compare_curves")
else:
    st.info("No learning curve recorded for these trials.")
for n in picked:
    ui.trial_link(ctx.study, n)
