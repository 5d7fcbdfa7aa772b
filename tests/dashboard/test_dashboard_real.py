"""Every page on a study made by the real search CLI; the download equals the CLI export."""

from __future__ import annotations

from typing import Any

import pytest
from dashboard_helpers import PAGES

from storage import load_results, make_readonly_engine

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


def test_overview_describes_what_the_real_study_searched(real_study: Any, dash: Any) -> None:
    app = dash.open(real_study.url)
    described = dash.report(app, "item")["value"].to_dict()
    engine = make_readonly_engine(real_study.url)
    try:
        inputs = load_results(engine, real_study.study)["environment"].iloc[0]["inputs"]
    finally:
        engine.dispose()
    assert described["tasks"] == "vqa"
    assert described["data"].startswith(f"generated benchmark {inputs['benchmark']}, manifest sha256 ")
    assert described["data"].endswith(inputs["benchmark_manifest_sha256"][:16])
    files = inputs["data_files"]
    assert described["data files"] == f"{files['files']:,} files pinned by content, sha256 {files['sha256'][:16]}"
    assert described["backbone"] == inputs["backbone"] == "tiny-clip+tiny-t5-vlp"
    for key in ("clip_weights_sha256", "language_model_weights_sha256", "vl_projection_sha256"):
        assert inputs[key][:16] in described["backbone weights (sha256)"]
    assert described["budget"] == f"{real_study.budget} (as launched)"
    assert described["search"].startswith("2 trials, 10 steps each, ") and "tpe sampler" in described["search"]


def test_the_studys_budget_needs_no_typing(real_study: Any, dash: Any) -> None:
    app = dash.open(real_study.url)  # a new user: no ?budget= in the address
    assert app.text_input(key="budget_text").value == real_study.budget
    assert f"Best within {real_study.budget}: trial #{real_study.best_trial} " in dash.texts(app.success)
