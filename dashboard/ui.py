"""What every page shares: the session's context, cached reads, and links between pages.

The entrypoint (``app.py``) builds a :class:`Context` from the sidebar each run; pages
read it with :func:`context` and fetch data through the cached readers here, which
reload only when the study's :func:`dashboard.sources.fingerprint` changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st
from optuna.storages import RDBStorage
from sqlalchemy import Engine

from core.budget import Budget
from core.formats import NumberFormat
from dashboard.sources import (
    ImportanceUnavailable,
    OptunaStudy,
    fingerprint,
    open_optuna_study,
    read_study_attrs,
    readonly_optuna_storage,
    score_importances,
)
from dashboard.study import StudyAttrs
from storage import load_results, make_readonly_engine

if TYPE_CHECKING:
    from streamlit.elements.lib.column_types import ColumnConfig

__all__ = [
    "COMPARE_PAGE",
    "TRIAL_PAGE",
    "Context",
    "compare_link",
    "context",
    "engine",
    "importances",
    "number_column",
    "optuna_study",
    "results",
    "set_context",
    "study_attrs",
    "trial_link",
]

TRIAL_PAGE = "views/trial.py"
COMPARE_PAGE = "views/compare.py"
_CONTEXT = "_dashboard_context"


@dataclass(frozen=True)
class Context:
    """The sidebar's choices for this run.

    Attributes:
        url: The validated storage URL (may hold a password: never show it unredacted).
        studies: Studies with at least one recorded trial.
        study: The selected study.
        budget: The parsed budget, or None when none (or an invalid one) was typed.
        attrs: What ``search.launch`` stored with the study, or None without an Optuna record.
    """

    url: str
    studies: list[str]
    study: str
    budget: Budget | None
    attrs: StudyAttrs | None = None


def set_context(ctx: Context) -> None:
    st.session_state[_CONTEXT] = ctx


def context() -> Context:
    """The context the entrypoint set; pages run only after it did."""
    return st.session_state[_CONTEXT]


@st.cache_resource(show_spinner=False)
def engine(url: str) -> Engine:
    """One read-only engine per storage URL, shared by all sessions."""
    return make_readonly_engine(url)


@st.cache_resource(show_spinner=False)
def _optuna_storage(url: str) -> RDBStorage | None:
    return readonly_optuna_storage(url)


@st.cache_data(show_spinner=False, max_entries=32)
def _results(url: str, study: str | None, stamp: tuple[object, ...]) -> pd.DataFrame:
    return load_results(engine(url), study)


def results(url: str, study: str | None) -> pd.DataFrame:
    """The study's results (all studies' when None), reloaded only after a write."""
    return _results(url, study, fingerprint(engine(url), study))


@st.cache_data(show_spinner=False, max_entries=16)
def _optuna_study(url: str, study: str, stamp: tuple[object, ...]) -> OptunaStudy | None:
    return open_optuna_study(_optuna_storage(url), study)


def optuna_study(url: str, study: str) -> OptunaStudy | None:
    """Optuna's record of the study, or None when the database has none."""
    return _optuna_study(url, study, fingerprint(engine(url), study))


@st.cache_data(show_spinner=False, max_entries=16)
def _study_attrs(url: str, study: str, stamp: tuple[object, ...]) -> StudyAttrs | None:
    return read_study_attrs(_optuna_storage(url), study)


def study_attrs(url: str, study: str) -> StudyAttrs | None:
    """What ``search.launch`` stored with the study (settings, data digests), or None."""
    return _study_attrs(url, study, fingerprint(engine(url), study))


@st.cache_data(show_spinner=False, max_entries=16)
def _importances(url: str, study: str, stamp: tuple[object, ...]) -> tuple[dict[str, float] | None, str | None]:
    optuna_view = _optuna_study(url, study, stamp)
    if optuna_view is None:
        return None, "This database has no Optuna record of the study, so importances cannot be computed."
    frame = _results(url, study, stamp)
    feasible = set(frame.loc[frame["status"] == "complete", "trial_number"].tolist())
    try:
        return score_importances(optuna_view, feasible), None
    except ImportanceUnavailable as reason:
        return None, str(reason)


def importances(url: str, study: str) -> tuple[dict[str, float] | None, str | None]:
    """``(importances, None)`` or ``(None, why not)`` for the score objective."""
    return _importances(url, study, fingerprint(engine(url), study))


def trial_link(study: str, number: int, label: str | None = None) -> None:
    """A link that opens the trial page on this trial."""
    st.page_link(
        TRIAL_PAGE, label=label or f"Open trial #{number}", icon=":material/open_in_new:",
        query_params={"study": study, "trial": str(number)},
    )  # fmt: skip


def compare_link(study: str, numbers: list[int]) -> None:
    """A link that opens the compare page on these trials."""
    st.page_link(
        COMPARE_PAGE, label=f"Compare {', '.join(f'#{n}' for n in numbers)}", icon=":material/compare:",
        query_params={"study": study, "trials": ",".join(str(n) for n in numbers)},
    )  # fmt: skip


def number_column(fmt: NumberFormat, label: str | None = None, **kwargs: Any) -> ColumnConfig:
    """A table column that prints its numbers as the CLI does (``core.formats``) and
    still sorts them as numbers."""
    return st.column_config.NumberColumn(label, format=fmt.printf, **kwargs)
