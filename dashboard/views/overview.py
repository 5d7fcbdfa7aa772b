"""Overview: every study at a glance, then the selected study's Pareto front.

The front of score against trainable % is always shown; when trials recorded their peak
training memory (every trial since schema version 2, and the objective of
`search.launch --objectives score,trainable_pct,peak_memory`), the front of score against peak
memory is shown below it too, chart and table, so both trade-offs read at once without
switching the x axis.
"""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.charts import pareto_figure
from dashboard.processing import (
    MEMORY_AXIS,
    STATUSES,
    front_report,
    memory_front_report,
    plot_frame,
    score_options,
    selected_trials,
    study_overview,
    summarize,
    with_task_columns,
    x_axes,
)
from core.formats import COUNT, HYPERVOLUME, PERCENT, SCORE
from core.pareto import best_within_budget
from core.seeds import by_configuration, closer_than_noise, mean_text
from dashboard.study import describe_study

ctx = ui.context()
st.title("VL-PETL search")

st.subheader("Studies")
st.dataframe(
    study_overview(ui.results(ctx.url, None)),
    hide_index=True,
    key="studies_table",
    column_config={
        **{status: ui.number_column(COUNT) for status in (*STATUSES, "trials")},
        "best_score": ui.number_column(SCORE, "best score"),
        "hypervolume": ui.number_column(HYPERVOLUME),
        "last_update": st.column_config.DatetimeColumn("last update (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    },
)

df = ui.results(ctx.url, ctx.study)
summary = summarize(df)
# The front, the chart and the best read a configuration confirmed with several seeds by its mean.
configs = by_configuration(df)
st.subheader(f"Study: {ctx.study}")
columns = st.columns(7)
columns[0].metric("Trials", COUNT(summary.total))
columns[1].metric("Complete", COUNT(summary.complete))
columns[2].metric("Running", COUNT(summary.running))
columns[3].metric("Failed", COUNT(summary.failed))
columns[4].metric("Infeasible", COUNT(summary.infeasible))
columns[5].metric("Best score", SCORE(summary.best_score))
columns[6].metric("Hypervolume", HYPERVOLUME(summary.hypervolume), help="Score × trainable-% area dominated, against (score 0, 100%).")
st.caption(f"{COUNT(summary.front_size)} trial(s) on the Pareto front; {COUNT(summary.pruned)} pruned.")

# What the study searched, so that this page (and a screenshot of it) is a record of the search.
description = describe_study(ctx.attrs, df)
if not description.empty:
    with st.container(key="study_description"):
        st.markdown("**What this study searched**")
        st.table(description.set_index("item"))
        if ctx.attrs is None or ctx.attrs.settings is None:
            st.caption("No launch settings are stored with this study; described from its trials' records.")

if ctx.budget is not None:
    best = best_within_budget(configs, max_pct=ctx.budget.max_pct, max_params=ctx.budget.max_params)
    if best is None:
        st.warning(f"No complete trial within the budget {ctx.budget.text}.")
    else:
        st.success(
            f"Best within {ctx.budget.text}: trial #{best['trial_number']} ({best['method']}), "
            f"score {mean_text(best)} at {PERCENT(best['trainable_pct'])} trainable "
            f"({COUNT(best['trainable_params'])} parameters)."
        )
        rest = configs[configs["trial_number"] != best["trial_number"]]
        second = best_within_budget(rest, max_pct=ctx.budget.max_pct, max_params=ctx.budget.max_params)
        if second is not None and (close := closer_than_noise(best, second)) is not None:
            st.warning(close.describe(int(best["trial_number"]), int(second["trial_number"])))
        ui.trial_link(ctx.study, int(best["trial_number"]), f"Open trial #{best['trial_number']} (best within budget)")

tasks = with_task_columns(configs)
axes = {axis.label: axis for axis in x_axes(configs)}
scores = score_options(tasks)
left, right = st.columns(2)
x_label = left.selectbox("x axis", list(axes), key="x_axis")
y_label = right.selectbox("Score", list(scores), key="score_view", help="The average over tasks, or one task's score.")
x_axis = axes[x_label or next(iter(axes))]
y_column = scores[y_label or next(iter(scores))]

points = plot_frame(tasks, x_axis, y_column)
if points.empty:
    st.info("No complete trials to plot yet.")
else:
    total = df["total_params"].unique()
    budget_x = ctx.budget.line_position(x_axis.column, int(total[0]) if len(total) == 1 else None) if ctx.budget else None
    figure = pareto_figure(
        points, x_axis=x_axis, y_label="score" if y_column == "score" else f"score on {y_label}",
        budget_x=budget_x, budget_text=ctx.budget.text if ctx.budget else None,
    )  # fmt: skip
    event = st.plotly_chart(figure, key="pareto", on_select="rerun", selection_mode=("points", "box", "lasso"))
    hidden = int((configs["status"] == "complete").sum()) - len(points)
    if hidden:
        st.caption(f"{hidden} complete trial(s) without a value to place on this axis are not drawn.")
    picked = selected_trials(event.selection.points if event else [])
    if picked:
        for number in picked[:5]:
            ui.trial_link(ctx.study, number)
        if len(picked) >= 2:
            ui.compare_link(ctx.study, picked[:6])
    else:
        st.caption("Select points (click, box or lasso) to open or compare those trials. Dimmed points are dominated.")

st.subheader("Pareto front (score vs trainable %)")
front = front_report(configs, ctx.budget)
if front.empty:
    st.info("No complete trials yet.")
else:
    with st.container(key="front_table"):
        st.table(front.set_index("trial"))

memory_front = memory_front_report(configs)
if not memory_front.empty:
    st.subheader("Pareto front (score vs peak training memory)")
    memory_points = plot_frame(configs, MEMORY_AXIS)
    st.plotly_chart(pareto_figure(memory_points, x_axis=MEMORY_AXIS), key="memory_pareto")
    st.caption("Memory the trial added at its peak while training (MiB); dimmed points use more memory for a lower score.")
    with st.container(key="memory_front_table"):
        st.table(memory_front.set_index("trial"))
