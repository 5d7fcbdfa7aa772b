"""Streamlit dashboard of PETL search studies: the frame around every page.

Run::

    python -m dashboard --storage URL [--port N]
    streamlit run dashboard/app.py -- --storage sqlite:////abs/path/studies.db

The URL may also come from ``$VLPETL_STORAGE``; the default is ``data/studies.db``.
This file draws the sidebar (study, budget, live refresh), then runs the chosen page
from ``views/``. Query parameters ``?study=NAME&budget=5%&trial=N`` open a study, a
budget and a trial page directly. Everything is read through read-only connections.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

# `streamlit run` puts dashboard/ on sys.path, not the repository root.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402

from core.budget import Budget, BudgetError, parse_budget  # noqa: E402
from dashboard import ui  # noqa: E402
from dashboard.settings import STORAGE_ENV, resolve_storage_url, shown_storage  # noqa: E402
from dashboard.sources import fingerprint  # noqa: E402
from storage import StorageURLError, list_studies, redact, validate_storage_url  # noqa: E402

NO_DATABASE = "No study database yet"
NO_STUDIES = "No studies recorded yet"
REFRESH_CHOICES = (5, 10, 30, 60)  # seconds
# The budget text the dashboard itself last put in the box (not typed by the user), and
# the study it was put there for.
_BUDGET_DEFAULT, _BUDGET_FOR = "_budget_default", "_budget_for"


def _connect(url: str) -> tuple[str, list[str]]:
    """Validate the URL, open the database and list its studies, or explain why not and stop."""
    hint = f"Pass `--storage URL` or set `{STORAGE_ENV}`."
    try:
        url = validate_storage_url(url)
        return url, list_studies(ui.engine(url))
    except StorageURLError as exc:
        st.error(f"{exc} {hint}")
    except FileNotFoundError as exc:
        st.info(f"**{NO_DATABASE}.** {exc} {hint}")
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        st.error(f"Cannot read the study database at `{redact(url)}`: {reason}. {hint}")
    st.stop()


def _pick_study(studies: list[str], url: str) -> str:
    if st.session_state.get("study") not in studies:
        # A new session (or a vanished study): the URL's ?study= first, else the study
        # most recently written to, which is the one a running search is filling.
        wanted = st.query_params.get("study")
        if wanted not in studies:
            overview = ui.results(url, None)
            latest = overview.groupby("study_name")["created_at"].max().sort_values()
            wanted = str(latest.index[-1]) if not latest.empty else studies[0]
        st.session_state["study"] = wanted
    return str(st.selectbox("Study", studies, key="study"))


def _default_budget(study: str, study_budget: str | None) -> None:
    """Fill the budget box before it is drawn: the address's ``?budget=``, else the study's own.

    The box follows the selected study (its ``search.launch --budget``, or empty when it has
    none) until the user types; what the user typed stays when they switch studies.
    """
    state = st.session_state
    if "budget_text" not in state:
        state["budget_text"] = st.query_params.get("budget") or study_budget or ""
    elif state.get(_BUDGET_FOR) != study and state["budget_text"] == state.get(_BUDGET_DEFAULT):
        state["budget_text"] = study_budget or ""
    else:
        return
    state[_BUDGET_DEFAULT], state[_BUDGET_FOR] = state["budget_text"], study


def _pick_budget(study: str, study_budget: str | None) -> Budget | None:
    _default_budget(study, study_budget)
    text = st.text_input(
        "Budget", key="budget_text", placeholder="e.g. 5%, 0.05, 150k",
        help="Trainable-parameter budget, written as for `search.export --budget`: draws the "
        "line on the front, names the best trial under it, and goes into exported recipes. "
        "It starts from the study's own budget; type another to try it.",
    )  # fmt: skip
    if study_budget:
        same = text.strip() == study_budget
        st.caption(f"The study was launched with `--budget {study_budget}`" + ("." if same else "; trying another."))
    if not text.strip():
        return None
    try:
        return parse_budget(text)
    except BudgetError as exc:
        st.error(str(exc))
        return None


def _live_refresh(url: str) -> None:
    """Poll the database; rerun the whole app when a worker wrote something."""
    live = st.toggle("Live refresh", value=True, key="live", help="Re-read the study when a trial is recorded.")
    every = st.select_slider("Check every (s)", REFRESH_CHOICES, value=10, key="refresh_every", disabled=not live)
    if not live:
        return
    seen = fingerprint(ui.engine(url))

    @st.fragment(run_every=every)
    def watch() -> None:
        if fingerprint(ui.engine(url)) != seen:
            st.rerun(scope="app")
        st.caption(f"Checked {datetime.now(UTC):%H:%M:%S} UTC; updates when a trial is recorded.")

    watch()


def _pages() -> list[st.Page]:
    return [
        st.Page("views/overview.py", title="Overview", icon=":material/scatter_plot:", url_path="overview",
                default=True),
        st.Page("views/progress.py", title="Progress", icon=":material/trending_up:", url_path="progress"),
        st.Page("views/parameters.py", title="Parameters", icon=":material/tune:", url_path="parameters"),
        st.Page("views/trials.py", title="Trials", icon=":material/table_rows:", url_path="trials"),
        st.Page("views/trial.py", title="Trial", icon=":material/science:", url_path="trial"),
        st.Page("views/compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
    ]  # fmt: skip


def main() -> None:
    """Draw the sidebar for the configured storage URL, then the selected page."""
    st.set_page_config(page_title="VL-PETL search", page_icon=":material/scatter_plot:", layout="wide")
    pages = _pages()
    page = st.navigation(pages)
    if page is pages[0] and "trial" in st.query_params:
        # ?trial=N on the bare address opens that trial, so a link needs no page path.
        st.switch_page(pages[4], query_params=st.query_params.to_dict())
    url, studies = _connect(resolve_storage_url(sys.argv[1:], os.environ))
    if not studies:
        st.title("VL-PETL search")
        st.info(f"**{NO_STUDIES}** in `{redact(url)}`. Start a search; trials appear here.")
        st.stop()
    with st.sidebar:
        study = _pick_study(studies, url)
        attrs = ui.study_attrs(url, study)
        budget = _pick_budget(study, attrs.budget if attrs else None)
        _live_refresh(url)
        st.caption(f"Storage: `{shown_storage(url)}` (read-only)")
    if st.query_params.get("study") != study:
        st.query_params["study"] = study  # keeps the address shareable
    ui.set_context(ui.Context(url=url, studies=studies, study=study, budget=budget, attrs=attrs))
    page.run()


if __name__ == "__main__":  # `streamlit run` and AppTest run this file as __main__
    main()
