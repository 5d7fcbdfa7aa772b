"""Streamlit dashboard: score vs trainable-parameter % of a PETL search study.

Run::

    streamlit run dashboard/app.py -- --storage sqlite:////abs/path/studies.db
    python -m dashboard --storage URL [--port N]

The URL may also come from ``$VLPETL_STORAGE``; the default is
``data/studies.db``. The page only reads (through a read-only engine) and only
draws: numbers come from ``dashboard.processing`` and ``storage.analysis``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# `streamlit run` puts dashboard/ on sys.path, not the repository root.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import pandas as pd  # noqa: E402
import streamlit as st  # noqa: E402
from sqlalchemy import Engine  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

from dashboard.charts import pareto_figure  # noqa: E402
from dashboard.processing import (  # noqa: E402
    Summary,
    front_table,
    plot_frame,
    summarize,
    trials_table,
)
from dashboard.settings import STORAGE_ENV, resolve_storage_url  # noqa: E402
from storage import (  # noqa: E402
    StorageURLError,
    best_within_budget,
    list_studies,
    load_results,
    make_readonly_engine,
    redact,
)

NO_DATABASE = "No study database yet"
NO_STUDIES = "No studies recorded yet"


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    return make_readonly_engine(url)


def _connect(url: str) -> tuple[Engine, list[str]]:
    """Open the database and list its studies, or explain why not and stop."""
    hint = f"Pass `--storage URL` or set `{STORAGE_ENV}`."
    try:
        engine = _engine(url)
        return engine, list_studies(engine)
    except StorageURLError as exc:
        st.error(f"{exc} {hint}")
    except FileNotFoundError as exc:
        st.info(f"**{NO_DATABASE}.** {exc} {hint}")
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        st.error(f"Cannot read the study database at `{redact(url)}`: {reason}. {hint}")
    st.stop()


def _sidebar(studies: list[str], url: str) -> tuple[str, float | None]:
    with st.sidebar:
        study = st.selectbox("Study", studies, key="study")
        budget = st.number_input(
            "Budget (% trainable parameters)", min_value=0.0, max_value=100.0, value=None,
            step=0.5, placeholder="none", key="budget",
            help="Draw a vertical line and pick the best trial at or under it.",
        )  # fmt: skip
        st.caption(f"Storage: `{redact(url)}` (read-only)")
    return str(study), budget


def _metrics(summary: Summary) -> None:
    columns = st.columns(5)
    columns[0].metric("Complete", summary.complete)
    columns[1].metric("Infeasible", summary.infeasible)
    columns[2].metric("Failed", summary.failed)
    best = "-" if summary.best_score is None else f"{summary.best_score:.2f}"
    columns[3].metric("Best score", best)
    columns[4].metric("Front size", summary.front_size)
    st.caption(
        f"{summary.running} running, {summary.pruned} pruned; "
        f"hypervolume {summary.hypervolume:,.1f} (reference: score 0 at 100%)."
    )


def _budget_pick(df: pd.DataFrame, budget: float | None) -> None:
    if budget is None:
        return
    best = best_within_budget(df, max_pct=budget)
    if best is None:
        st.warning(f"No complete trial within {budget:g}% trainable parameters.")
        return
    st.success(
        f"Best within {budget:g}%: trial #{best['trial_number']} ({best['method']}), "
        f"score {best['score']:.2f} at {best['trainable_pct']:.3g}%."
    )


def main() -> None:
    """Draw the page for the storage URL given on the command line or environment."""
    st.set_page_config(page_title="VL-PETL search", layout="wide")
    st.title("VL-PETL search: score vs trainable parameters")
    url = resolve_storage_url(sys.argv[1:], os.environ)
    engine, studies = _connect(url)
    if not studies:
        st.info(f"**{NO_STUDIES}** in `{redact(url)}`. Start a search; trials appear here.")
        st.stop()
    study, budget = _sidebar(studies, url)
    df = load_results(engine, study)
    st.subheader(f"Study: {study}")
    summary = summarize(df)
    _metrics(summary)
    _budget_pick(df, budget)

    points = plot_frame(df)
    if points.empty:
        st.info("No complete trials to plot yet.")
    else:
        st.plotly_chart(pareto_figure(points, budget_pct=budget), key="pareto")
        hidden = summary.complete - len(points)
        if hidden:
            st.caption(f"{hidden} complete trial(s) with 0% trainable parameters are not drawn.")

    st.subheader("Pareto front")
    st.dataframe(front_table(df), hide_index=True)
    st.subheader("All trials")
    st.dataframe(trials_table(df), hide_index=True)


if __name__ == "__main__":
    main()
