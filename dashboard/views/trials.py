"""Trials: every trial of the study, filtered and sorted, with links to each one."""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st

from dashboard import ui
from dashboard.processing import (
    PEAK_MEMORY,
    STATUSES,
    TASK_PREFIX,
    filter_trials,
    sort_trials,
    trials_table,
)
from core.formats import COUNT, MEMORY, PERCENT, SCORE, SECONDS

ctx = ui.context()
st.title(f"Trials of {ctx.study}")
table = trials_table(ui.results(ctx.url, ctx.study))

filters = st.columns(3)
methods = filters[0].multiselect("Method", sorted(table["method"].dropna().unique()), key="filter_method")
sharing = filters[1].multiselect("Sharing mode", sorted(table["sharing"].dropna().unique()), key="filter_sharing")
present = set(table["status"])
statuses = filters[2].multiselect("Status", [s for s in STATUSES if s in present], key="filter_status")

order = st.columns([3, 1])
sortable = [c for c in table.columns if c not in ("hyperparameters", "error")]
by = order[0].selectbox("Sort by", sortable, index=sortable.index("trial_number"), key="sort_by")
descending = order[1].toggle("Descending", value=False, key="sort_descending")

shown = sort_trials(filter_trials(table, methods=methods, sharing=sharing, statuses=statuses), by, ascending=not descending)
shown.insert(0, "open", [f"trial?{urlencode({'study': ctx.study, 'trial': n})}" for n in shown["trial_number"]])
st.caption(f"{COUNT(len(shown))} of {COUNT(len(table))} trials.")
st.dataframe(
    shown,
    hide_index=True,
    key="trials_table",
    column_config={
        "open": st.column_config.LinkColumn("open", display_text=r"trial=(\d+)$", width="small", help="Open the trial page"),
        "score": ui.number_column(SCORE),
        "trainable_pct": ui.number_column(PERCENT, "trainable %"),
        "trainable_params": ui.number_column(COUNT, "trainable"),
        "train_seconds": ui.number_column(SECONDS, "training time"),
        PEAK_MEMORY: ui.number_column(MEMORY, "peak memory"),
        **{c: ui.number_column(SCORE) for c in shown.columns if c.startswith(TASK_PREFIX)},
        "finished_at": st.column_config.DatetimeColumn("finished (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    },
)

numbers = shown["trial_number"].tolist()
if numbers:
    left, right = st.columns(2)
    with left:
        number = st.selectbox("Open a trial", numbers, key="open_trial")
        if number is not None:
            ui.trial_link(ctx.study, int(number))
    with right:
        picked = st.multiselect("Compare trials", numbers, key="compare_trials", max_selections=6)
        if len(picked) >= 2:
            ui.compare_link(ctx.study, [int(n) for n in picked])
        else:
            st.caption("Pick two or more trials to compare them side by side.")
