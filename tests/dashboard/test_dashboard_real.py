"""Every page on a study made by the real search CLI; the download equals the CLI export."""

from __future__ import annotations

from typing import Any

import pytest
from dashboard_helpers import PAGES

pytestmark = pytest.mark.slow  # the session's real study trains two tiny trials


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_the_real_study(real_study: Any, dash: Any, page: str) -> None:
    app = dash.open(real_study.url, page)
    assert app.title and app.selectbox(key="study").value == real_study.study


def test_overview_plots_every_complete_trial(real_study: Any, dash: Any) -> None:
    app = dash.open(real_study.url)
    assert dash.markers(dash.figure(app, "pareto")) == real_study.n_complete == 2
    overview = dash.table(app, "study", "state").set_index("study").loc[real_study.study]
    assert (overview["state"], overview["complete"], overview["running"], overview["failed"]) == ("idle", 2, 0, 0)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Complete"] == "2"


def test_recipe_downloads_are_the_cli_exports(real_study: Any, dash: Any) -> None:
    served = dash.capture_downloads()
    app = dash.open(real_study.url, trial=str(real_study.best_trial), budget=real_study.budget)
    assert app.title[0].value.startswith(f"Trial #{real_study.best_trial}:")
    for fmt in ("yaml", "json"):
        assert served[f"{real_study.study}-trial-{real_study.best_trial}.{fmt}"] == real_study.exported[fmt]


def test_importances_wait_for_enough_trials(real_study: Any, dash: Any) -> None:
    app = dash.open(real_study.url, "views/parameters.py")
    assert "at least 3 completed, within-budget trials; this study has" in dash.texts(app.info)
    assert dash.figure(app, "parcoords")["data"][0]["dimensions"]


def test_trial_page_draws_the_recorded_learning_curve(real_study: Any, dash: Any) -> None:
    # search.objective stores each trained trial's loss curve as an Optuna user attribute.
    app = dash.open(real_study.url, "views/trial.py", trial="0")
    assert "No learning curve recorded for this trial." not in dash.texts(app.info)
    assert any(chart.proto.id.endswith("-curve") for chart in app.get("plotly_chart"))


def test_rendering_every_page_leaves_the_database_unchanged(real_study: Any, dash: Any) -> None:
    before = real_study.path.read_bytes()
    for page in PAGES:
        dash.open(real_study.url, page, trial="1", trials="0,1", budget="5%")
    assert real_study.path.read_bytes() == before
