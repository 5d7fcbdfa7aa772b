"""Plot frame, axes, tables, filters, summary and chart built from the seeded study."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from dashboard import (
    filter_trials,
    front_table,
    hover_text,
    key_hyperparameters,
    pareto_figure,
    plot_frame,
    sort_trials,
    study_overview,
    summarize,
    trials_table,
    x_axes,
)
from dashboard.processing import (
    DIMMED_OPACITY,
    MAX_HYPERPARAMETERS,
    MEMORY_AXIS,
    PEAK_MEMORY,
    front_report,
    memory_front_report,
    score_options,
    selected_trials,
    with_task_columns,
)


def test_plot_frame_flags_the_front(results: pd.DataFrame, seeded: Any) -> None:
    points = plot_frame(results)
    assert len(points) == seeded.n_complete
    assert points[points["on_front"]]["trial_number"].tolist() == list(seeded.front)
    assert points["trainable_pct"].is_monotonic_increasing
    assert set(points.loc[~points["on_front"], "opacity"]) == {DIMMED_OPACITY}
    assert set(points.loc[points["on_front"], "opacity"]) == {1.0}
    assert points.set_index("trial_number").loc[1, "label"] == "#1 lora"


def test_plot_frame_drops_zero_pct(results: pd.DataFrame) -> None:
    zero = results.copy()
    zero.loc[zero["trial_number"] == 2, ["trainable_pct", "trainable_params"]] = (0.0, 0)
    assert 2 not in plot_frame(zero)["trial_number"].tolist()


def test_key_hyperparameters_for_trial_configs(results: pd.DataFrame) -> None:
    lora = results.set_index("trial_number").loc[1, "config"]
    assert key_hyperparameters(lora) == {
        "rank": 8, "sharing": "single", "lr": 1e-3, "backbone": "tiny-bart",
    }  # fmt: skip


def test_key_hyperparameters_other_layouts() -> None:
    flat = {"method": "prompt", "prompt.length": 40, "prompt": {"hidden": 800}, "tasks": ["vqa"]}
    assert key_hyperparameters(flat) == {"prompt.length": 40, "prompt.hidden": 800}
    many = {f"k{i}": i for i in range(20)}
    assert len(key_hyperparameters(many)) == MAX_HYPERPARAMETERS
    assert key_hyperparameters(None) == {}


def test_hover_text_names_method_and_hyperparameters(results: pd.DataFrame) -> None:
    row = results.set_index("trial_number").loc[0].to_dict() | {"trial_number": 0}
    text = hover_text(row)
    assert text.startswith("<b>#0 adapter</b><br>score 77.4<br>")  # scores to one decimal, as the CLI
    assert "trainable 4.18% (4,180 parameters)" in text
    assert "reduction_factor=8<br>sharing=single<br>lr=0.001" in text


def test_summary(results: pd.DataFrame, seeded: Any) -> None:
    summary = summarize(results)
    assert (summary.complete, summary.infeasible, summary.failed) == (seeded.n_complete, 1, 1)
    assert (summary.running, summary.pruned) == (1, 0)
    assert summary.best_score == 77.6
    assert summary.front_size == len(seeded.front)
    assert summary.hypervolume > 0


def test_tables(results: pd.DataFrame, seeded: Any) -> None:
    front = front_table(results)
    assert front["trial_number"].tolist() == list(seeded.front)
    assert front.loc[0, "hyperparameters"].startswith("rank=8, sharing=single")

    trials = trials_table(results)
    assert len(trials) == len(results)
    assert {"task:vqa", "task:gqa"} <= set(trials.columns)
    assert trials.loc[0, "task:vqa"] == 65.9 and pd.isna(trials.loc[2, "task:vqa"])
    assert not any(isinstance(v, dict) for v in trials.to_numpy().ravel())


def test_figure_without_and_with_budget(results: pd.DataFrame, seeded: Any) -> None:
    points = plot_frame(results)
    plain = pareto_figure(points)
    markers = [t for t in plain.data if "markers" in t.mode]
    assert sum(len(t.x) for t in markers) == seeded.n_complete
    assert sorted(n for t in markers for n in t.customdata) == [0, 1, 2, 5]
    assert not plain.layout.shapes

    budget = pareto_figure(points, budget_x=5.0, budget_text="5%")
    assert budget.layout.shapes[0].x0 == 5.0
    assert budget.layout.annotations[0].text == "budget 5%"
    assert pareto_figure(points, budget_x=0.0).layout.shapes == ()  # no zero on a log axis


def test_axes_offered(results: pd.DataFrame) -> None:
    labels = [a.label for a in x_axes(results)]
    assert labels == ["trainable parameters (%)", "trainable parameters", "training time (s)"]
    no_times = results.assign(train_seconds=float("nan"))
    assert "training time (s)" not in [a.label for a in x_axes(no_times)]
    # A results table that gains peak memory offers it once a complete trial has a value.
    empty_memory = results.assign(**{PEAK_MEMORY: float("nan")})
    assert "peak memory (MiB)" not in [a.label for a in x_axes(empty_memory)]
    memory = results.assign(**{PEAK_MEMORY: [1512.04 + i for i in range(len(results))]})
    axis = x_axes(memory)[2]
    assert (axis.label, axis.column, axis.log) == ("peak memory (MiB)", PEAK_MEMORY, False)
    points = plot_frame(memory, axis)
    assert points["x"].tolist() == sorted(points["x"]) and len(points) == 4
    assert "peak memory (MiB): 1,512.0 MiB" in points["hover"].iloc[0]  # units and separators, not 1512.04
    assert PEAK_MEMORY in trials_table(memory).columns


def test_memory_front_beside_the_parameter_front(results: pd.DataFrame) -> None:
    # Complete trials: #0 77.4 at 4.18%, #1 76.5 at 5.93%, #2 47.1 at 1.14%, #5 77.6 at 100%.
    # In memory #5 (800 MiB) dominates #0 (900 MiB), and #1 (300 MiB) is no longer dominated.
    memory = {0: 900.0, 1: 300.0, 2: 200.0, 5: 800.0}
    with_memory = results.assign(**{PEAK_MEMORY: results["trial_number"].map(memory)})
    assert front_report(with_memory)["trial"].tolist() == ["2", "0", "5"]
    report = memory_front_report(with_memory)
    assert report["trial"].tolist() == ["2", "1", "5"]  # cheapest first
    assert report.columns.tolist() == ["trial", "method", "score", "peak memory", "trainable %", "hyperparameters"]
    assert report.iloc[1][["method", "score", "peak memory", "trainable %"]].tolist() == ["lora", "76.5", "300.0 MiB", "5.93%"]
    points = plot_frame(with_memory, MEMORY_AXIS)
    assert points.loc[points["on_front"], "trial_number"].tolist() == [2, 1, 5]  # what the memory chart draws as its front
    # No memory recorded (a database from before it, or not measurable): no memory front at all.
    assert memory_front_report(results).empty
    assert memory_front_report(results.assign(**{PEAK_MEMORY: float("nan")})).empty


def test_front_per_task_and_per_axis(results: pd.DataFrame) -> None:
    tasks = with_task_columns(results)
    assert score_options(tasks) == {"average over tasks": "score", "vqa": "task:vqa", "gqa": "task:gqa"}
    vqa = plot_frame(tasks, x_axes(results)[0], "task:vqa")
    assert vqa["trial_number"].tolist() == [0, 1]  # the only trials with per-task scores
    assert vqa["on_front"].tolist() == [True, False]
    assert "vqa: 65.9<br>" in vqa["hover"].iloc[0]
    time = plot_frame(results, x_axes(results)[2])
    assert time[["trial_number", "x", "on_front"]].values.tolist() == [[0, 12.0, True], [1, 15.0, False]]


def test_study_overview(results: pd.DataFrame) -> None:
    other = results.assign(study_name="other", status="complete", score=50.0)
    overview = study_overview(pd.concat([results, other], ignore_index=True))
    assert set(overview["study"]) == {"clip-bart-demo", "other"}
    demo = overview.set_index("study").loc["clip-bart-demo"]
    assert (demo["state"], demo["complete"], demo["running"], demo["failed"], demo["infeasible"]) == ("running", 4, 1, 1, 1)
    assert (demo["trials"], demo["best_score"]) == (7, 77.6)
    assert overview.set_index("study").loc["other", "state"] == "idle"
    assert study_overview(results.iloc[:0]).empty


def test_filter_and_sort(results: pd.DataFrame) -> None:
    table = trials_table(results)
    assert set(table["sharing"]) == {"single"}
    lora = filter_trials(table, methods=["lora"], statuses=["complete", "failed"])
    assert lora["trial_number"].tolist() == [1, 2, 4]
    assert filter_trials(table, sharing=["shared"]).empty
    assert len(filter_trials(table)) == len(table)
    by_score = sort_trials(table, "score", ascending=False)
    assert by_score["trial_number"].tolist()[:4] == [5, 0, 1, 2]
    assert by_score["score"].isna().tolist()[-3:] == [True, True, True]  # missing last
    with pytest.raises(ValueError, match="Cannot sort by 'nope'"):
        sort_trials(table, "nope", ascending=True)


def test_selected_trials() -> None:
    points = [{"customdata": 3}, {"customdata": [5]}, {"customdata": 3}, {"x": 1.0}, {"customdata": []}]
    assert selected_trials(points) == [3, 5]
