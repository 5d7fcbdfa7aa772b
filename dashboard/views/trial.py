"""Trial: one trial in full, and its recipe to download (``?trial=N`` opens it)."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.charts import breakdown_figure, curves_figure
from dashboard.details import (
    RECIPE_FORMATS,
    config_frame,
    data_description,
    find_breakdown,
    find_curve,
    recipe_file_name,
    recipe_text,
    task_metrics,
)
from dashboard.processing import PEAK_MEMORY
from core.formats import COUNT, MEMORY, PERCENT, SCORE, SECONDS

ctx = ui.context()
df = ui.results(ctx.url, ctx.study)
numbers = df["trial_number"].tolist()
if not numbers:
    st.info(f"Study {ctx.study} has no trials yet.")
    st.stop()


def _follow_pick() -> None:
    st.query_params["trial"] = str(st.session_state["trial_pick"])


# The address decides unless the user just picked another trial (which rewrote it).
wanted = st.query_params.get("trial")
if wanted is not None and wanted.isdigit() and int(wanted) in numbers:
    st.session_state["trial_pick"] = int(wanted)
elif wanted is not None:
    st.warning(f"Study {ctx.study} has no trial {wanted!r}; pick one below.")
number = st.selectbox("Trial", numbers, key="trial_pick", on_change=_follow_pick)
row = df.set_index("trial_number", drop=False).loc[number]

optuna_view = ui.optuna_study(ctx.url, ctx.study)
frozen = optuna_view.trial(int(number)) if optuna_view else None
user_attrs = frozen.user_attrs if frozen else {}

st.title(f"Trial #{number}: {row['method']}")
st.caption(f"Study {ctx.study} · status **{row['status']}**")
columns = st.columns(5)
columns[0].metric("Score", SCORE(row["score"]))
columns[1].metric("Trainable", PERCENT(row["trainable_pct"]))
columns[2].metric("Trainable parameters", COUNT(row["trainable_params"]), help=f"of {COUNT(row['total_params'])}")
columns[3].metric("Training time", SECONDS(row["train_seconds"]))
columns[4].metric("Peak memory", MEMORY(row.get(PEAK_MEMORY)))
if row["status"] in ("failed", "infeasible", "pruned") or row.get("error"):
    st.error(f"**{row['status']}**: {row.get('error') or 'no error text recorded'}")

left, right = st.columns(2)
with left:
    st.subheader("Configuration")
    st.dataframe(config_frame(row["config"]), hide_index=True, key="config_table")
    with st.expander("As JSON"):
        st.json(row["config"])
with right:
    st.subheader("Per-task metrics")
    metrics = task_metrics(row)
    if metrics.empty:
        st.caption("No per-task scores recorded.")
    else:
        st.dataframe(metrics, hide_index=True, key="task_table", column_config={"score": ui.number_column(SCORE)})
    data_frame, data_caption = data_description(row)
    if data_caption is not None:
        st.subheader("Data")
        st.dataframe(data_frame, hide_index=True, key="data_table")
        st.caption(data_caption)
    st.subheader("Parameter breakdown")
    breakdown = find_breakdown(row)
    if breakdown.empty:
        st.caption("No parameter breakdown recorded for this trial.")
    else:
        st.plotly_chart(breakdown_figure(breakdown), key="breakdown")

st.subheader("Learning curve")
curve, source = find_curve(row, user_attrs)
if source is None:
    st.info("No learning curve recorded for this trial.")
else:
    st.plotly_chart(curves_figure(curve), key="curve")
    st.caption(f"From {source}.")

st.subheader("Recipe")
if row["status"] != "complete":
    st.caption("Only complete trials can be exported as a recipe.")
else:
    budget_text = ctx.budget.text if ctx.budget else None
    buttons = st.columns(4)
    for i, fmt in enumerate(RECIPE_FORMATS):
        buttons[i].download_button(
            f"Download recipe ({fmt.upper()})", recipe_text(row, storage_url=ctx.url, budget_text=budget_text, fmt=fmt),
            file_name=recipe_file_name(ctx.study, int(number), fmt), mime="application/json" if fmt == "json" else "application/yaml",
            key=f"download_{fmt}", on_click="ignore", icon=":material/download:",
        )  # fmt: skip
    st.caption(
        "The same file as `python -m search.export` writes for this trial"
        + (f" under the budget {budget_text}." if budget_text else "; set a budget in the sidebar to record it in the recipe.")
        + " Train it with `python -m search.train --recipe FILE`."
    )
