"""Read-only Streamlit dashboard of search studies.

Pure logic lives in ``processing`` (tables, the front's plot frame, filters),
``history`` (hypervolume over trials, trials over time), ``details`` (one trial,
comparisons, recipes), ``importance`` (parallel coordinates, importances), ``study``
(what a study searched: tasks, data, backbone, budget); budgets parse through
``core.budget`` and numbers print through ``core.formats``, as in the CLI. ``charts`` turns their frames into Plotly
figures; ``sources`` reads what ``storage`` does not (a change fingerprint, Optuna's
trials and study attributes, read-only). ``app.py`` and ``views/`` only draw. Run it
with ``python -m dashboard --storage URL``; ``python -m dashboard.screenshot`` saves
the Overview as the README shows it. Nothing here imports torch or writes to the database.
"""

from dashboard.charts import pareto_figure
from dashboard.processing import (
    Axis,
    Summary,
    filter_trials,
    front_table,
    hover_text,
    key_hyperparameters,
    plot_frame,
    sort_trials,
    study_overview,
    summarize,
    trials_table,
    x_axes,
)
from dashboard.settings import STORAGE_ENV, resolve_storage_url

__all__ = [
    "STORAGE_ENV",
    "Axis",
    "Summary",
    "filter_trials",
    "front_table",
    "hover_text",
    "key_hyperparameters",
    "pareto_figure",
    "plot_frame",
    "resolve_storage_url",
    "sort_trials",
    "study_overview",
    "summarize",
    "trials_table",
    "x_axes",
]
