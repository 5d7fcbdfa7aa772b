"""Read-only Streamlit dashboard of search studies (score vs trainable %).

``processing`` (pure pandas) and ``charts`` (Plotly) hold the logic; ``app``
only lays the page out. Run it with ``python -m dashboard --storage URL``.
Nothing here imports torch or writes to the database.
"""

from dashboard.charts import pareto_figure
from dashboard.processing import (
    Summary,
    front_table,
    hover_text,
    key_hyperparameters,
    plot_frame,
    summarize,
    trials_table,
)
from dashboard.settings import STORAGE_ENV, resolve_storage_url

__all__ = [
    "STORAGE_ENV",
    "Summary",
    "front_table",
    "hover_text",
    "key_hyperparameters",
    "pareto_figure",
    "plot_frame",
    "resolve_storage_url",
    "summarize",
    "trials_table",
]
