"""Every page, run headless with AppTest on the synthetic study (edge cases included)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dashboard_helpers import PAGES, make_trial, seed

from storage import default_storage_url, make_engine, record_trial


def test_overview_lists_studies_and_draws_the_front(seeded: Any, dash: Any) -> None:
    app = dash.open(seeded.url)

    assert app.selectbox(key="study").value == seeded.study
    studies = app.dataframe[0].value
    assert studies["study"].tolist() == [seeded.study]
    assert studies.loc[0, ["state", "complete", "running", "failed"]].tolist() == ["running", 4, 1, 1]
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Complete"] == str(seeded.n_complete)
    assert (metrics["Trials"], metrics["Running"], metrics["Failed"], metrics["Infeasible"]) == ("7", "1", "1", "1")
    assert metrics["Best score"] == "77.6"  # one decimal, as the CLI prints scores
    figure = dash.figure(app, "pareto")
    assert dash.markers(figure) == seeded.n_complete
    (step,) = [t for t in figure["data"] if t.get("mode") == "lines"]
    assert step["line"]["shape"] == "hv"
    assert dash.values(step["x"]) == pytest.approx([1.14, 4.18, 100.0])
    assert figure["layout"]["xaxis"]["type"] == "log"
    dimmed = [o for t in figure["data"] if "markers" in t.get("mode", "") for o in t["marker"]["opacity"]]
    assert sorted(dimmed) == [0.3, 1.0, 1.0, 1.0]
    assert "lr=0.001" in figure["data"][0]["hovertext"][0]  # the configuration on hover
    front = dash.report(app, "trial")
    assert front.index.tolist() == [str(n) for n in seeded.front]
    # Printed as the CLI prints its front table: one decimal, two with %, thousands separators.
    assert front[["score", "trainable %", "trainable"]].values.tolist() == [
        ["47.1", "1.14%", "1,140"], ["77.4", "4.18%", "4,180"], ["77.6", "100.00%", "100,000"],
    ]  # fmt: skip
    assert "budget" not in " ".join(front.columns)  # no budget typed, none stored


def test_budget_draws_a_line_and_links_the_best_trial(seeded: Any, dash: Any) -> None:
    app = dash.open(seeded.url)
    app.text_input(key="budget_text").set_value("5%").run()

    dash.check(app)
    assert "Best within 5%: trial #0 (adapter)" in dash.texts(app.success)
    assert [(s["x0"], s["x1"]) for s in dash.figure(app, "pareto")["layout"]["shapes"]] == [(5.0, 5.0)]
    assert ("trial", f"study={seeded.study}&trial=0") in dash.links(app)


def test_budget_from_the_address_and_a_bad_budget(seeded: Any, dash: Any) -> None:
    app = dash.open(seeded.url, budget="150k")
    assert app.text_input(key="budget_text").value == "150k"
    assert "Best within 150k" in dash.texts(app.success)

    app.text_input(key="budget_text").set_value("7").run()
    dash.check(app)
    assert "bare number outside (0, 1]" in dash.texts(app.error)
    assert not app.success


def test_axis_and_task_switches(seeded: Any, dash: Any) -> None:
    app = dash.open(seeded.url)
    axes = app.selectbox(key="x_axis").options
    # No memory axis: this schema has no peak_memory_mb column.
    assert axes == ["trainable parameters (%)", "trainable parameters", "training time (s)"]

    app.selectbox(key="x_axis").set_value("trainable parameters").run()
    figure = dash.figure(app, "pareto")
    assert figure["layout"]["xaxis"]["title"]["text"] == "trainable parameters"
    assert max(x for t in figure["data"] for x in dash.values(t["x"])) == 100_000

    app.selectbox(key="score_view").set_value("vqa").run()
    dash.check(app)
    figure = dash.figure(app, "pareto")
    assert dash.markers(figure) == 2  # only trials #0 and #1 report per-task scores
    assert figure["layout"]["yaxis"]["title"]["text"] == "score on vqa"


def test_progress_page(seeded: Any, dash: Any) -> None:
    app = dash.open(seeded.url, "views/progress.py")
    history = dash.figure(app, "hypervolume")
    assert dash.values(history["data"][0]["x"]) == list(range(7))
    assert dash.values(history["data"][0]["y"])[-1] == pytest.approx(7559.7, abs=0.1)
    app.radio(key="hypervolume_axis").set_value("training steps").run()
    by_steps = dash.figure(app, "hypervolume")
    steps = dash.values(by_steps["data"][0]["x"])
    assert steps == sorted(steps) and steps[-1] > 0, "cumulative training steps"
    assert dash.values(by_steps["data"][0]["y"])[-1] == pytest.approx(7559.7, abs=0.1), "the same front, in the end"
    assert by_steps["layout"]["xaxis"]["title"]["text"] == "training steps, all trials together"
    timeline = dash.figure(app, "timeline")
    assert {t["name"] for t in timeline["data"]} == {"complete", "failed", "infeasible"}
    assert "1 trial(s) running now" in dash.texts(app.caption)


def test_parameters_page_without_optuna_tables(seeded: Any, dash: Any) -> None:
    app = dash.open(seeded.url, "views/parameters.py")
    assert "no Optuna record" in dash.texts(app.info)
    parcoords = dash.figure(app, "parcoords")["data"][0]
    labels = [d["label"] for d in parcoords["dimensions"]]
    assert labels[-2:] == ["trainable %", "score"] and "method" in labels
    assert "backbone" not in labels  # constant, so left out


def test_trials_page_filters_and_sorts(seeded: Any, dash: Any) -> None:
    app = dash.open(seeded.url, "views/trials.py")
    table = app.dataframe[0].value
    assert len(table) == 7 and table["open"][0] == f"trial?study={seeded.study}&trial=0"

    app.multiselect(key="filter_method").set_value(["lora"]).run()
    app.multiselect(key="filter_status").set_value(["complete"]).run()
    assert app.dataframe[0].value["trial_number"].tolist() == [1, 2]

    app.selectbox(key="sort_by").set_value("score").run()
    app.toggle(key="sort_descending").set_value(True).run()
    dash.check(app)
    assert app.dataframe[0].value["trial_number"].tolist() == [1, 2]
    app.multiselect(key="filter_method").set_value([]).run()
    assert app.dataframe[0].value["trial_number"].tolist()[:4] == [5, 0, 1, 2]

    app.multiselect(key="filter_sharing").set_value(["single"]).run()
    assert len(app.dataframe[0].value) == 4
    app.multiselect(key="compare_trials").set_value([0, 5]).run()
    assert ("compare", f"study={seeded.study}&trials=0%2C5") in dash.links(app)


def test_trial_page_by_address_shows_config_and_error(seeded: Any, dash: Any) -> None:
    app = dash.open(seeded.url, trial="4", study=seeded.study)  # the bare URL with ?trial=
    assert app.title[0].value == "Trial #4: lora"
    assert "CUDA out of memory" in dash.texts(app.error)
    config = dash.table(app, "parameter", "value")
    assert dict(zip(config["parameter"], config["value"], strict=True))["method_params.rank"] == "8"
    assert "No learning curve recorded" in dash.texts(app.info)
    assert "Only complete trials can be exported" in dash.texts(app.caption)
    assert not app.get("download_button")


def test_trial_page_complete_trial_offers_recipes(seeded: Any, dash: Any) -> None:
    app = dash.open(seeded.url, "views/trial.py", trial="0")
    assert app.title[0].value == "Trial #0: adapter"
    metrics = {m.label: m.value for m in app.metric}
    assert metrics == {"Score": "77.4", "Trainable": "4.18%", "Trainable parameters": "4,180",
                       "Training time": "12.0 s", "Peak memory": "-"}  # fmt: skip
    tasks = dash.table(app, "task", "score")
    assert dict(zip(tasks["task"], tasks["score"], strict=True)) == {"gqa": 54.5, "vqa": 65.9}
    labels = [b.label for b in app.get("download_button")]
    assert labels == ["Download recipe (YAML)", "Download recipe (JSON)"]

    app.selectbox(key="trial_pick").set_value(3).run()
    dash.check(app)
    assert app.query_params["trial"] == "3"
    assert "over the 10% budget" in dash.texts(app.error)


def test_trial_page_unknown_trial(seeded: Any, dash: Any) -> None:
    app = dash.open(seeded.url, trial="99")
    assert "no trial '99'" in dash.texts(app.warning)
    assert app.title[0].value == "Trial #0: adapter"


def test_compare_page(seeded: Any, dash: Any) -> None:
    app = dash.open(seeded.url, "views/compare.py", trials="0,1,4")
    table = dash.table(app, "#0")
    assert list(table.columns) == ["#0", "#1", "#4"]
    assert table.loc["method"].tolist() == ["adapter", "lora", "lora"]
    assert table.loc["score"].tolist() == ["77.4", "76.5", ""]
    assert table.loc["trainable_pct"].tolist() == ["4.18%", "5.93%", "6.00%"]
    assert table.loc["total_params"].tolist() == ["100,000"] * 3
    assert table.loc["error"].tolist() == ["", "", "CUDA out of memory"]
    bars = dash.figure(app, "compare_tasks")
    assert [t["name"] for t in bars["data"]] == ["#0", "#1"]

    app.toggle(key="compare_differences").set_value(True).run()
    assert "backbone" not in " ".join(dash.table(app, "#0").index)
    app.multiselect(key="compare_pick").set_value([2]).run()
    assert "Pick two or more" in dash.texts(app.info)


def test_live_refresh_picks_up_a_new_trial(seeded: Any, dash: Any) -> None:
    app = dash.open(seeded.url)
    assert "updates when a trial is recorded" in dash.texts(app.sidebar.caption)
    engine = make_engine(seeded.url)
    try:
        record_trial(engine, make_trial(7, "complete", "lora", 0.5, 60.0))
    finally:
        engine.dispose()
    app.run()  # what the polling fragment triggers once the fingerprint changes
    assert dash.markers(dash.figure(app, "pareto")) == seeded.n_complete + 1

    app.toggle(key="live").set_value(False).run()
    assert "updates when a trial is recorded" not in dash.texts(app.sidebar.caption)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_survives_a_study_with_only_running_trials(page: str, tmp_path: Path, dash: Any) -> None:
    url = default_storage_url(tmp_path)
    seed(url, [make_trial(0, "running", "adapter", 2.0, None, finished_at=None)])
    app = dash.open(url, page)
    assert app.title  # drew something, raised nothing


def test_missing_database_gets_a_message_not_a_traceback(tmp_path: Path, dash: Any) -> None:
    app = dash.open(default_storage_url(tmp_path / "absent"))
    assert "No study database yet" in dash.texts(app.info)
    assert not app.get("plotly_chart")
    assert not (tmp_path / "absent").exists()


def test_database_without_studies_gets_a_message(empty_url: str, dash: Any) -> None:
    app = dash.open(empty_url)
    assert "No studies recorded yet" in dash.texts(app.info)


def test_bad_url_gets_a_message(dash: Any) -> None:
    app = dash.open("mysql://user:hunter2@db/x")
    message = dash.texts(app.error)
    assert "only sqlite and postgresql are supported" in message
    assert "hunter2" not in message


def _seeded(record: Any, seed: int, replicate_of: int | None = None) -> Any:
    """A results row trained with `seed`; `replicate_of` names the trial it confirms (search.confirmation)."""
    config = {**record.config, "training": {**record.config["training"], "seed": seed}}
    return replace(record, config=config, replicate_of=replicate_of)


def test_confirmation_seeds_show_as_mean_with_error_bars(tmp_path: Path, dash: Any) -> None:
    url = default_storage_url(tmp_path)
    seed(
        url,
        [
            _seeded(make_trial(0, "complete", "adapter", 4.18, 77.4), 0),
            _seeded(make_trial(1, "complete", "lora", 1.14, 47.1), 0),
            _seeded(make_trial(2, "complete", "full_ft", 100.0, 77.6), 0),
            _seeded(make_trial(3, "complete", "adapter", 4.18, 75.4), 1, replicate_of=0),
        ],
    )
    app = dash.open(url, budget="5%")
    # The best within the budget, the chart and the front read trial 0 as the mean of its two seeds.
    assert "trial #0 (adapter), score 76.4 ± 1.4 (2 seeds) at 4.18% trainable" in dash.texts(app.success)
    figure = dash.figure(app, "pareto")
    assert dash.markers(figure) == 3  # three configurations, not four rows
    (adapter,) = [t for t in figure["data"] if t.get("name") == "adapter"]
    assert dash.values(adapter["y"]) == pytest.approx([76.4])
    assert adapter["error_y"]["visible"] and dash.values(adapter["error_y"]["array"]) == pytest.approx([1.4142], abs=1e-4)
    assert "score 76.4 ± 1.4 (2 seeds)" in adapter["hovertext"][0]
    (lora,) = [t for t in figure["data"] if t.get("name") == "lora"]
    assert "error_y" not in lora or not lora["error_y"]  # one seed: no bar
    front = dash.report(app, "trial")
    assert front.loc["0", "score"] == "76.4 ± 1.4 (2 seeds)" and front.loc["1", "score"] == "47.1"
    # The trials page lists every seed as a row of its own, with the trial it repeats.
    trials = dash.open(url, "views/trials.py")
    table = dash.table(trials, "repeats trial", "seed")
    assert table["trial_number"].tolist() == [0, 1, 2, 3]
    assert table["seed"].tolist() == [0, 0, 0, 1]
    assert table["repeats trial"].iloc[3] == 0 and table["repeats trial"].iloc[:3].isna().all()
